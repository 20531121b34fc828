"""Helm charts as an app source, end to end through the CLI on the real control plane.

The chart is examples/helm (a local chart with values files, inline values, a vendored dependency,
pre/post hooks and a test hook); a second test serves a packaged chart from a chart repository
on loopback (`helm package` + `helm repo index` + a static HTTP server) and deploys a pinned version.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import build
from repos import HELM_EXAMPLE, make_repo


@pytest.fixture(scope="session")
def helm() -> str:
    return str(build.helm())


@pytest.fixture
def apps(kube_cluster: Any) -> Iterator[list[str]]:
    """App names a test deploys: their state Secret and lock Lease are removed afterwards."""
    names: list[str] = []
    yield names
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    try:
        secret = client.resource_type("v1", "Secret")
        lease = client.resource_type("coordination.k8s.io/v1", "Lease")
        for name in names:
            if secret is not None:
                client.delete(secret, "gitops-system", f"gitops-state-{name}")
            if lease is not None:
                client.delete(lease, "gitops-system", f"gitops-lock-{name}")
    finally:
        client.close()


def _env(kube_cluster: Any, helm: str) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig), "GITOPS_HELM": helm}


def _changes(out: str) -> dict[str, dict[str, Any]]:
    [app] = json.loads(out)["apps"]
    return {f"{c['kind']}/{c['name']}": c for c in app["changes"]}


@pytest.mark.kube
def test_local_chart_deploys_upgrades_and_rolls_back(kube_cluster: Any, namespace: str, helm: str,
                                                      tmp_path: Path, apps: list[str]) -> None:
    app = f"shop-{namespace[-6:]}"
    apps.append(app)
    repo = make_repo(tmp_path, [("gitops.yaml", r"^  - name: shop$", f"  - name: {app}"),
                                ("gitops.yaml", r"namespace: shop$", f"namespace: {namespace}")],
                     _env(kube_cluster, helm), example=HELM_EXAMPLE)

    first = repo.gitops("plan", app, "--output", "json")
    assert first.returncode == 0, first.stderr
    changes = _changes(first.stdout)
    assert set(changes) == {"Deployment/shop", "Deployment/shop-cache", "Service/shop", "ConfigMap/shop-config",
                            "Secret/shop-secret", "Job/shop-migrate", "ConfigMap/shop-deployed"}  # no test Pod
    assert all(c["action"] == "create" for c in changes.values())
    waves = {name: c["wave"] for name, c in changes.items()}
    assert waves["Job/shop-migrate"] < min(waves[n] for n in changes if "migrate" not in n and "deployed" not in n)
    assert waves["ConfigMap/shop-deployed"] > max(waves[n] for n in changes if "deployed" not in n)
    assert changes["Deployment/shop"]["origin"].startswith("charts/web/templates/deployment.yaml")
    assert changes["Deployment/shop-cache"]["origin"].startswith("charts/web/charts/cache/templates/deployment.yaml")

    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]
    order = [e.get("object", e["event"]) for e in events if e["event"] in ("change", "rollout")]
    # the pre-install Job is applied and finished before anything else is written, the post-install hook last
    assert order[:2] == [f"Job/{namespace}/shop-migrate", "rollout"], order
    assert order[-2:] == [f"ConfigMap/{namespace}/shop-deployed", "rollout"], order
    second = repo.gitops("plan", app, "--detailed-exitcode")
    assert second.returncode == 0, second.stdout  # no noise: what helm rendered is what the cluster holds

    # An upgrade: changed values are a field-level plan; a changed secret value is never shown.
    repo.edit("values/prod.yaml", "replicas: 2", "replicas: 3\napiToken: s3cr3t-value")
    repo.commit("scale up, rotate token")
    upgrade = repo.gitops("plan", app, "--detailed-exitcode")
    assert upgrade.returncode == 2, upgrade.stderr
    assert f"~ Deployment/{namespace}/shop" in upgrade.stdout and "/spec/replicas" in upgrade.stdout
    assert f"~ Secret/{namespace}/shop-secret" in upgrade.stdout
    assert "s3cr3t-value" not in upgrade.stdout and "change-me" not in upgrade.stdout
    assert f"Deployment/{namespace}/shop-cache" not in upgrade.stdout
    done = repo.gitops("apply", app, "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr

    # A crash-looping image: exit code 3 and everything back as it was.
    repo.edit("gitops.yaml", "        logLevel: info\n",
              "        logLevel: warn\n        image: {repository: gitops-test/crash, tag: '1'}\n")
    repo.commit("bad release")
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert failed.returncode == 3, failed.stdout[-3000:] + failed.stderr
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    cm, dep = client.resource_type("v1", "ConfigMap"), client.resource_type("apps/v1", "Deployment")
    assert cm is not None and dep is not None
    assert client.get(cm, namespace, "shop-config")["data"]["LOG_LEVEL"] == "info"  # type: ignore[index]
    image = client.get(dep, namespace, "shop")["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
    assert image == "ghcr.io/stefanprodan/podinfo:6.7.1"


@pytest.mark.kube
def test_missing_dependency_names_the_chart_and_the_entry(helm: str, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, [], {**os.environ, "GITOPS_HELM": helm}, example=HELM_EXAMPLE)
    shutil.rmtree(repo.root / "charts/web/charts")
    result = repo.gitops("validate")
    assert result.returncode == 1
    assert "chart web: dependency cache is missing" in result.stdout + result.stderr


class ChartRepository(str):
    """The URL of a chart repository served on loopback, with the paths it was asked for."""

    requests: list[str]
    served: Path


@pytest.fixture
def chart_repository(helm: str, tmp_path: Path) -> Iterator[ChartRepository]:
    """The example chart packaged at two versions into a chart repository served on loopback."""
    served = tmp_path / "served"
    served.mkdir()
    for version in ("0.1.0", "0.2.0"):
        chart = tmp_path / f"src-{version}" / "web"
        shutil.copytree(HELM_EXAMPLE / "charts" / "web", chart)
        meta = chart / "Chart.yaml"
        meta.write_text(meta.read_text().replace("version: 0.1.0\nappVersion", f"version: {version}\nappVersion"))
        if version == "0.2.0":
            values = chart / "values.yaml"
            values.write_text(values.read_text().replace("replicas: 1", "replicas: 4"))
        subprocess.run([helm, "package", str(chart), "--destination", str(served)], check=True, capture_output=True)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    handler = functools.partial(Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = ChartRepository(f"http://127.0.0.1:{server.server_address[1]}")
    url.requests, url.served = requests, served
    subprocess.run([helm, "repo", "index", str(served), "--url", url], check=True, capture_output=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.kube
def test_chart_from_a_repository_deploys_at_its_pinned_version(
    kube_cluster: Any, namespace: str, helm: str, chart_repository: ChartRepository, tmp_path: Path,
    apps: list[str]
) -> None:
    app = f"repo-{namespace[-6:]}"
    apps.append(app)
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: shop$", f"  - name: {app}"),
        ("gitops.yaml", r"namespace: shop$", f"namespace: {namespace}"),
        ("gitops.yaml", r"chart: charts/web$", f"chart: web\n      repo: {chart_repository}\n      version: 0.1.0"),
        ("values/prod.yaml", r"replicas: 2", "logLevel: warn"),
    ], _env(kube_cluster, helm), example=HELM_EXAMPLE)
    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    dep = client.resource_type("apps/v1", "Deployment")
    assert dep is not None
    assert client.get(dep, namespace, "shop")["spec"]["replicas"] == 1  # type: ignore[index]  # 0.1.0, not 0.2.0
    assert repo.gitops("plan", app, "--detailed-exitcode").returncode == 0

    repo.edit("gitops.yaml", "version: 0.1.0", "version: 0.2.0")
    repo.commit("chart 0.2.0")
    upgrade = repo.gitops("plan", app, "--detailed-exitcode")
    assert upgrade.returncode == 2 and "/spec/replicas" in upgrade.stdout, upgrade.stdout + upgrade.stderr


def test_a_repository_chart_is_cached_verified_by_its_digest_and_rendered_without_network(
    helm: str, chart_repository: ChartRepository, tmp_path: Path
) -> None:
    """The chart cache (gitops/render/charts.py), under the user's cache directory: the first render
    downloads the index and the archive, the second asks the repository nothing, a cached archive
    that was tampered with is fetched again, and an archive that is not what the index's digest
    says is refused."""
    cache = tmp_path / "xdg-cache"
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_CACHE_DIR"}
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"chart: charts/web$", f"chart: web\n      repo: {chart_repository}\n      version: 0.1.0"),
    ], {**env, "GITOPS_HELM": helm, "XDG_CACHE_HOME": str(cache)}, example=HELM_EXAMPLE)

    def objects() -> int:
        result = repo.gitops("validate", "--output", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        return int(json.loads(result.stdout)["objects"])

    assert objects() == 7
    assert chart_repository.requests == ["/index.yaml", "/web-0.1.0.tgz"]
    [archive] = (cache / "gitops" / "charts").glob("*/chart.tgz")
    chart_repository.requests.clear()
    assert objects() == 7
    assert chart_repository.requests == []  # rendered from the cache: no network

    archive.write_bytes(archive.read_bytes()[:-10])  # tampered with (or cut short)
    assert objects() == 7
    assert chart_repository.requests == ["/index.yaml", "/web-0.1.0.tgz"]  # detected, fetched again
    [again] = (cache / "gitops" / "charts").glob("*/chart.tgz")
    assert again.read_bytes() == (chart_repository.served / "web-0.1.0.tgz").read_bytes()

    # The repository now serves other bytes under 0.1.0 than its index's digest: refused.
    shutil.rmtree(cache)
    shutil.copy(chart_repository.served / "web-0.2.0.tgz", chart_repository.served / "web-0.1.0.tgz")
    refused = repo.gitops("validate")
    assert refused.returncode == 1
    assert "is not the digest" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


@pytest.mark.kube
def test_podinfo_chart_renders_validates_and_plans_without_noise(
    kube_cluster: Any, namespace: str, helm: str, corpora: Path, tmp_path: Path, apps: list[str]
) -> None:
    """The upstream podinfo chart (shared corpora) with its default values: valid, applied, and a
    second plan is empty."""
    app = f"podinfo-{namespace[-6:]}"
    apps.append(app)
    root = tmp_path / "repo"
    shutil.copytree(corpora / "podinfo" / "charts" / "podinfo", root / "charts" / "podinfo")
    (root / "gitops.yaml").write_text(
        "version: 1\nkubernetes_version: \"1.35\"\napps:\n"
        f"  - name: {app}\n    backend: kubernetes\n"
        "    helm: {chart: charts/podinfo, release: podinfo}\n"
        f"    target: {{namespace: {namespace}}}\n    rollout: {{timeout: 2m}}\n")
    from repos import Repo, git

    git(root, "init", "-q", "-b", "main")
    repo = Repo(root, _env(kube_cluster, helm))
    repo.commit("podinfo")
    # No schema noise; the policy rules do have findings on podinfo's defaults (warnings only: no
    # limits, one replica, may run as root), recorded for its kustomize files in the policy corpora.
    valid = repo.gitops("validate", "--no-policy")
    assert valid.returncode == 0 and "0 errors, 0 warnings" in valid.stdout, valid.stdout + valid.stderr
    with_policy = repo.gitops("validate")
    assert with_policy.returncode == 0 and "0 errors" in with_policy.stdout, with_policy.stdout
    assert all("[" in line for line in with_policy.stdout.splitlines() if line.startswith("warning:"))
    plan = repo.gitops("plan", app, "--output", "json")
    assert plan.returncode == 0, plan.stderr
    kinds = {name.split("/")[0] for name in _changes(plan.stdout)}
    assert {"Deployment", "Service"} <= kinds and "Pod" not in kinds  # templates/tests are test hooks
    applied = repo.gitops("apply", app, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = repo.gitops("plan", app, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


def test_kustomize_with_helm_charts_is_built_with_helm_enabled(helm: str, tmp_path: Path) -> None:
    """A kustomization's helmCharts: entry rendered through the helm binary gitops was given."""
    root = tmp_path / "repo"
    shutil.copytree(HELM_EXAMPLE / "charts" / "web", root / "kz" / "charts" / "web")
    (root / "kz" / "kustomization.yaml").write_text(
        "namespace: kz\nhelmCharts:\n  - name: web\n    releaseName: kz\n    valuesInline: {replicas: 3}\n")
    (root / "gitops.yaml").write_text("version: 1\napps:\n  - {name: kz, backend: kubernetes, paths: [kz]}\n")
    kubectl = build.cached()["kubectl"]
    path = os.pathsep.join([str(kubectl.parent)] * kubectl.exists() + [os.environ.get("PATH", "")])
    from repos import Repo, git

    git(root, "init", "-q", "-b", "main")
    repo = Repo(root, {**os.environ, "GITOPS_HELM": helm, "PATH": path})
    repo.commit("kustomize + helm")
    valid = repo.gitops("validate", "--output", "json")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert json.loads(valid.stdout)["objects"] == 7  # the test hook Pod is left out


