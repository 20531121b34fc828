"""Rough edges a new user hits: the saved-plan hint works when pasted (any file name), and the
closing line after an automatic rollback names both releases as `gitops history` lists them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gitops import deploy, engine
from gitops.cli import cli
from gitops.model.plans import Action, AppPlan, Change, Plan
from gitops.model.releases import AppState, Outcome, Release
from gitops.model.resources import ResourceKey
from gitops.views import plans as view

KEY = ResourceKey("apps", "Deployment", "web", "web")


def _plan() -> Plan:
    return Plan((AppPlan("web", "kubernetes", "ctx/web", "abc123", "d1", "b1",
                         changes=(Change(KEY, Action.CREATE, origin="k8s/deploy.yaml[doc 1]:1"),)),))


@pytest.mark.parametrize("name", ["p.plan", "plan", "my plan.json", "-odd.plan"])
def test_the_printed_apply_hint_applies_the_saved_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       name: str) -> None:
    applied: list[Any] = []
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir()
    monkeypatch.setattr(engine, "open_workspace", lambda **kw: kw)
    monkeypatch.setattr(engine, "plan", lambda *_a, **_kw: (_plan(), []))

    def apply(ws: Any, names: Any, *, saved: Plan | None = None, **_kw: Any) -> list[deploy.Result]:
        applied.append((ws, list(names), saved))
        return [deploy.Result("web", "applied", _plan().apps[0])]

    monkeypatch.setattr(engine, "apply", apply)
    made = CliRunner().invoke(cli, ["plan", "web", "-C", "repo", "--out", name])
    assert made.exit_code == 0, made.output
    hint = made.output.split("apply it with: ")[1].strip()
    words = shlex.split(hint)
    assert words[:2] == ["gitops", "apply"]
    pasted = CliRunner().invoke(cli, words[1:])
    assert pasted.exit_code == 0, pasted.output
    [(ws, names, saved)] = applied
    assert saved == Plan.from_json(json.loads((tmp_path / name).read_text()))
    assert names == [] and ws["cwd"] == Path("repo")


def test_the_apply_hint_never_prints_the_repository_urls_credentials(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    opened: list[dict[str, Any]] = []
    monkeypatch.chdir(tmp_path)

    def workspace(**kw: Any) -> Any:
        opened.append(kw)
        return engine.Workspace(tmp_path, "c" * 40, None, False)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "open_workspace", workspace)
    monkeypatch.setattr(engine, "plan", lambda *_a, **_kw: (_plan(), []))
    url = "https://bot:s3cr3t-t0ken@git.example.com/deploy.git"
    made = CliRunner().invoke(cli, ["plan", "--repo", url, "--ref", "main", "--out", "p.json"])
    assert made.exit_code == 0, made.output
    assert "s3cr3t-t0ken" not in made.output and "bot" not in made.output
    hint = made.output.split("apply it with: ")[1].strip()
    # the URL without its credentials, at the planned commit (which the fetch cache holds)
    assert shlex.split(hint) == ["gitops", "apply", "--repo", "https://git.example.com/deploy.git",
                                 "--ref", "c" * 40, "p.json"]


def test_a_json_file_that_is_not_a_plan_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.plan").write_text('{"apps": 1}')
    result = CliRunner().invoke(cli, ["apply", "p.plan"])
    assert "p.plan: not a gitops plan" in str(result.exception)


def _release(number: int, revision: str, outcome: Outcome) -> Release:
    return Release(number, revision, "d", outcome, "2026-01-01T00:00:00Z")


def test_after_a_rollback_the_last_line_names_the_failed_and_the_rollback_release() -> None:
    bad, good = "b" * 40, "a" * 40
    back = deploy.Result("web", "rolled-back", AppPlan("web", "kubernetes", "t", good, "", ""),
                         release=_release(4, good, Outcome.ROLLED_BACK))
    result = deploy.Result("web", "rolled-back", AppPlan("web", "kubernetes", "t", bad, "", ""),
                           release=_release(3, bad, Outcome.FAILED), rollback=back, error="CrashLoopBackOff")
    last = view.result_text(result).splitlines()[-1]
    assert last == (f"web: rolled back: release 3 (revision {bad[:12]}) failed; "
                    f"release 4 restored revision {good[:12]}")
    # the same numbers and outcomes as history shows
    state = AppState(app="web", releases=(_release(2, good, Outcome.SUCCEEDED), result.release, back.release))
    rows = [line.split()[:3] for line in view.history_text(state).splitlines()[1:3]]
    assert rows == [["4", good[:20], "rolled-back"], ["3", bad[:20], "failed"]]


def test_plan_output_markdown_has_a_summary_line_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "open_workspace", lambda **kw: kw)
    monkeypatch.setattr(engine, "plan", lambda *_a, **_kw: (_plan(), []))
    result = CliRunner().invoke(cli, ["plan", "--output", "markdown", "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("### gitops plan: 1 of 1 app(s) would change")
    assert "- 📝 web: 1 to create, 0 to update, 0 to replace, 0 to delete" in result.output
    assert "<details><summary>web</summary>" in result.output and "+ Deployment/web/web" in result.output
