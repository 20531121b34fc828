"""Views made for CI systems: Markdown for a pull-request comment (validate and plan), GitHub
Actions workflow commands (annotations on the changed lines) and SARIF 2.1.0 (code scanning).

GitHub's workflow-command escaping (actions/toolkit, ``command.ts``): in the message ``%``,
``\\r`` and ``\\n`` become ``%25``, ``%0D`` and ``%0A``; in a property value ``:`` and ``,``
become ``%3A`` and ``%2C`` as well.
"""

from __future__ import annotations

import json
from typing import Any

from gitops import __version__
from gitops.model.diagnostics import Diagnostic, Severity
from gitops.model.plans import Action, AppPlan, Plan
from gitops.model.reports import ValidationReport
from gitops.views import markdown as md
from gitops.views import validation
from gitops.views.plans import app_plan_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _what(d: Diagnostic) -> str:
    """The message with the object and field it is about (the file and line go in properties)."""
    about = ", ".join(p for p in (d.resource, f"field {d.pointer}" if d.pointer else "") if p)
    return f"{about}: {d.message}" if about else d.message


def _line_col(d: Diagnostic) -> str:
    """``line:col`` (or the line alone, or nothing) for a table cell."""
    if d.line is None:
        return ""
    return f"{d.line}:{d.column}" if d.column is not None else str(d.line)


def _path(file: str, prefix: str) -> str:
    return f"{prefix.rstrip('/')}/{file}" if prefix and prefix not in (".", "./") else file


def github(report: ValidationReport, *, prefix: str = "") -> str:
    """One ``::error``/``::warning`` workflow command per problem, then the summary line (plain)."""
    lines = []
    for d in report.diagnostics:
        props = []
        if d.file:
            props.append(f"file={escape_property(_path(d.file, prefix))}")
            if d.line is not None:
                props.append(f"line={d.line}")
                if d.column is not None:
                    props.append(f"col={d.column}")
        props.append(f"title={escape_property('gitops validate' + (f' ({d.code})' if d.code else ''))}")
        lines.append(f"::{d.severity.value} {','.join(props)}::{escape_data(_what(d))}")
    lines.append(validation.text(report).splitlines()[-1])  # the verdict, as `--output text` ends
    return "\n".join(lines)


def sarif(report: ValidationReport, *, prefix: str = "") -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: a rule per diagnostic code, a result per problem."""
    codes = sorted({d.code or "gitops" for d in report.diagnostics})
    rules = [{"id": code, "name": code, "shortDescription": {"text": f"gitops validate: {code}"}}
             for code in codes]
    results = []
    for d in report.diagnostics:
        code = d.code or "gitops"
        result: dict[str, Any] = {
            "ruleId": code, "ruleIndex": codes.index(code),
            "level": "error" if d.severity is Severity.ERROR else "warning",
            "message": {"text": _what(d)},
        }
        if d.file:
            location: dict[str, Any] = {"artifactLocation": {"uri": _path(d.file, prefix), "uriBaseId": "%SRCROOT%"}}
            if d.line is not None and d.line >= 1:
                location["region"] = {"startLine": d.line}
                if d.column is not None and d.column >= 1:
                    location["region"]["startColumn"] = d.column
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "gitops", "version": __version__, "rules": rules}},
                  "results": results, "columnKind": "unicodeCodePoints"}],
    }


def sarif_text(report: ValidationReport, *, prefix: str = "") -> str:
    return json.dumps(sarif(report, prefix=prefix), indent=2)


def validation_markdown(report: ValidationReport, *, limit: int = md.LIMIT) -> str:
    """The verdict, one line per app, and the problems of each file folded."""
    summary = validation.text(report).splitlines()[-1]
    by_file: dict[str, list[Diagnostic]] = {}
    for d in report.diagnostics:
        by_file.setdefault(d.file or "(no file)", []).append(d)
    sections = []
    for file, found in by_file.items():
        errors = sum(1 for d in found if d.severity is Severity.ERROR)
        icon = "❌" if errors else "⚠️"
        rows = ["| | line | problem |", "|---|---|---|"]
        rows += [f"| {d.severity.value} | {_line_col(d)} | {md.escape(_what(d))} |" for d in found]
        sections.append(md.Section(f"{icon} `{md.escape(file)}`: {errors} error(s), {len(found) - errors} warning(s)",
                                   md.cut("\n".join(rows)), md.escape(file)))
    icon = "✅" if report.ok else "❌"
    return md.document(f"### {icon} gitops validate: {md.escape(summary)}", sections,
                       hint="run `gitops validate` for every problem", limit=limit)


def plan_summary(plan: AppPlan) -> str:
    counts = plan.counts()
    line = (f"{plan.app}: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
            f"{counts[Action.REPLACE]} to replace, {counts[Action.DELETE]} to delete")
    if plan.blocked:
        line += " (REFUSED: " + "; ".join(b.reason.value for b in plan.blocked) + ")"
    elif not plan.has_changes:
        line = f"{plan.app}: no changes"
    return line


def plan_markdown(plan: Plan, *, limit: int = md.LIMIT) -> str:
    sections = []
    for app in plan.apps:
        icon = "❌" if app.blocked else "📝" if app.has_changes else "✅"
        details = md.fence(md.cut(app_plan_text(app), hint="run `gitops plan` for the full plan"), "diff") \
            if app.has_changes or app.blocked else ""
        sections.append(md.Section(f"{icon} {md.escape(plan_summary(app))}", details, md.escape(app.app)))
    changed = sum(1 for a in plan.apps if a.has_changes)
    return md.document(f"### gitops plan: {changed} of {len(plan.apps)} app(s) would change", sections,
                       hint="run `gitops plan` for the full plan", limit=limit)