def test_a_locked_dependency_is_built_from_its_repository(helm: str, chart_repository: ChartRepository,
                                                         tmp_path: Path) -> None:
    """Chart.lock and no charts/: `helm dependency build` fetches the pinned version, outside the checkout."""
    root = tmp_path / "repo"
    chart = root / "charts" / "site"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: site\nversion: 1.0.0\ndependencies:\n"
                                      f"  - name: web\n    version: 0.1.0\n    repository: {chart_repository}\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: site}\ndata: {A: b}\n")
    home = {**os.environ, "HOME": str(tmp_path / "home"), "HELM_CACHE_HOME": str(tmp_path / "home" / "cache")}
    subprocess.run([helm, "dependency", "update", str(chart)], check=True, capture_output=True, env=home)
    shutil.rmtree(chart / "charts")  # only the lock file is committed
    (root / "gitops.yaml").write_text("version: 1\napps:\n"
                                      "  - {name: site, backend: kubernetes, helm: {chart: charts/site}}\n")
    from repos import Repo, git

    git(root, "init", "-q", "-b", "main")
    repo = Repo(root, {**os.environ, "GITOPS_HELM": helm})
    repo.commit("locked dependency")
    valid = repo.gitops("validate", "--output", "json")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert json.loads(valid.stdout)["objects"] == 1 + 7  # site's ConfigMap and web 0.1.0's objects
    assert not (chart / "charts").exists()  # the checkout was not written to


