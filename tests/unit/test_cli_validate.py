"""`gitops validate`: arguments, exit codes, text and JSON output (click's CliRunner, in-process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from testsupport import trim_example

from gitops.cli import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """examples/repo without its Helm app and override stack (they need helm: the integration
    tests validate and apply them)."""
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root)
    trim_example(root, promotion=True)
    return root


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(cli, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_example_repo_is_valid(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke([], example, monkeypatch)
    assert code == 0, output
    assert output.strip().splitlines()[-1].startswith("valid: 10 files, 15 Kubernetes objects, 2 Swarm services")


def test_example_repo_json(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke(["--output", "json", "--strict"], example, monkeypatch)
    report = json.loads(output)
    assert code == 0 and report["valid"] is True
    assert report["apps"] == ["web", "demo", "shop-staging", "shop-production"]
    assert report["kubernetes_version"] == "1.35" and report["strict"] is True


def test_invalid_file_exits_1_with_located_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: asd\n"
    )
    code, output = invoke(["bad.yaml"], tmp_path, monkeypatch)
    assert code == 1
    assert "error: bad.yaml:5:3, document 1, Deployment/default/x, field /spec/replicas: expected integer" in output
    code, output = invoke(["bad.yaml", "--output", "json"], tmp_path, monkeypatch)
    diagnostics = json.loads(output)["diagnostics"]
    assert {d["message"] for d in diagnostics} >= {"missing required field 'selector'"}
    [diagnostic] = [d for d in diagnostics if d["pointer"] == "/spec/replicas"]
    assert diagnostic == {
        "severity": "error", "file": "bad.yaml", "document": 1, "line": 5, "column": 3, "pointer": "/spec/replicas",
        "resource": "Deployment/default/x", "code": "schema", "message": 'expected integer (or null), got string "asd"',
    }  # fmt: skip


def test_removed_api_and_kubernetes_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "old.yaml").write_text("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\n")
    code, output = invoke(["old.yaml"], tmp_path, monkeypatch)
    assert code == 1 and "was removed in Kubernetes 1.16; use apps/v1 instead" in output
    code, output = invoke(["old.yaml", "--kubernetes-version", "1.29"], tmp_path, monkeypatch)
    assert "(Kubernetes 1.29)" in output


def test_bad_input_never_gives_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_bytes(b"\x00\xff: [\n")
    (tmp_path / "b.yaml").write_text("key: [unclosed\n")
    (tmp_path / "c.json").write_text('{"a": }')
    code, output = invoke(["."], tmp_path, monkeypatch)
    assert code == 1 and "Traceback" not in output
    assert "a.yaml" in output and "b.yaml:2" in output and "c.json" in output


def test_no_config_without_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke([], tmp_path, monkeypatch)
    assert code == 1 and "no gitops.yaml" in output


def test_missing_path_and_ref_without_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke(["nope.yaml"], tmp_path, monkeypatch)
    assert code == 1 and "nope.yaml" in output and "no such file" in output
    code, _ = invoke(["--ref", "main"], tmp_path, monkeypatch)
    assert code == 2  # usage error


def test_dangerous_repo_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--repo", "ext::sh -c 'touch pwned'"])
    assert result.exit_code != 0 and not (tmp_path / "pwned").exists()
