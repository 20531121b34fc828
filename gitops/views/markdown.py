"""Markdown made for a pull-request comment: one summary line per app, details folded in
``<details>``, large blocks cut with a note, and the whole kept under GitHub's comment limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: GitHub refuses an issue or pull-request comment longer than this (characters).
LIMIT = 65_536
#: One folded block longer than this is cut (so one huge app leaves room for the others).
BLOCK_LIMIT = 20_000
_RESERVE = 600  # room kept for the closing notes


@dataclass(frozen=True)
class Section:
    summary: str  # one line, Markdown
    details: str = ""  # the folded body (already Markdown); empty: nothing to fold
    title: str = "details"


def fence(text: str, lang: str = "") -> str:
    """``text`` in a code fence that nothing inside it can close."""
    longest = max((len(run) for run in _backtick_runs(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _backtick_runs(text: str) -> list[str]:
    runs, current = [], ""
    for char in text:
        if char == "`":
            current += char
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


def cut(text: str, limit: int = BLOCK_LIMIT, hint: str = "") -> str:
    """``text`` cut at a line boundary under ``limit`` characters, with a note saying so."""
    if len(text) <= limit:
        return text
    kept = text[:limit].rsplit("\n", 1)[0]
    left = text.count("\n", len(kept)) + (0 if text.endswith("\n") else 1)
    return kept + f"\n... {left} more line(s) cut{': ' + hint if hint else ''}"


def escape(text: str) -> str:
    """Text safe inside a Markdown line (no HTML, no table breaks)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\n", " "))


def document(title: str, sections: Sequence[Section], *, footer: str = "", hint: str = "",
             limit: int = LIMIT) -> str:
    """A title, every section's summary line, and as many folded details as fit in ``limit``;
    the details left out are named in a note (``hint`` says where to see everything)."""
    head = [title, ""] + [f"- {s.summary}" for s in sections]
    text = "\n".join(head) + "\n"
    tail = f"\n{footer}\n" if footer else ""
    budget = limit - len(text) - len(tail) - _RESERVE
    blocks: list[str] = []
    left_out: list[str] = []
    for section in sections:
        if not section.details:
            continue
        block = (f"\n<details><summary>{section.title}</summary>\n\n"
                 f"{section.details}\n\n</details>\n")
        if len(block) > budget:
            left_out.append(section.title)
            continue
        blocks.append(block)
        budget -= len(block)
    notes = ""
    if left_out:
        notes = (f"\n_Details of {len(left_out)} more section(s) left out to stay within the "
                 f"{LIMIT:,}-character comment limit{': ' + hint if hint else ''}._\n")
    return (text + "".join(blocks) + notes + tail)[:limit]
