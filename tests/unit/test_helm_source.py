"""Helm apps in gitops.yaml, and what the Helm renderer makes of `helm template` output (no binary needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops import config
from gitops.render import Renderer
from gitops.render import helm as helm_render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "helm"


def test_example_helm_app_loads() -> None:
    [app] = config.load(EXAMPLE).apps
    assert app.paths == () and app.helm is not None
    assert (app.helm.chart, app.helm.release, app.helm.local) == ("charts/web", "shop", True)
    assert app.helm.values_files == ("values/prod.yaml",) and app.helm.values == {"logLevel": "info"}


def test_release_defaults_to_the_app_name_and_a_repository_chart_is_pinned() -> None:
    settings = config.parse("apps:\n  - name: a\n    backend: kubernetes\n"
                            "    helm: {chart: web, repo: 'https://charts.example.com', version: 1.2.3}\n")
    [app] = settings.apps
    assert app.helm == helm_render.HelmSource("web", "a", "https://charts.example.com", "1.2.3")
    assert not app.helm.local


@pytest.mark.parametrize(("text", "message"), [
    ("    helm: {chart: web, repo: 'https://c.example.com'}\n", "apps[0].helm.version: a chart from a repository"),
    ("    helm: {chart: ../web}\n", "apps[0].helm.chart: '../web' leaves the repository"),
    ("    helm: {chart: web, values_files: [../v.yaml]}\n", "apps[0].helm.values_files[0]: '../v.yaml' leaves"),
    ("    helm: {chart: web, valuez: {}}\n", "apps[0].helm: unknown field 'valuez'"),
    ("    target: {}\n", "apps[0]: give paths (files or directories) or helm (a chart)"),
])
def test_helm_config_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse("apps:\n  - name: a\n    backend: kubernetes\n" + text)
    assert message in str(caught.value)
    assert all(d.file == config.CONFIG_FILE and d.line for d in caught.value.diagnostics)


def test_a_swarm_app_takes_no_chart() -> None:
    with pytest.raises(config.ConfigError, match=r"apps\[0\].helm: a Helm chart is a Kubernetes source"):
        config.parse("apps:\n  - {name: a, backend: swarm, target: {stack: s}, helm: {chart: web}}\n")


OUTPUT = b"""---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata: {name: web}
---
# Source: web/charts/cache/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache}
---
# Source: web/templates/tests/smoke.yaml
apiVersion: v1
kind: Pod
metadata: {name: smoke, annotations: {helm.sh/hook: test}}
---
# Source: web/templates/hooks.yaml
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, annotations: {helm.sh/hook: "pre-install,pre-upgrade"}}
---
# Source: web/templates/hooks.yaml
apiVersion: batch/v1
kind: Job
metadata: {name: cleanup, annotations: {helm.sh/hook: pre-delete}}
"""


def test_output_objects_name_their_chart_template_and_hooks_that_never_run_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helm_render, "template", lambda *args, **kwargs: (OUTPUT, None))
    renderer = Renderer(tmp_path, helm="helm")
    renderer.add_helm(helm_render.HelmSource("charts/web", "web"), "ns", "1.35", "gitops.yaml (app web)")
    found = {m.body["metadata"]["name"]: str(m.origin) for m in renderer.result.manifests}
    assert set(found) == {"web", "cache", "migrate"}  # the test and pre-delete hooks are not applied
    assert found["web"].startswith("charts/web/templates/service.yaml")
    assert found["cache"].startswith("charts/web/charts/cache/templates/deployment.yaml")


def test_hooks_are_the_user_waves_around_the_app() -> None:
    from gitops.backends.kubernetes import kinds

    def wave(annotations: dict[str, str]) -> int:
        return kinds.hook_waves([("hook", annotations), ("app", {})]).get("hook", 0)

    assert wave({"helm.sh/hook": "pre-install, pre-upgrade"}) == -1
    assert wave({"helm.sh/hook": "post-upgrade"}) == 1
    assert wave({}) == 0
    assert wave({"helm.sh/hook": "pre-install", "gitops.dev/wave": "3"}) == 0  # its own wave: not a hook wave
    assert kinds.hook_wave("pre-upgrade") == -1 and kinds.hook_wave("post-install") == 1  # alone (a prune)


def test_hook_weights_are_waves_of_their_own_in_weight_order_around_every_other_wave() -> None:
    from gitops.backends.kubernetes import kinds

    objects = [
        ("seed", {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "5"}),
        ("migrate", {"helm.sh/hook": "pre-upgrade,pre-install", "helm.sh/hook-weight": "-3"}),
        ("check", {"helm.sh/hook": "pre-upgrade", "helm.sh/hook-weight": "-3"}),  # same weight: same wave
        ("crds", {"gitops.dev/wave": "-1"}),  # the app's own lowest wave: pre hooks go below it
        ("app", {}),
        ("notify", {"helm.sh/hook": "post-install", "helm.sh/hook-weight": "1"}),
        ("smoke", {"helm.sh/hook": "post-upgrade", "helm.sh/hook-weight": "junk"}),  # helm reads it as 0
        ("late", {"gitops.dev/wave": "4"}),
    ]
    assert kinds.hook_waves(objects) == {"migrate": -3, "check": -3, "seed": -2, "smoke": 5, "notify": 6}


def test_the_delete_policy_defaults_to_before_hook_creation() -> None:
    from gitops.backends.kubernetes import kinds

    assert kinds.hook_delete_policies({}) == {"before-hook-creation"}
    assert kinds.hook_delete_policies({"helm.sh/hook-delete-policy": "hook-succeeded, hook-failed"}) == {
        "hook-succeeded", "hook-failed"}


def test_no_binary_is_an_error_that_says_how_to_install_it(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path, helm=None)
    renderer.add_helm(helm_render.HelmSource("charts/web", "web"), "ns", "1.35", "gitops.yaml (app web)")
    [problem] = renderer.result.diagnostics
    assert problem.code == "helm-missing" and "GITOPS_HELM" in problem.message and "helm.sh/docs" in problem.message


def test_a_chart_directory_given_as_a_path_says_to_declare_it_as_helm(tmp_path: Path) -> None:
    (tmp_path / "web" / "templates").mkdir(parents=True)
    (tmp_path / "web" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (tmp_path / "web" / "templates" / "x.yaml").write_text("kind: {{ .Values.kind }}\n")
    renderer = Renderer(tmp_path)
    renderer.add_path(tmp_path / "web")
    [problem] = renderer.result.diagnostics
    assert problem.code == "helm-chart-path" and "helm: {chart: web}" in problem.message


def test_the_helm_binary_comes_from_the_environment_the_caller_passes(tmp_path: Path) -> None:
    from gitops import engine

    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert engine.helm_binary({"GITOPS_HELM": "/opt/helm", "PATH": str(fake.parent)}) == "/opt/helm"
    assert engine.helm_binary({"PATH": str(fake.parent)}) == str(fake)
    assert engine.helm_binary({"PATH": str(tmp_path)}) is None