@pytest.mark.kube
def test_a_failing_pre_install_hook_stops_the_apply_before_the_app_is_written(
    kube_cluster: Any, namespace: str, helm: str, tmp_path: Path, apps: list[str]
) -> None:
    app = f"hook-{namespace[-6:]}"
    apps.append(app)
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: shop$", f"  - name: {app}"),
        ("gitops.yaml", r"namespace: shop$", f"namespace: {namespace}"),
        ("gitops.yaml", r"^        logLevel: info$", "        logLevel: info\n"
                                                     "        image: {repository: gitops-test/crash, tag: '1'}"),
    ], _env(kube_cluster, helm), example=HELM_EXAMPLE)
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert failed.returncode != 0, failed.stdout
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    written = [e["object"] for e in events if e["event"] == "change" and e.get("action") != "delete"]
    assert written == [f"Job/{namespace}/shop-migrate"], written  # nothing after the hook that failed
    assert "shop-migrate" in next(e for e in events if e["event"] == "failed")["why"]


def _chart_app(tmp_path: Path, app: str, namespace: str, templates: dict[str, str], env: dict[str, str],
               values: str = "") -> Any:
    """A repository holding one local chart (charts/app) as the Helm app ``app`` in ``namespace``."""
    from repos import Repo, git

    root = tmp_path / "repo"
    chart = root / "charts" / "app"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text(values)
    for name, text in templates.items():
        (chart / "templates" / name).write_text(text)
    (root / "gitops.yaml").write_text(
        "version: 1\nkubernetes_version: \"1.35\"\napps:\n"
        f"  - name: {app}\n    backend: kubernetes\n    helm: {{chart: charts/app, release: app}}\n"
        f"    target: {{namespace: {namespace}}}\n    rollout: {{timeout: 2m}}\n")
    git(root, "init", "-q", "-b", "main")
    repo = Repo(root, env)
    repo.commit("chart")
    return repo


