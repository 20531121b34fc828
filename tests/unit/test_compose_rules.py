"""One compose rule table for validate and the Swarm translator: they agree on every file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from test_corpora import AWESOME, CORPORA, require

from gitops import engine
from gitops import render as render_stage
from gitops.backends.swarm.translate import translate
from gitops.model import Diagnostic, Severity
from gitops.render.compose import ComposeFile
from gitops.validate import compose as compose_checks
from gitops.validate import compose_rules
from gitops.validate.compose_rules import KEYS, Support

COMPOSE_SPEC = CORPORA / "compose-spec"
PATTERNS = ("**/compose.y*ml", "**/docker-compose.y*ml", "**/*.compose.y*ml")


def corpus_files() -> list[str]:
    found: set[str] = set()
    for base in (AWESOME, COMPOSE_SPEC):
        for pattern in PATTERNS:
            found.update(p.relative_to(CORPORA).as_posix() for p in base.glob(pattern))
    return sorted(found) or ["<absent>"]


def rendered(root: Path, relative: str) -> ComposeFile:
    renderer = render_stage.Renderer(root, None, {})
    renderer.add_path(root / relative)
    [compose] = renderer.result.compose
    return compose


def both(compose: ComposeFile, root: Path) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """What validate finds in a compose file, and what the translator (as the backend calls it) finds."""
    validated: list[Diagnostic] = []
    compose_checks.check(compose, root, validated)
    translation = translate(compose.data, compose.stack or "corpus",
                            read_file=lambda path: (compose.directory / path).read_bytes(), file=compose.file)
    return validated, list(translation.diagnostics)


def warnings(diagnostics: list[Diagnostic]) -> set[tuple[str, str, str]]:
    return {(d.pointer, d.code, d.message) for d in diagnostics if d.severity is Severity.WARNING}


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


@pytest.mark.parametrize("name", corpus_files())
def test_validate_and_the_translator_agree_on_every_corpus_file(name: str) -> None:
    require(AWESOME)
    compose = rendered(CORPORA, name)
    validated, translated = both(compose, CORPORA)
    assert has_errors(validated) == has_errors(translated), ([str(d) for d in validated if d.severity == "error"],
                                                             [str(d) for d in translated if d.severity == "error"])
    assert warnings(validated) == warnings(translated)


def test_the_corpus_is_all_there() -> None:
    require(AWESOME)
    assert len(corpus_files()) == 39  # compose-spec holds its schema only, no compose file


def _repo(tmp_path: Path, text: str) -> Path:
    (tmp_path / "compose.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(("text", "pointer", "line", "code"), [
    ("services:\n  web:\n    image: app:1\n    mem_limit: 64m\n", "/services/web/mem_limit", 4, "compose-schema"),
    ("services:\n  web:\n    image: app:1\n    ports: ['80:80']\n    deploy:\n      endpoint_mode: dnsrr\n",
     "/services/web/ports/0", 4, "swarm-endpoint-mode"),
    ("services:\n  web:\n    image: app:1\n    ports: [{target: 80, published: 80}]\n"
     "    deploy: {endpoint_mode: DNSRR}\n", "/services/web/ports/0", 4, "swarm-endpoint-mode"),
    ("services:\n  web:\n    image: app:1\n    volumes: ['./conf:/conf']\n", "/services/web/volumes/0", 4,
     "swarm-bind-source"),
])
def test_what_the_translator_refuses_is_a_validation_error_with_file_and_line(
        tmp_path: Path, text: str, pointer: str, line: int, code: str) -> None:
    root = _repo(tmp_path, text)
    report = engine.validate(["compose.yaml"], cwd=root, env={})
    [error] = report.errors
    assert (error.file, error.line, error.pointer, error.code) == ("compose.yaml", line, pointer, code)
    _, translated = both(rendered(root, "compose.yaml"), root)
    assert [(d.pointer, d.code) for d in translated if d.severity is Severity.ERROR] == [(pointer, code)]


def test_dnsrr_with_ports_published_in_host_mode_is_fine(tmp_path: Path) -> None:
    root = _repo(tmp_path, "services:\n  web:\n    image: app:1\n    ports: [{target: 80, published: 80, mode: host}]\n"
                           "    deploy: {endpoint_mode: dnsrr}\n")
    assert engine.validate(["compose.yaml"], cwd=root, env={}).ok
    validated, translated = both(rendered(root, "compose.yaml"), root)
    assert not has_errors(validated) and not has_errors(translated)


def test_an_ignored_key_is_the_same_warning_for_both(tmp_path: Path) -> None:
    root = _repo(tmp_path, "services:\n  web:\n    image: app:1\n    container_name: web\n    expose: [80]\n")
    validated, translated = both(rendered(root, "compose.yaml"), root)
    assert warnings(validated) == warnings(translated)
    assert {(p, c) for p, c, _ in warnings(validated)} == {
        ("/services/web/container_name", "swarm-ignored"), ("/services/web/expose", "swarm-ignored")}


def _schema_places() -> dict[str, Any]:
    schema = json.loads(resources.files("gitops").joinpath("schemas/compose-swarm.schema.json").read_text())
    d = schema["definitions"]
    service = d["service"]["properties"]
    deploy = d["deployment"]["properties"]
    return {
        "compose": schema, "service": d["service"], "deploy": d["deployment"], "network": d["network"],
        "volume": d["volume"], "config": d["config"], "secret": d["secret"], "healthcheck": d["healthcheck"],
        "resources": deploy["resources"], "limits": deploy["resources"]["properties"]["limits"],
        "reservations": deploy["resources"]["properties"]["reservations"],
        "restart_policy": deploy["restart_policy"], "update_config": deploy["update_config"],
        "placement": deploy["placement"], "logging": service["logging"],
        "port": service["ports"]["items"]["oneOf"][2], "mount": service["volumes"]["items"]["oneOf"][1],
        "ipam": d["network"]["properties"]["ipam"], "ipam_pool": d["network"]["properties"]["ipam"]["properties"][
            "config"]["items"],
    }


@pytest.mark.parametrize("place", sorted(_schema_places()))
def test_the_table_knows_every_key_of_the_schema_and_accepts_no_key_docker_refuses(place: str) -> None:
    # x- keys are extensions where Docker allows them: not the table's business
    schema_keys = {k for k in _schema_places()[place]["properties"]
                   if not (place in compose_rules.EXTENSIBLE and k.startswith("x-") and k not in KEYS[place])}
    table = KEYS[place]
    assert schema_keys <= set(table), schema_keys - set(table)
    accepted = {key for key, rule in table.items() if rule.support is not Support.REFUSED}
    assert accepted <= schema_keys, accepted - schema_keys


def test_every_rule_that_is_not_plain_support_says_why() -> None:
    rules = [rule for table in KEYS.values() for rule in table.values()] + list(compose_rules.FEATURES.values())
    for rule in rules:
        if rule.support is not Support.SUPPORTED:
            assert rule.reason and rule.code and rule.severity is not None, rule


# Values and combinations the translator cannot convert: each is a validation error at the same
# field, and the translator reports the same finding (it no longer checks them itself).
REFUSED_FRAGMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("volume mode", {"volumes": ["/a:/b:bogus"]}, "/services/web/volumes/0"),
    ("nocopy on a bind", {"volumes": ["/a:/b:nocopy"]}, "/services/web/volumes/0"),
    ("propagation on a volume", {"volumes": ["data:/b:rshared"]}, "/services/web/volumes/0"),
    ("endpoint mode", {"deploy": {"endpoint_mode": "rr"}}, "/services/web/deploy/endpoint_mode"),
    ("port mode", {"ports": [{"target": 80, "mode": "x"}]}, "/services/web/ports/0/mode"),
    ("published range", {"ports": [{"target": 80, "published": "90-x"}]}, "/services/web/ports/0/published"),
    ("restart condition", {"deploy": {"restart_policy": {"condition": "sometimes"}}},
     "/services/web/deploy/restart_policy/condition"),
    ("failure action", {"deploy": {"update_config": {"failure_action": "explode"}}},
     "/services/web/deploy/update_config/failure_action"),
    ("global with replicas", {"deploy": {"mode": "global", "replicas": 2}}, "/services/web/deploy/replicas"),
    ("test and disable", {"healthcheck": {"test": "x", "disable": True}}, "/services/web/healthcheck"),
    ("preference without spread", {"deploy": {"placement": {"preferences": [{}]}}},
     "/services/web/deploy/placement/preferences/0"),
    ("deploy mode", {"deploy": {"mode": "sometimes"}}, "/services/web/deploy/mode"),
    ("tmpfs with a source", {"volumes": [{"type": "tmpfs", "source": "x", "target": "/t"}]},
     "/services/web/volumes/0/source"),
    ("options of another type", {"volumes": [{"type": "volume", "source": "data", "target": "/t",
                                              "bind": {"propagation": "shared"}}]}, "/services/web/volumes/0/bind"),
    ("mount type", {"volumes": [{"type": "npipe", "source": "x", "target": "/t"}]}, "/services/web/volumes/0/type"),
    ("extra host", {"extra_hosts": ["nocolon"]}, "/services/web/extra_hosts/0"),
    ("port ranges", {"ports": ["80-81:90-92"]}, "/services/web/ports/0"),
    ("port protocol", {"ports": ["80/foo"]}, "/services/web/ports/0"),
    ("restart", {"restart": "sometimes"}, "/services/web/restart"),
    ("cpus", {"deploy": {"resources": {"limits": {"cpus": "lots"}}}}, "/services/web/deploy/resources/limits/cpus"),
    ("memory", {"deploy": {"resources": {"reservations": {"memory": "lots"}}}},
     "/services/web/deploy/resources/reservations/memory"),
    ("tmpfs size", {"volumes": [{"type": "tmpfs", "target": "/t", "tmpfs": {"size": "big"}}]},
     "/services/web/volumes/0/tmpfs/size"),
    ("duration", {"stop_grace_period": "10"}, "/services/web/stop_grace_period"),
]


@pytest.mark.parametrize(("fragment", "pointer"), [c[1:] for c in REFUSED_FRAGMENTS],
                         ids=[c[0] for c in REFUSED_FRAGMENTS])
def test_a_value_the_translator_cannot_convert_is_a_validation_error(
        tmp_path: Path, fragment: dict[str, Any], pointer: str) -> None:
    doc = {"services": {"web": {"image": "app:1", **fragment}}, "volumes": {"data": None}}
    root = _repo(tmp_path, json.dumps(doc))
    validated, translated = both(rendered(root, "compose.yaml"), root)
    errors = {d.pointer for d in validated if d.severity is Severity.ERROR}
    # the field itself; at most the schema's error on its parent besides
    assert pointer in errors and all(pointer.startswith(p) for p in errors), validated
    assert pointer in {d.pointer for d in translated if d.severity is Severity.ERROR}, translated
    report = engine.validate(["compose.yaml"], cwd=root, env={})
    [error] = [e for e in report.errors if e.pointer == pointer]
    assert (error.file, error.line) == ("compose.yaml", 1)  # the JSON document is one line
