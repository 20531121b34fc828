"""The CI examples stay true to the tool: every use of the action passes only inputs action.yml
declares, every `gitops` command line in the GitLab template and the pre-commit hook parses
(the options exist), and examples/ci lies outside examples/repo (it is not an app's files)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import yaml

from gitops.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _parses(line: str) -> None:
    """The command line's words are accepted by the command it names (options, arguments)."""
    words = shlex.split(line.replace('"$CI_MERGE_REQUEST_DIFF_BASE_SHA"', "abc"))
    assert words[0] == "gitops", line
    command: click.Command | None = cli
    args = words[1:]
    while isinstance(command, click.Group):
        command = command.get_command(click.Context(command), args[0])
        name, args = args[0], args[1:]
    assert command is not None, line
    command.make_context(name, args)


def test_workflows_use_only_declared_inputs() -> None:
    inputs = set(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])
    uses = 0
    for workflow in sorted((ROOT / "examples/ci/github").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("OWNER/gitops@"):
                    uses += 1
                    assert set(step.get("with", {})) <= inputs, (workflow.name, step)
    assert uses >= 4


def test_gitlab_template_and_pre_commit_hook_command_lines_parse(tmp_path: Path) -> None:
    template = yaml.safe_load((ROOT / "examples/ci/gitlab/gitops.gitlab-ci.yml").read_text())
    lines = [line for job in template.values() if isinstance(job, dict) for line in job.get("script", [])
             if str(line).startswith("gitops ")]
    assert len(lines) >= 4
    (tmp_path / "d.md").write_text("x")
    for line in lines:
        _parses(line.split(" > ")[0].split(" || ")[0].replace("gitops-diff.md", str(tmp_path / "d.md")))
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    _parses(hook["entry"])


def test_ci_examples_are_not_inside_the_example_repository() -> None:
    assert not (ROOT / "examples/repo/ci").exists()
    assert (ROOT / "examples/ci").is_dir() and ROOT / "examples/repo" not in (ROOT / "examples/ci").parents
