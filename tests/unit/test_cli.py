"""The CLI contract: help lists the planned commands and the exit codes; --version works."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from gitops import __version__
from gitops.cli import cli

PLANNED = ("validate", "plan", "apply", "status", "history", "rollback", "daemon")


def test_help_lists_every_planned_command_and_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    for name in PLANNED:
        assert f"\n  {name} " in commands
    codes = re.findall(r"^\s+([0-9])  \S", result.output.split("Exit codes:")[1], re.MULTILINE)
    assert codes == ["0", "1", "2", "3", "4"]


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"gitops, version {__version__}"


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_console_script_runs_as_a_module(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "gitops", *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "gitops" in result.stdout


def test_unknown_command_is_an_error_with_exit_code_1() -> None:
    result = subprocess.run([sys.executable, "-m", "gitops", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "No such command" in result.stderr


def _result(app: str, outcome: str) -> Any:
    from gitops import deploy
    from gitops.model.plans import AppPlan

    return deploy.Result(app, outcome, AppPlan(app, "fake", "fake:memory", "r1", "d", "b"),
                         error="boom" if outcome in ("failed", "rolled-back") else "")


@pytest.mark.parametrize(("outcomes", "code"), [
    (["applied", "no-op"], 0),
    (["applied", "rolled-back"], 3),
    (["rolled-back", "failed"], 1),  # an error outranks a rollback, whatever the order
    (["failed", "rolled-back"], 1),
    (["rolled-back", "applied", "failed", "rolled-back"], 1),
])
def test_apply_exit_code_is_the_worst_outcome_and_an_error_outranks_a_rollback(
        monkeypatch: pytest.MonkeyPatch, outcomes: list[str], code: int) -> None:
    from gitops import engine

    monkeypatch.setattr(engine, "open_workspace", lambda **_kw: object())
    monkeypatch.setattr(engine, "apply", lambda *_a, **_kw: [_result(f"app{i}", o) for i, o in enumerate(outcomes)])
    result = CliRunner().invoke(cli, ["apply", "--auto-approve"])
    assert result.exit_code == code, result.output


def test_every_gitops_error_exits_1() -> None:
    from gitops import errors
    from gitops.cli import exit_code

    kinds = [errors.LockLostError, errors.LockedError, errors.StateConflictError, errors.UnreachableError,
             errors.ConflictError, errors.ImmutableFieldError, errors.StalePlanError]
    assert {exit_code(error=kind("x")) for kind in kinds} == {1}
    assert exit_code(outcomes=["rolled-back"], error=errors.GitopsError("x")) == 1