@pytest.mark.kube
def test_the_target_clusters_api_versions_reach_capabilities(
    kube_cluster: Any, namespace: str, helm: str, tmp_path: Path, apps: list[str]
) -> None:
    """`.Capabilities.APIVersions.Has` answers for the cluster being planned: an object behind a
    CRD's group/version (or group/version/Kind) is rendered only once a CRD serves it; `validate`,
    which asks no cluster, renders with helm's defaults."""
    app = f"caps-{namespace[-6:]}"
    apps.append(app)
    group = f"{namespace}.example.com"
    repo = _chart_app(tmp_path, app, namespace, {"caps.yaml": (
        f'{{{{- if .Capabilities.APIVersions.Has "{group}/v1" }}}}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: by-version}\ndata: {a: b}\n"
        "{{- end }}\n---\n"
        f'{{{{- if .Capabilities.APIVersions.Has "{group}/v1/Widget" }}}}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: by-kind}\ndata: {a: b}\n"
        "{{- end }}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: always}\ndata: {a: b}\n")},
        _env(kube_cluster, helm))

    def planned() -> set[str]:
        result = repo.gitops("plan", app, "--output", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        return {name.split("/")[1] for name in _changes(result.stdout)}

    assert planned() == {"always"}
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    crd_type = client.resource_type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crd_type is not None
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    client.apply(crd_type, crd, "gitops-test", force=True)
    try:
        deadline = time.monotonic() + 60
        while client.resource_type(f"{group}/v1", "Widget") is None:
            assert time.monotonic() < deadline, "the CRD was never served"
            client.forget_discovery()
            time.sleep(0.5)
        assert planned() == {"always", "by-version", "by-kind"}
        offline = repo.gitops("validate", "--output", "json")
        assert offline.returncode == 0 and json.loads(offline.stdout)["objects"] == 1, offline.stdout
    finally:
        client.delete(crd_type, "", f"widgets.{group}")
        client.close()


HOOK_JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "{weight}"
{policy}spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: run
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["podinfo", "--version", {{{{ .Values.step | quote }}}}]
"""


@pytest.mark.kube
def test_hook_weights_order_the_hooks_and_delete_policies_are_kept(
    kube_cluster: Any, namespace: str, helm: str, tmp_path: Path, apps: list[str]
) -> None:
    """Two pre- hooks with weights run in weight order, each finished before the next; the one
    with hook-succeeded is gone after the apply (and is not planned again); an upgrade that
    changes the other (a Job's template is immutable) re-creates it (before-hook-creation, the
    default) and succeeds."""
    app = f"hooks-{namespace[-6:]}"
    apps.append(app)
    repo = _chart_app(tmp_path, app, namespace, {
        "seed.yaml": HOOK_JOB.format(name="seed", weight=5, policy="    helm.sh/hook-delete-policy: hook-succeeded\n"),
        "migrate.yaml": HOOK_JOB.format(name="migrate", weight=-5, policy=""),
        "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
                    "data:\n  step: {{ .Values.step | quote }}\n",
    }, _env(kube_cluster, helm), values="step: one\n")

    plan = repo.gitops("plan", app, "--output", "json")
    assert plan.returncode == 0, plan.stderr
    waves = {name: c["wave"] // 1000 for name, c in _changes(plan.stdout).items()}
    assert waves == {"Job/migrate": -2, "Job/seed": -1, "ConfigMap/app": 0}, waves

    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]
    order = [(e["event"], e.get("object", e.get("wave"))) for e in events
             if e["event"] in ("wave", "change", "hook-deleted")]
    assert order == [("wave", -2), ("change", f"Job/{namespace}/migrate"),
                     ("wave", -1), ("change", f"Job/{namespace}/seed"), ("hook-deleted", f"Job/{namespace}/seed"),
                     ("wave", 0), ("change", f"ConfigMap/{namespace}/app")], order
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    job = client.resource_type("batch/v1", "Job")
    assert job is not None
    assert client.get(job, namespace, "seed") is None  # hook-succeeded: deleted once it finished
    migrate = client.get(job, namespace, "migrate")
    assert migrate is not None and migrate["status"].get("succeeded") == 1
    again = repo.gitops("plan", app, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout  # the seed Job ran: not planned again while unchanged

    # An upgrade that changes the hook Jobs' pod template: created anew, not patched (immutable).
    repo.edit("charts/app/values.yaml", "step: one", "step: two")
    repo.commit("step two")
    upgrade = repo.gitops("plan", app, "--output", "json")
    changes = _changes(upgrade.stdout)
    assert changes["Job/migrate"]["action"] == "replace", changes["Job/migrate"]
    assert changes["Job/seed"]["action"] == "create"  # it was deleted after it ran; it changed: it runs
    done = repo.gitops("apply", app, "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    rerun = client.get(job, namespace, "migrate")
    assert rerun is not None and rerun["metadata"]["uid"] != migrate["metadata"]["uid"]
    assert rerun["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "two"
    assert client.get(job, namespace, "seed") is None
    client.close()


@pytest.mark.kube
def test_the_example_repositorys_helm_app_deploys(
    kube_cluster: Any, namespace: str, helm: str, tmp_path: Path, apps: list[str]
) -> None:
    """examples/repo's `catalog`: the whole example validates strictly with helm, and the Helm app
    deploys: its hooks in weight order, the warm-up Job gone after it succeeded, and no noise on a
    second plan (no cluster here serves ServiceMonitor: none is rendered)."""
    app = f"catalog-{namespace[-6:]}"
    apps.append(app)
    repo = make_repo(tmp_path, [
        ("gitops.yaml", r"^  - name: catalog$", f"  - name: {app}"),
        ("gitops.yaml", r"namespace: catalog$", f"namespace: {namespace}"),
        ("catalog/namespace.yaml", r"name: catalog$", f"name: {namespace}"),
    ], _env(kube_cluster, helm), extras=True)
    valid = repo.gitops("validate", "--strict", "--output", "json")
    report = json.loads(valid.stdout)
    assert valid.returncode == 0 and report["diagnostics"] == [], valid.stdout + valid.stderr
    assert {app, "api"} <= set(report["apps"])

    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]
    written = [e["object"] for e in events if e["event"] in ("change", "hook-deleted")]
    assert written[:3] == [f"Job/{namespace}/catalog-migrate", f"Job/{namespace}/catalog-warm-cache",
                           f"Job/{namespace}/catalog-warm-cache"], written  # the second: deleted once done
    assert not any("ServiceMonitor" in w for w in written)
    again = repo.gitops("plan", app, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


@pytest.mark.kube
def test_a_hook_with_hook_failed_is_deleted_when_it_fails(
    kube_cluster: Any, namespace: str, helm: str, tmp_path: Path, apps: list[str]
) -> None:
    """helm.sh/hook-delete-policy: hook-failed: the Job that failed is deleted before the rollback,
    and nothing after the hook was written."""
    app = f"failed-{namespace[-6:]}"
    apps.append(app)
    job = HOOK_JOB.format(name="migrate", weight=0, policy="    helm.sh/hook-delete-policy: hook-failed\n")
    repo = _chart_app(tmp_path, app, namespace, {
        "migrate.yaml": job.replace("ghcr.io/stefanprodan/podinfo:6.7.1", "gitops-test/crash:1"),
        "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {a: b}\n",
    }, _env(kube_cluster, helm), values="step: one\n")
    failed = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert failed.returncode == 3, failed.stdout[-3000:] + failed.stderr  # rolled back (to nothing)
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    assert {"event": "hook-deleted", "app": app, "object": f"Job/{namespace}/migrate", "policy": "failed"} in events
    written = [e["object"] for e in events if e["event"] == "change" and e.get("action") != "delete"]
    assert written == [f"Job/{namespace}/migrate"], written
    from gitops.backends.kubernetes.client import KubeClient

    client = KubeClient(str(kube_cluster.kubeconfig))
    job_type = client.resource_type("batch/v1", "Job")
    assert job_type is not None and client.get(job_type, namespace, "migrate") is None
    client.close()
