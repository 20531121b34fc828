"""The policy rules over the shared corpora (../shared/corpora): every file goes through them
without a crash, and the rules that fire on podinfo's kustomize output and on every awesome-compose
file are the ones recorded in tests/unit/data/policy/corpora.json.

After a deliberate change of a rule, rewrite the table and review its diff:
    PYTHONPATH=.:tests python tests/unit/test_policy_corpora.py --write
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from testsupport import CORPORA, unavailable

from gitops import engine
from gitops.validate.policy import BY_ID

TABLE = Path(__file__).resolve().parent / "data" / "policy" / "corpora.json"
AWESOME = CORPORA / "awesome-compose"
PODINFO = CORPORA / "podinfo"


def require(path: Path) -> Path:
    if not path.exists():
        unavailable(f"test corpus {path} is absent")
    return path


def fired(base: Path, name: str) -> dict[str, int]:
    """Rule id -> how many findings, for one corpus path."""
    report = engine.validate([name], cwd=base, env={})
    return dict(sorted(Counter(d.code for d in report.diagnostics if d.code in BY_ID).items()))


def current() -> dict[str, dict[str, int]]:
    table = {"podinfo/kustomize": fired(PODINFO, "kustomize")}
    for path in sorted(AWESOME.glob("*/compose.y*ml")):
        name = path.relative_to(AWESOME).as_posix()
        table[f"awesome-compose/{name}"] = fired(AWESOME, name)
    return table


def recorded() -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = json.loads(TABLE.read_text()) if TABLE.is_file() else {}
    return table


def test_the_recorded_rules_fire_on_podinfo_kustomize() -> None:
    require(PODINFO)
    if not (shutil.which("kustomize") or shutil.which("kubectl")):
        unavailable("no kustomize engine installed")
    assert fired(PODINFO, "kustomize") == recorded()["podinfo/kustomize"]


def awesome_names() -> list[str]:
    return [k.removeprefix("awesome-compose/") for k in recorded() if k.startswith("awesome-compose/")]


@pytest.mark.parametrize("name", awesome_names())
def test_the_recorded_rules_fire_on_awesome_compose(name: str) -> None:
    require(AWESOME / name)
    assert fired(AWESOME, name) == recorded()[f"awesome-compose/{name}"]


def test_the_table_covers_every_awesome_compose_file() -> None:
    require(AWESOME)
    on_disk = sorted(p.relative_to(AWESOME).as_posix() for p in AWESOME.glob("*/compose.y*ml"))
    assert on_disk == sorted(awesome_names())


def test_the_table_exercises_the_rules() -> None:
    """The corpora are realistic: most of the Swarm rules fire somewhere (a table of nothing would pass)."""
    seen = {rule for counts in recorded().values() for rule in counts}
    assert {"image-tag", "memory-limit", "healthcheck", "secret-env", "single-replica", "docker-socket"} <= seen


@pytest.mark.parametrize("corpus", ["kubeconform-fixtures/fixtures", "kubeval-fixtures/fixtures", "podinfo/deploy",
                                    "podinfo/kustomize", "awesome-compose"])
def test_every_corpus_file_goes_through_the_rules(corpus: str) -> None:
    base = require(CORPORA / corpus)
    files = sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    assert files
    for path in files:
        if "kustomization" in path.name:
            continue
        report = engine.validate([path.name], cwd=path.parent, env={}, strict=True)  # no exception
        assert report.files <= 1


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE}")
