"""gitops.yaml: loading, defaults, and errors with their field path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops import config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo"


def test_example_repo_config_loads() -> None:
    settings = config.load(EXAMPLE)
    web, demo, staging, production, catalog, api = settings.apps
    assert catalog.helm is not None and (catalog.helm.chart, catalog.helm.values_files) == (
        "charts/catalog", ("catalog/values.yaml",))
    assert catalog.paths == ("catalog/namespace.yaml",) and catalog.target.namespace == "catalog"
    assert (api.backend, api.paths, api.target.stack) == ("swarm", ("api/compose.yaml", "api/production.yaml"), "api")
    assert (production.promote_from, production.promote_after, staging.promote_from) == ("shop-staging", 600.0, None)
    assert staging.paths == ("shop/base", "shop/staging") and production.target.namespace == "shop-production"
    assert (web.name, web.backend, web.paths, web.target.namespace) == ("web", "kubernetes", ("k8s",), "web")
    assert (demo.backend, demo.target.stack, demo.env_files) == ("swarm", "demo", ("swarm/demo.env",))
    assert web.sync.prune and web.sync.self_heal and web.sync.interval_seconds == 60
    assert web.rollout.timeout_seconds == 300 and demo.rollout.timeout_seconds == 180
    assert settings.kubernetes_version == "1.35"
    assert settings.app("demo") is demo


def test_minimal_config_defaults() -> None:
    settings = config.parse("apps:\n  - {name: a, backend: kubernetes, paths: manifests}\n")
    [app] = settings.apps
    assert app.paths == ("manifests",) and app.target.namespace == "default"
    assert app.sync == config.SyncPolicy() and app.rollout == config.RolloutPolicy()


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            "apps:\n  - name: a\n    backend: k8s\n    paths: [x]\n",
            'apps[0].backend: must be one of "kubernetes", "swarm"',
            3,
        ),
        (
            "apps:\n  - name: a\n    backend: swarm\n    paths: [x]\n    target: {host: h}\n",
            "apps[0].target: 'stack' is required",
            5,
        ),
        ("apps:\n  - name: a\n    backend: kubernetes\n    paths: [/etc]\n", "apps[0].paths", 4),
        (
            "apps:\n  - name: a\n    backend: kubernetes\n    paths: [x]\n    sync: {prune: yes please}\n",
            "apps[0].sync.prune",
            5,
        ),
        (
            "apps:\n  - name: a\n    backend: kubernetes\n    paths: [x]\n    rollout: {timeout: soon}\n",
            "apps[0].rollout.timeout",
            5,
        ),
        (
            "apps:\n  - name: a\n    backend: kubernetes\n    paths: [x]\n    colour: red\n",
            "apps[0]: unknown field 'colour'",
            2,
        ),
        (
            "apps:\n  - {name: a, backend: kubernetes, paths: [x]}\n  - {name: a, backend: kubernetes, paths: [b]}\n",
            "duplicate app name",
            3,
        ),
        ("apps:\n  - {name: a, backend: kubernetes, paths: [../x]}\n", "leaves the repository", 2),
        ("apps: []\n", "apps", 1),
    ],
)
def test_wrong_config_names_the_field(text: str, message: str, line: int) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text)
    [problem] = caught.value.diagnostics
    assert message in problem.message
    assert problem.line == line and problem.file == "gitops.yaml"


def test_yaml_problems_in_config() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse("apps: [\n")
    assert caught.value.diagnostics[0].code == "yaml-syntax"
    with pytest.raises(config.ConfigError) as caught:
        config.parse("apps: []\napps: []\n")
    assert caught.value.diagnostics[0].code == "duplicate-key"


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"no gitops\.yaml"):
        config.load(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25)]
)
def test_durations(text: int | str, seconds: float) -> None:
    assert config.parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        config.parse_duration("5 minutes")


def test_prune_guard_settings_and_their_defaults() -> None:
    settings = config.parse(
        "defaults:\n  sync: {prune: true, prune_data: true}\n"
        "apps:\n  - {name: a, backend: kubernetes, paths: m}\n"
        "  - name: b\n    backend: kubernetes\n    paths: m\n"
        "    sync: {allow_cascade: true, max_delete_ratio: 0.2, mass_delete_min: 2}\n")
    a, b = settings.apps
    assert (a.sync.prune_data, a.sync.allow_cascade, a.sync.max_delete_ratio, a.sync.mass_delete_min) == (
        True, False, 0.5, 5)
    assert (b.sync.prune_data, b.sync.allow_cascade, b.sync.max_delete_ratio, b.sync.mass_delete_min) == (
        True, True, 0.2, 2)
    with pytest.raises(config.ConfigError, match="max_delete_ratio"):
        config.parse("apps:\n  - {name: a, backend: kubernetes, paths: m, sync: {max_delete_ratio: 1.5}}\n")


def test_depends_on_names_apps_refuses_unknown_ones_and_cycles_and_orders_the_apps() -> None:
    from gitops import config as cfg

    def parse(apps: str) -> cfg.Settings:
        return cfg.parse(("version: 1\napps:\n" + apps).encode(), "gitops.yaml")

    line = "  - {{name: {}, backend: swarm, paths: [x.yml], target: {{stack: s}}, depends_on: [{}]}}\n"
    settings = parse(line.format("web", "db") + line.format("db", "") + line.format("cache", ""))
    assert [a.name for a in cfg.in_dependency_order(list(settings.apps))] == ["db", "web", "cache"]
    assert settings.app("web").depends_on == ("db",)
    with pytest.raises(cfg.ConfigError) as refused:
        parse(line.format("a", "b") + line.format("b", "a") + line.format("c", "nope"))
    messages = [d.message for d in refused.value.diagnostics]
    assert any("a cycle: a -> b -> a" in m for m in messages)
    assert any("depends on 'nope', which is not an app" in m for m in messages)
    assert all(d.file == "gitops.yaml" and d.line is not None for d in refused.value.diagnostics)
