"""The GitHub Action's step (``action.yml`` at the repository root runs ``gitops ci run``): run
the chosen command, print its annotations or text to the log, write its Markdown to the job
summary, set the ``exitcode`` and ``has-changes`` outputs, and keep one sticky PR comment.

Everything the step needs from the runner (inputs, event payload, file paths, token, API URL)
arrives in :class:`Settings`, read from the environment by the CLI; this module reads no
environment variable itself. The command runs as a subprocess (``python -m gitops``), with the
arguments as a list: nothing passes through a shell.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.ci import comments
from gitops.errors import GitopsError
from gitops.views import markdown as md

COMMANDS = ("validate", "diff", "plan", "apply")
EXIT_CHANGES = 2


@dataclass(frozen=True)
class Settings:
    command: str
    apps: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    comment: bool = False
    base: str = ""  # diff: the revision to compare from (default: the pull request's base commit)
    working_directory: str = "."
    event: dict[str, Any] = field(default_factory=dict)  # the GITHUB_EVENT_PATH payload
    output_file: Path | None = None  # GITHUB_OUTPUT
    summary_file: Path | None = None  # GITHUB_STEP_SUMMARY
    api_url: str = "https://api.github.com"
    repository: str = ""  # owner/name
    token: str = ""


def parse_inputs(command: str, apps: str, args: str, comment: str) -> tuple[str, tuple[str, ...], tuple[str, ...],
                                                                             bool]:
    if command not in COMMANDS:
        raise GitopsError(f"input command must be one of {', '.join(COMMANDS)}, not {command!r}")
    return command, tuple(apps.replace(",", " ").split()), tuple(shlex.split(args)), \
        comment.strip().lower() in ("true", "yes", "1")


Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def gitops(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", *argv], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


@dataclass
class Outcome:
    exitcode: int
    markdown: str
    log: str  # what goes to the job's log


def _errors(done: subprocess.CompletedProcess[str]) -> str:
    return "\n\n" + md.fence(md.cut(done.stderr.strip()), "") if done.stderr.strip() else ""


def execute(settings: Settings, run: Runner = gitops) -> Outcome:
    """Run the command (twice for validate: annotations for the log, Markdown for the summary)."""
    s = settings
    if s.command == "validate":
        annotated = run(["validate", *s.args, "--output", "github", "--path-prefix", s.working_directory])
        shown = run(["validate", *s.args, "--output", "markdown"])
        return Outcome(annotated.returncode, shown.stdout + _errors(shown), annotated.stdout + annotated.stderr)
    if s.command == "diff":
        base = s.base or str((s.event.get("pull_request") or {}).get("base", {}).get("sha") or "")
        if not base:
            raise GitopsError("diff needs a base revision: set the `base` input (on a pull_request event the pull "
                              "request's base commit is used)")
        done = run(["diff", "--base", base, "--detailed-exitcode", "--output", "markdown", *s.args, *s.apps])
        return Outcome(done.returncode, done.stdout + _errors(done), done.stdout + done.stderr)
    if s.command == "plan":
        done = run(["plan", *s.apps, "--detailed-exitcode", "--output", "markdown", *s.args])
        return Outcome(done.returncode, done.stdout + _errors(done), done.stdout + done.stderr)
    done = run(["apply", *s.apps, "--auto-approve", *s.args])
    verdict = {0: "✅ applied", 3: "⚠️ rolled back"}.get(done.returncode, "❌ failed")
    text = "### gitops apply: " + verdict + "\n\n" + md.fence(md.cut(done.stdout.strip() or "(no output)"))
    return Outcome(done.returncode, text + _errors(done), done.stdout + done.stderr)


def pull_request_number(event: dict[str, Any]) -> int | None:
    number = (event.get("pull_request") or {}).get("number")
    return int(number) if isinstance(number, int) else None


def step(settings: Settings, run: Runner = gitops, echo: Callable[[str], None] = print) -> int:
    """The whole step; its exit code: 0 for success or changes found (see ``has-changes``),
    else the command's."""
    outcome = execute(settings, run)
    if outcome.log.strip():
        echo(outcome.log.rstrip())
    if settings.summary_file is not None:
        with settings.summary_file.open("a", encoding="utf-8") as summary:
            summary.write(outcome.markdown.rstrip() + "\n")
    if settings.output_file is not None:
        with settings.output_file.open("a", encoding="utf-8") as outputs:
            outputs.write(f"exitcode={outcome.exitcode}\n")
            outputs.write(f"has-changes={'true' if outcome.exitcode == EXIT_CHANGES else 'false'}\n")
    number = pull_request_number(settings.event)
    if settings.comment and number is not None:
        target = comments.Target(settings.api_url, settings.repository, number)
        name = f"{settings.command}:{settings.working_directory}"
        what, ident = comments.Client(target, settings.token).upsert(name, outcome.markdown)
        echo(f"gitops: {what} the pull request comment {ident}")
    elif settings.comment:
        echo("gitops: not a pull_request event; no comment written")
    return 0 if outcome.exitcode == EXIT_CHANGES else outcome.exitcode


def load_event(path: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise GitopsError(f"cannot read the event payload {path}: {exc}") from None
    return data if isinstance(data, dict) else {}
