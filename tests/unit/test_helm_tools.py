"""Where helm and the chart cache come from (one lookup at the edge), what a missing helm says,
what helm is given (the target's API versions), and the chart cache's own bounds."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops import engine
from gitops.cli import cli
from gitops.render import helm as helm_render
from gitops.render.charts import ARCHIVE, META, ChartCache


def _chart_repo(root: Path) -> Path:
    (root / "charts" / "web" / "templates").mkdir(parents=True)
    (root / "charts" / "web" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (root / "gitops.yaml").write_text("version: 1\napps:\n"
                                      "  - {name: web, backend: kubernetes, helm: {chart: charts/web}}\n")
    return root


def test_a_helm_flag_that_names_no_binary_says_how_to_install_helm(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_chart_repo(tmp_path))
    result = CliRunner().invoke(cli, ["validate", "--helm", str(tmp_path / "no-such-helm")])
    assert result.exit_code == 1
    assert f"the helm binary {tmp_path / 'no-such-helm'} does not exist or cannot be run" in result.output
    assert "get-helm-3 | bash" in result.output and "--helm PATH" in result.output


def test_the_install_hint_is_a_command_that_runs() -> None:
    command = helm_render.HELM_INSTALL.split("`")[1]
    assert command.startswith("curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3")
    words = shlex.split(command)
    assert words[-2:] == ["|", "bash"] and words[0] == "curl"  # a shell pipe: what helm's docs give


def test_every_command_that_renders_takes_the_helm_flag() -> None:
    for command in ("validate", "plan", "apply", "status", "diff", "daemon"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--helm PATH" in result.output, command


def test_tools_are_found_once_from_the_flag_the_environment_or_the_path(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    env = {"PATH": str(fake.parent), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert engine.Tools.find(env) == engine.Tools(str(fake), tmp_path / "xdg" / "gitops" / "charts")
    assert engine.Tools.find(env, "/opt/helm").helm == "/opt/helm"
    assert engine.Tools.find({**env, "GITOPS_HELM": "helm"}).helm == str(fake)  # a name: looked up on PATH
    assert engine.Tools.find({**env, "GITOPS_CACHE_DIR": str(tmp_path / "c")}).charts == tmp_path / "c" / "charts"


def test_helm_template_gets_the_targets_api_versions(tmp_path: Path) -> None:
    """A stand-in helm that records its arguments: one --api-versions per entry, sorted."""
    recorder = tmp_path / "helm"
    recorder.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'args'}\n")
    recorder.chmod(0o755)
    root = _chart_repo(tmp_path / "repo")
    output, problem = helm_render.template(helm_render.HelmSource("charts/web", "web"), root, str(recorder), "ns",
                                           "1.35", "gitops.yaml", api_versions={"example.com/v1/Widget", "v1",
                                                                                 "example.com/v1"})
    assert problem is None and output == b""
    args = (tmp_path / "args").read_text().splitlines()
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "--api-versions"]
    assert pairs == ["example.com/v1", "example.com/v1/Widget", "v1"]


def test_the_chart_cache_keeps_its_bounds_dropping_the_least_recently_used(tmp_path: Path) -> None:
    cache = ChartCache(tmp_path, max_charts=2)
    for age, name in enumerate(["old", "middle", "new"]):
        entry = tmp_path / name
        entry.mkdir()
        (entry / ARCHIVE).write_bytes(b"x" * 10)
        (entry / META).write_text(json.dumps({"digest": ""}))
        os.utime(entry, (time.time() - 100 + age, time.time() - 100 + age))
    cache._evict(keep=tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "new"]
    ChartCache(tmp_path, max_bytes=15)._evict(keep=tmp_path / "new")  # 10 bytes each: room for one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_only_pinned_http_charts_are_cached() -> None:
    assert ChartCache.cacheable("https://charts.example.com", "1.2.3")
    assert not ChartCache.cacheable("https://charts.example.com", None)
    assert not ChartCache.cacheable("oci://registry.example.com/charts", "1.2.3")
