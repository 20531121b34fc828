"""Views of a diff between two revisions (``gitops diff``): text for a terminal, JSON, Markdown
for a pull-request comment, and one self-contained HTML page (no external assets).

Bodies in the value are masked already; the views only lay them out."""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Iterator

import yaml

from gitops.model.diffs import AppDiff, AppStatus, Bodies, RevisionDiff
from gitops.model.plans import Action, Change
from gitops.views import markdown as md
from gitops.views.plans import COLORS, Style, field_line, plain

HINT = "run `gitops diff` with the same revisions for the full output"


def _short(ref: str, revision: str) -> str:
    if not revision:
        return ref
    return ref if ref.startswith(revision[:12]) else f"{ref} ({revision[:12]})"


def heading(result: RevisionDiff) -> str:
    return (f"{_short(result.base, result.base_revision)} → "
            f"{_short(result.head, result.head_revision) if result.head_revision else result.head}")


def summary(app: AppDiff) -> str:
    """One line per app: ``web: 1 to create, 2 to update, 0 to delete, 4 unchanged``."""
    if app.status is AppStatus.INVALID:
        return f"{app.app}: invalid ({len(app.errors)} problem(s)); not diffed"
    if app.status is AppStatus.UNCHANGED:
        return f"{app.app}: unchanged ({app.unchanged} object(s))"
    if app.status is AppStatus.RENAMED:
        return f"{app.app}: renamed from {app.renamed_from} ({app.unchanged} object(s), unchanged)"
    counts = app.counts()
    line = (f"{app.app}: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
            f"{counts[Action.DELETE]} to delete, {counts[Action.NOOP]} unchanged")
    if app.status is AppStatus.ADDED:
        return line + " (app added to gitops.yaml)"
    if app.status is AppStatus.REMOVED:
        return line + " (app removed from gitops.yaml)"
    return line


def _change_lines(change: Change, style: Style = plain) -> Iterator[str]:
    head = f"  {change.action.symbol:>3} {change.key}"
    where = f"  [{change.origin}]" if change.origin else ""
    yield style(head, COLORS.get(change.action, "")) + f"  {change.action.value}{where}"
    for field in change.fields:
        yield f"        {field_line(field)}"


def _yaml(value: object) -> list[str]:
    if value is None:
        return []
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True).splitlines()


def unified(key: str, bodies: Bodies) -> list[str]:
    """The unified YAML diff of one object (its bodies are masked)."""
    return list(difflib.unified_diff(_yaml(bodies.before), _yaml(bodies.after),
                                     fromfile=f"a/{key}" if bodies.before is not None else "/dev/null",
                                     tofile=f"b/{key}" if bodies.after is not None else "/dev/null", lineterm=""))


def _app_unified(app: AppDiff) -> list[str]:
    lines: list[str] = []
    for change in app.changes:
        bodies = app.bodies.get(str(change.key))
        if bodies is not None:
            lines.extend(unified(str(change.key), bodies))
    return lines


def app_text(app: AppDiff, style: Style = plain, *, verbose: bool = False) -> str:
    lines = [style(f"app {app.app}", "bold") + f" ({app.backend}): {summary(app).split(': ', 1)[1]}"]
    lines.extend(f"  {e}" for e in app.errors)
    for change in app.changes:
        lines.extend(_change_lines(change, style))
    if verbose and app.changes:
        lines.append("")
        lines.extend(_app_unified(app))
    return "\n".join(lines)


def text(result: RevisionDiff, style: Style = plain, *, verbose: bool = False) -> str:
    out = [f"diff {heading(result)}", ""]
    changed = [a for a in result.apps if a.status is not AppStatus.UNCHANGED]
    out.extend(app_text(a, style, verbose=verbose) + "\n" for a in changed)
    same = [a for a in result.apps if a.status is AppStatus.UNCHANGED]
    if same:
        out.append("Unchanged: " + ", ".join(f"{a.app} ({a.unchanged} object(s))" for a in same))
    if not result.apps:
        out.append("No apps.")
    counts = {s: sum(1 for a in result.apps if a.status is s) for s in AppStatus}
    out.append(f"Diff: {len(changed) - counts[AppStatus.INVALID]} app(s) changed, {len(same)} unchanged"
               + (f", {counts[AppStatus.INVALID]} invalid" if counts[AppStatus.INVALID] else "") + ".")
    return "\n".join(out)


def as_json(result: RevisionDiff, *, verbose: bool = False) -> str:
    data = result.to_json()
    if verbose:
        for app, entry in zip(result.apps, data["apps"], strict=True):
            entry["unified"] = "\n".join(_app_unified(app))
    return json.dumps(data, sort_keys=True)



def markdown(result: RevisionDiff, *, limit: int = md.LIMIT) -> str:
    sections = []
    for app in result.apps:
        details = ""
        if app.errors:
            details = md.fence(md.cut("\n".join(app.errors), hint=HINT))
        elif app.changes:
            body = "\n".join(line for c in app.changes for line in _change_lines(c))
            details = md.fence(md.cut(body, hint=HINT), "diff")
            yaml_diff = "\n".join(_app_unified(app))
            if yaml_diff:
                details += "\n\nRendered YAML (secret values masked):\n\n" + md.fence(md.cut(yaml_diff, hint=HINT),
                                                                                       "diff")
        icon = {AppStatus.INVALID: "❌", AppStatus.UNCHANGED: "✅"}.get(app.status, "📝")
        sections.append(md.Section(f"{icon} {md.escape(summary(app))}", details, md.escape(app.app)))
    title = f"### gitops diff: {md.escape(heading(result))}"
    return md.document(title, sections, hint=HINT, limit=limit)


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328}h1{font-size:1.3em}
.app{border:1px solid #d0d7de;border-radius:6px;margin:1em 0;padding:.5em 1em}
.sum{font-weight:600}pre{background:#f6f8fa;padding:.6em;overflow:auto;font:12px/1.4 ui-monospace,monospace}
.add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}.hunk{color:#0550ae}
.invalid{border-color:#cf222e}.unchanged{color:#59636e}"""


def _html_line(line: str) -> str:
    cls = ("hunk" if line.startswith("@@") else "add" if line.startswith(("+", "  +")) and not line.startswith("+++")
           else "del" if line.startswith(("-", "  -")) and not line.startswith("---") else "")
    text = html.escape(line)
    return f'<span class="{cls}">{text}</span>' if cls else text


def html_page(result: RevisionDiff) -> str:
    """One self-contained page: inline CSS, no script, no external asset."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>gitops diff {html.escape(heading(result))}"
             f"</title><style>{_CSS}</style></head><body><h1>gitops diff: {html.escape(heading(result))}</h1>"]
    for app in result.apps:
        parts.append(f'<div class="app {app.status.value}"><div class="sum">{html.escape(summary(app))}</div>')
        lines = [*app.errors, *(line for c in app.changes for line in _change_lines(c))]
        if lines:
            parts.append("<pre>" + "\n".join(_html_line(x) for x in lines) + "</pre>")
        yaml_diff = _app_unified(app)
        if yaml_diff:
            parts.append("<details><summary>Rendered YAML (secret values masked)</summary><pre>"
                         + "\n".join(_html_line(x) for x in yaml_diff) + "</pre></details>")
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "".join(parts)
