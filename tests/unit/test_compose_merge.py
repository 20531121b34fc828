"""Several compose files of one Swarm app merged as `docker stack deploy -c a -c b` does (the
parity with `docker stack config` itself is checked in tests/integration/test_compose_merge_live.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from gitops import engine
from gitops.render import Renderer
from gitops.validate.compose_merge import merge

DATA = Path(__file__).parent / "data" / "compose-merge"


def rendered(*names: str) -> list:  # type: ignore[type-arg]
    renderer = Renderer(DATA, None, {}, stack="s")
    for name in names:
        renderer.add_path(DATA / name)
    assert not renderer.result.diagnostics
    return renderer.result.compose


def test_services_merge_key_by_key_with_docker_stacks_rules() -> None:
    merged, _ = merge(rendered("base.yml", "override.yml"))
    web = merged.data["services"]["web"]
    assert web["image"] == "gitops-test/app:2"
    assert web["command"] == ["httpd", "-f", "-p", "8081"]  # replaced, not appended
    assert web["ports"] == ["8080:81", "9090:90"]  # by published port, sorted
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}
    assert web["read_only"] is True  # a later false does not replace (docker/cli's mergo)
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]  # other sequences are appended
    assert web["networks"] == {"front": {"aliases": ["www"]}, "back": {}}
    assert web["secrets"] == ["token"]
    assert web["healthcheck"] == {"test": ["CMD", "false"], "interval": "5s"}
    assert web["deploy"]["replicas"] == 0  # a count: 0 replaces
    assert web["deploy"]["labels"] == {"tier": "web", "env": "prod"}
    assert web["deploy"]["resources"] == {"limits": {"memory": "64M", "cpus": "0.5"}}
    assert web["volumes"] == ["other:/data", "logs:/logs"]  # by target, sorted by target
    assert merged.data["services"]["worker"] == {"image": "gitops-test/app:1", "environment": ["MODE=worker"]}
    assert merged.data["services"]["cache"] == {"image": "gitops-test/app:3"}
    # Top-level entries are replaced whole; relative paths resolve from the first file.
    assert merged.data["volumes"] == {"data": {}, "logs": {}, "other": {}}
    assert merged.data["networks"] == {"front": {}, "back": {"driver": "overlay"}}
    assert merged.path == "base.yml" and merged.file == "base.yml + override.yml"


def test_each_merged_value_knows_the_file_and_field_it_was_written_in() -> None:
    from gitops.validate.compose_merge import _resolve

    _, where = merge(rendered("base.yml", "override.yml"))
    assert _resolve(where, "/services/web/image") == (1, "/services/web/image")
    assert _resolve(where, "/services/web/ports/0") == (1, "/services/web/ports/0")  # 8080:81
    assert _resolve(where, "/services/web/ports/1") == (0, "/services/web/ports/0")  # 9090:90
    assert _resolve(where, "/services/web/volumes/1") == (0, "/services/web/volumes/1")  # logs
    assert _resolve(where, "/services/web/dns/1") == (1, "/services/web/dns/0")
    assert _resolve(where, "/services/web/deploy/resources/limits/cpus") == (
        1, "/services/web/deploy/resources/limits/cpus")
    assert _resolve(where, "/services/web/deploy/resources/limits/memory") == (
        0, "/services/web/deploy/resources/limits/memory")
    assert _resolve(where, "/services/cache/image") == (1, "/services/cache/image")
    assert _resolve(where, "/services/worker/image") == (0, "/services/worker/image")


def test_a_problem_in_an_override_file_names_that_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "repo")
    root = tmp_path / "repo"
    (root / "gitops.yaml").write_text("version: 1\napps:\n  - name: s\n    backend: swarm\n"
                                      "    paths: [base.yml, bad-override.yml]\n    target: {stack: s}\n")
    report = engine.validate(cwd=root, env={})
    problems = [d for d in report.diagnostics if "mem_limit" in d.message]
    assert [(d.file, d.line, d.pointer) for d in problems] == [("bad-override.yml", 6, "/services/web/mem_limit")]
    # The same files as loose paths are two stacks, not merged: the override alone is checked.
    loose = engine.validate(["base.yml", "bad-override.yml"], cwd=root, env={})
    assert any(d.file == "bad-override.yml" and "mem_limit" in d.message for d in loose.diagnostics)


def test_one_compose_file_is_left_as_it_is() -> None:
    [one] = rendered("base.yml")
    merged, where = merge([one])
    assert merged.data == one.data and where == {}
