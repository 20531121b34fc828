"""The CLI contract: help lists the planned commands and the exit codes; --version works."""

from __future__ import annotations

import re
import subprocess
import sys

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
    codes = re.findall(r"^\s+([0-3])  \S", result.output.split("Exit codes:")[1], re.MULTILINE)
    assert codes == ["0", "1", "2", "3"]


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
