"""Views of a validation report: text for people, one JSON object for machines."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gitops.model.reports import ValidationReport
from gitops.validate.policy import Rule


def text(report: ValidationReport) -> str:
    """One line per problem (``error: file:line, document N, Kind/ns/name, field /x: why``), then a summary."""
    lines = [str(diagnostic) for diagnostic in report.diagnostics]
    source = ""
    if report.repository:
        source = f" from {report.repository}" + (f" at {report.ref}" if report.ref else "")
    if report.revision:
        source += f" (commit {report.revision[:12]})"
    verdict = "valid" if report.ok else "invalid"
    what = f"{report.files} file{'s' if report.files != 1 else ''}"
    if report.objects:
        what += f", {report.objects} Kubernetes object{'s' if report.objects != 1 else ''}"
    if report.services:
        what += f", {report.services} Swarm service{'s' if report.services != 1 else ''}"
    if report.apps:
        what += f" in app{'s' if len(report.apps) != 1 else ''} {', '.join(report.apps)}"
    counts = f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}, " + (
        f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}"
    )
    version = f"Kubernetes {report.kubernetes_version}" if report.kubernetes_version else ""
    mode = ", strict" if report.strict else ""
    lines.append(f"{verdict}: {what}{source}; {counts} ({version}{mode})")
    return "\n".join(lines)


def as_json(report: ValidationReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False)


def rules_text(rules: Sequence[Rule]) -> str:
    """The policy rules: id, default severity and backends, then the rationale and the fix."""
    lines = []
    for rule in rules:
        lines.append(f"{rule.id:22s} {rule.severity:8s} {', '.join(sorted(rule.backends))}")
        lines.append(f"    why: {rule.rationale}")
        lines.append(f"    fix: {rule.fix}")
    lines.append(f"{len(rules)} rules; set their levels (off, warning, error) and exclusions under policy: in "
                 "gitops.yaml, waive one on an object with the gitops.dev/ignore annotation (compose: "
                 "x-gitops-ignore): <rule>[,<rule>] -- <reason>")
    return "\n".join(lines)


def rules_json(rules: Sequence[Rule]) -> str:
    return json.dumps([{"id": r.id, "severity": str(r.severity), "backends": sorted(r.backends),
                        "rationale": r.rationale, "fix": r.fix} for r in rules], indent=2)
