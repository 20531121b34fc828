"""The install: deploy/ (Kubernetes, its sharded variant, the Swarm stack), `gitops install --print`,
and the Dockerfile, read statically (the image cannot be built without pulling a base image)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from testsupport import unavailable

from gitops import install
from gitops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def printed(*argv: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["install", "--print", *argv])
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.output) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not on PATH (kubectl kustomize is the reference for deploy/kubernetes)")
    out = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def identity(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = doc["metadata"]
    return doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"]


@pytest.mark.parametrize(("argv", "directory"), [(["kubernetes"], "kubernetes"),
                                                 (["kubernetes", "--sharded"], "kubernetes/sharded")])
def test_print_gives_what_kubectl_apply_k_would_apply(argv: list[str], directory: str) -> None:
    ours, reference = printed(*argv), kustomize(DEPLOY / directory)
    assert sorted(map(identity, ours)) == sorted(map(identity, reference))
    assert {identity(d): d for d in ours} == {identity(d): d for d in reference}


def test_print_swarm_is_the_stack_file() -> None:
    result = CliRunner().invoke(cli, ["install", "--print", "swarm"])
    assert result.exit_code == 0
    assert result.output == (DEPLOY / "swarm" / "stack.yaml").read_text()


@pytest.mark.parametrize("argv", [[], ["--print", "swarm", "--sharded"], ["--print", "nomad"]])
def test_usage_errors_exit_1(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "gitops", "install", *argv], capture_output=True, text=True)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Error" in result.stderr and not result.stdout


def test_a_kustomization_using_more_than_resources_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    (tmp_path / "kubernetes").mkdir()
    (tmp_path / "kubernetes" / "kustomization.yaml").write_text("resources: [a.yaml]\nimages: [{name: x}]\n")
    monkeypatch.setattr(install, "_at", lambda path: tmp_path / path)
    with pytest.raises(install.GitopsError, match="images is more than `gitops install` renders"):
        install.manifests("kubernetes")


def test_the_wheel_ships_deploy_as_package_data() -> None:
    link = ROOT / "gitops" / "manifests"
    assert link.is_symlink() and link.resolve() == DEPLOY
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "manifests/**/*" in package_data["gitops"]


def test_a_built_wheel_carries_the_manifests_and_prints_them(tmp_path: Path) -> None:
    """The wheel as pip builds it (from a copy of the tree, so the checkout gets no build/)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("gitops", "deploy"):
        shutil.copytree(ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("gitops-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    shipped = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    assert {n.removeprefix("gitops/manifests/") for n in names if n.startswith("gitops/manifests/")} == shipped
    code = ("import gitops, sys; from gitops import install; print(gitops.__file__, file=sys.stderr); "
            "print(install.manifests('kubernetes-sharded'), end='')")
    printed_from_wheel = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, cwd=tmp_path)
    assert printed_from_wheel.stderr.strip() == str(tmp_path / "site" / "gitops" / "__init__.py")
    assert printed_from_wheel.stdout == install.manifests("kubernetes-sharded")


def workloads() -> list[dict[str, Any]]:
    return [*by_kind(printed("kubernetes"), "Deployment"), *by_kind(printed("kubernetes", "--sharded"),
                                                                     "StatefulSet")]


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["kind"])
def test_the_daemon_pod_is_locked_down_probed_and_bounded(workload: dict[str, Any]) -> None:
    from gitops.daemon import http

    pod = workload["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["serviceAccountName"] == "gitops"
    assert container["image"] == f"gitops:{VERSION}", "the image tag is the package version"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert f'"{path}": ("GET"' in Path(http.__file__).read_text(), f"the daemon serves {path}"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    # The cache dir the daemon writes is a writable emptyDir (the root filesystem is read-only).
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in (env["GITOPS_CACHE_DIR"], "/tmp"):
        assert "emptyDir" in volumes[mounts[path]]
    args = container["args"]
    assert args[0] == "daemon" and args[args.index("--listen") + 1] == "0.0.0.0:8080"
    assert {p["containerPort"] for p in container["ports"]} == {8080}


def test_the_deployment_recreates_so_the_new_pod_is_not_a_standby_forever() -> None:
    [deployment] = by_kind(printed("kubernetes"), "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert deployment["spec"]["replicas"] == 1


def test_each_statefulset_pod_serves_the_shard_of_its_ordinal() -> None:
    [sts] = by_kind(printed("kubernetes", "--sharded"), "StatefulSet")
    [container] = sts["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    shard = args[args.index("--shard") + 1]
    assert shard == f"$(SHARD)/{sts['spec']['replicas']}"
    [env] = [e for e in container["env"] if e["name"] == "SHARD"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"


def test_the_service_carries_webhooks_and_metrics_to_the_daemon() -> None:
    docs = printed("kubernetes")
    [service] = by_kind(docs, "Service")
    [deployment] = by_kind(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]


def test_no_rbac_rule_grants_everything_or_secrets_cluster_wide() -> None:
    docs = printed("kubernetes")
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []), role["metadata"]
            assert "*" not in rule.get("apiGroups", [])
            assert not {"escalate", "bind", "impersonate"} & set(rule.get("verbs", []))
    bound_cluster_wide = {b["roleRef"]["name"] for b in by_kind(docs, "ClusterRoleBinding")}
    for role in by_kind(docs, "ClusterRole"):
        if role["metadata"]["name"] in bound_cluster_wide:
            for rule in role["rules"]:
                assert "secrets" not in rule.get("resources", []), role["metadata"]["name"]
                if "namespaces" in rule.get("resources", []) and set(rule["verbs"]) - {"get", "list", "watch"}:
                    assert rule.get("resourceNames"), "Namespace writes only to the app namespaces"


def test_the_swarm_stack_runs_on_a_manager_with_the_socket_a_healthcheck_and_limits() -> None:
    stack = yaml.safe_load((DEPLOY / "swarm" / "stack.yaml").read_text())
    [(name, service)] = stack["services"].items()
    assert service["image"] == f"gitops:{VERSION}"
    assert service["command"][0] == "daemon"
    assert "node.role == manager" in service["deploy"]["placement"]["constraints"]
    assert any(v.get("source") == "/var/run/docker.sock" for v in service["volumes"])
    assert service["healthcheck"]["test"][0] == "CMD" and "/healthz" in " ".join(service["healthcheck"]["test"])
    assert set(service["deploy"]["resources"]["limits"]) == {"cpus", "memory"}
    assert service["read_only"] is True
    assert not service["user"].startswith(("0:", "root"))
    cache = service["environment"]["GITOPS_CACHE_DIR"]
    assert any(v.get("target") == cache and v["type"] == "volume" for v in service["volumes"]), name


def test_dockers_own_stack_loader_accepts_the_stack(tmp_path: Path) -> None:
    """`docker stack config` (no engine needed) parses and interpolates it as `docker stack deploy` will."""
    docker = shutil.which("docker")
    if docker is None:
        unavailable("the docker CLI is not on PATH")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DOCKER_GID": "4242"}
    result = subprocess.run([str(docker), "stack", "config", "-c", str(DEPLOY / "swarm" / "stack.yaml")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    [service] = yaml.safe_load(result.stdout)["services"].values()
    assert service["user"] == "10001:4242"


@pytest.mark.parametrize("path", ["", "kubernetes", "kubernetes/sharded", "swarm"])
def test_our_own_validate_passes_on_deploy(path: str) -> None:
    kustomize(DEPLOY / "kubernetes")  # the same kustomize engine validate uses, or skip/fail the same way
    result = CliRunner().invoke(cli, ["validate", "--strict", str(DEPLOY / path) if path else str(DEPLOY)])
    assert result.exit_code == 0, result.output
    assert re.search(r"valid: .* 0 errors", result.output)


def test_validate_would_catch_a_broken_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: the same copy with a mistyped field does not validate."""
    kustomize(DEPLOY / "kubernetes")
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    path = copy / "kubernetes" / "deployment.yaml"
    path.write_text(path.read_text().replace("replicas: 1", "replicas: one"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--strict", str(copy / "kubernetes")])
    assert result.exit_code == 1 and "replicas" in result.output


# -- Dockerfile ----------------------------------------------------------------------------------


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(FROM line, [(instruction, arguments)]) per stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            found.append((rest, []))
        elif found:
            found[-1][1].append((instruction.upper(), rest))
    return found


def test_the_image_builds_the_wheel_in_a_first_stage_and_runs_slim_as_non_root() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    built = stages()
    assert len(built) == 2, "multi-stage: build, then the final image"
    (build_from, build_steps), (final_from, final_steps) = built
    assert build_from.endswith(" AS build")
    assert any(i == "RUN" and "pip wheel" in a for i, a in build_steps)
    assert "slim" in args[final_from.strip("${}")] and "slim" in args[build_from.split()[0].strip("${}")]
    users = [a for i, a in final_steps if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage runs as non-root"
    assert [i for i, _ in final_steps].index("USER") > max(n for n, (i, _) in enumerate(final_steps) if i == "RUN")
    final_runs = " ".join(a for i, a in final_steps if i == "RUN")
    for tool in ("gcc", "g++", "clang", "make", "build-essential", "python3-dev", "libc6-dev", "pip wheel"):
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", final_runs), f"{tool} in the final stage"
    copies = [a for i, a in final_steps if i == "COPY"]
    assert copies and all(a.startswith("--from=build /wheels ") for a in copies), "only the wheels come along"
    assert any(i == "ENTRYPOINT" and "gitops" in a for i, a in final_steps)
    assert any(i == "HEALTHCHECK" and "/healthz" in a for i, a in final_steps)


def test_the_build_context_holds_what_the_build_stage_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    for _, steps in stages()[:1]:
        for instruction, rest in steps:
            if instruction == "COPY":
                for source in rest.split()[:-1]:
                    assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, source
