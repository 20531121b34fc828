"""deploy/kubernetes on the real control plane (RBAC authorization on): the daemon, a local process
holding exactly the installed ServiceAccount's token (from the TokenRequest API), deploys
examples/repo's Kubernetes app, records its state and takes its Lease; the RBAC is neither too
narrow (each rule removed breaks the deploy) nor too wide (access reviews as that token).

The install is applied with per-test names (a suffix on the ServiceAccount and the cluster-wide
roles, the test namespace for the example's `web`), so tests sharing the cluster never meet; the
shared gitops-system namespace is applied but never deleted."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import kube
from repos import Repo
from test_daemon import DaemonProcess, head, kube_repo
from testsupport import wait_for

from gitops import install
from gitops.backends.kubernetes.client import KubeClient
from gitops.backends.kubernetes.kubeconfig import InCluster

pytestmark = pytest.mark.kube

STATE_NAMESPACE = "gitops-system"
MANAGER = "gitops-install-test"
EXAMPLE_NAMESPACE = "web"
RBAC_KINDS = ("Role", "ClusterRole")


def manifests() -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(install.manifests("kubernetes")) if doc]


def rules() -> list[tuple[str, str, int]]:
    """(kind, role, rule index) of every rule the install grants, discovery excepted: the default
    system:discovery binding grants that to every authenticated user anyway."""
    return [(doc["kind"], doc["metadata"]["name"], index) for doc in manifests() if doc["kind"] in RBAC_KINDS
            for index, rule in enumerate(doc["rules"]) if "nonResourceURLs" not in rule]


@dataclass
class Installed:
    admin: KubeClient
    account: str
    namespace: str  # the app's (the example's `web`)
    token: str
    kubeconfig: Path
    created: list[tuple[str, str, str, str]]  # apiVersion, kind, namespace, name

    def as_account(self) -> KubeClient:
        return KubeClient(str(self.kubeconfig))


def for_test(docs: list[dict[str, Any]], suffix: str, app_namespace: str) -> list[dict[str, Any]]:
    """The install with this test's names: its ServiceAccount and cluster-wide objects suffixed,
    the example's namespace replaced by the test's (which the fixture made: not applied again)."""
    out: list[dict[str, Any]] = []
    for original in docs:
        doc = copy.deepcopy(original)
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "Namespace":
            if meta["name"] == STATE_NAMESPACE:
                out.append(doc)
            continue
        if kind not in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            continue  # the daemon runs outside the cluster; its workloads are checked elsewhere
        meta["name"] = f"{meta['name']}-{suffix}"
        if meta.get("namespace") == EXAMPLE_NAMESPACE:
            meta["namespace"] = app_namespace
        for rule in doc.get("rules", []):
            if EXAMPLE_NAMESPACE in rule.get("resourceNames", []):
                rule["resourceNames"] = [app_namespace if n == EXAMPLE_NAMESPACE else n for n in rule["resourceNames"]]
        if "roleRef" in doc:
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{suffix}"
        for subject in doc.get("subjects", []):
            subject["name"] = f"{subject['name']}-{suffix}"
        out.append(doc)
    return out


def apply_all(admin: KubeClient, docs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    applied = []
    for doc in docs:
        rtype = admin.resource_type(doc["apiVersion"], doc["kind"])
        assert rtype is not None, doc["kind"]
        admin.apply(rtype, doc, MANAGER, force=True)
        applied.append((doc["apiVersion"], doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]))
    return applied


def delete_all(admin: KubeClient, created: list[tuple[str, str, str, str]]) -> None:
    for api_version, kind, namespace, name in created:
        if kind == "Namespace":
            continue  # gitops-system is shared
        rtype = admin.resource_type(api_version, kind)
        if rtype is not None:
            admin.delete(rtype, namespace, name)


def request_token(admin: KubeClient, account: str, seconds: int = 3600) -> str:
    """The TokenRequest API: a bound token of the ServiceAccount, as the kubelet gets for a pod."""
    answer = admin.request("POST", f"/api/v1/namespaces/{STATE_NAMESPACE}/serviceaccounts/{account}/token",
                           body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": seconds}})
    return str(answer["status"]["token"])


def write_kubeconfig(path: Path, token_file: Path) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "test", "cluster": {"server": kube.api_url(),
                                                  "certificate-authority": str(kube.ca_path())}}],
        "users": [{"name": "sa", "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": "sa"}}],
    }))
    return path


def install_for(kube_cluster: Any, namespace: str, tmp_path: Path, without: tuple[str, str, int] | None = None
                ) -> Installed:
    admin = KubeClient(str(kube_cluster.kubeconfig))
    suffix = namespace[-6:]
    docs = manifests()
    if without is not None:
        kind, name, index = without
        [role] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
        del role["rules"][index]
    created = apply_all(admin, for_test(docs, suffix, namespace))
    account = f"gitops-{suffix}"
    token = request_token(admin, account)
    token_file = tmp_path / "sa-token"
    token_file.write_text(token)
    return Installed(admin, account, namespace, token, write_kubeconfig(tmp_path / "sa.kubeconfig", token_file),
                     created)


@pytest.fixture
def installed(kube_cluster: Any, namespace: str, tmp_path: Path) -> Iterator[Installed]:
    result = install_for(kube_cluster, namespace, tmp_path)
    yield result
    delete_all(result.admin, result.created)


def forget_state(admin: KubeClient, *names: str) -> None:
    for kind, api_version in (("Secret", "v1"), ("Lease", "coordination.k8s.io/v1")):
        rtype = admin.resource_type(api_version, kind)
        assert rtype is not None
        for name in names:
            admin.delete(rtype, STATE_NAMESPACE, name)


def who(client: KubeClient) -> str:
    review = client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return str(review["status"]["userInfo"]["username"])


def can(client: KubeClient, verb: str, resource: str, namespace: str = "", group: str = "", name: str = "",
        subresource: str = "") -> bool:
    attributes = {"verb": verb, "resource": resource, "group": group, "namespace": namespace, "name": name,
                  "subresource": subresource}
    review = client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v}}})
    return bool(review["status"]["allowed"])


def rules_in(client: KubeClient, namespace: str) -> set[tuple[str, str, str]]:
    """(group, resource, verb) the token may use in a namespace (SelfSubjectRulesReview), names
    that restrict a rule left out; the self-reviews every user may make are left out too."""
    review = client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}})
    found = set()
    for rule in review["status"]["resourceRules"]:
        if rule.get("resourceNames"):
            continue
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    found.add((group, resource, verb))
    return {r for r in found if not r[1].startswith("selfsubject")}


def run_example(installed: Installed, tmp_path: Path) -> tuple[DaemonProcess, str, Repo]:
    env = {**os.environ, "KUBECONFIG": str(installed.kubeconfig)}
    repo, app = kube_repo(tmp_path, installed.namespace, env, "prune: true, self_heal: true, interval: 1h")
    return DaemonProcess(repo, "--leader-ttl", "5"), app, repo


def leader_lease(daemon: DaemonProcess) -> str:
    leading = [e for e in daemon.events() if e["event"] == "leader" and e.get("lease")]
    return str(leading[0]["lease"]) if leading else ""


def test_the_daemon_deploys_the_example_with_exactly_the_installed_accounts_token(
    installed: Installed, tmp_path: Path
) -> None:
    account = f"system:serviceaccount:{STATE_NAMESPACE}:{installed.account}"
    assert who(installed.as_account()) == account, "the daemon's kubeconfig holds the ServiceAccount's token only"
    started = time.monotonic()
    daemon, app, repo = run_example(installed, tmp_path)
    lease = ""
    try:
        daemon.first_sync(app, timeout=180)
        print(f"the daemon, with the ServiceAccount's token, applied the example {time.monotonic() - started:.1f}s "
              "after it was started")
        lease = leader_lease(daemon)
        status = daemon.app(app)
        assert status["sync"] == "Synced" and status["health"] == "Healthy", status
        admin = installed.admin
        deployments = admin.resource_type("apps/v1", "Deployment")
        assert deployments is not None and admin.get(deployments, installed.namespace, "web") is not None
        # Its state is recorded and its locks are Leases in gitops-system, written by that token.
        secrets, leases = admin.resource_type("v1", "Secret"), admin.resource_type("coordination.k8s.io/v1", "Lease")
        assert secrets is not None and leases is not None
        state = admin.get(secrets, STATE_NAMESPACE, f"gitops-state-{app}")
        assert state is not None and state["type"] == "gitops.dev/state"
        assert admin.get(leases, STATE_NAMESPACE, f"gitops-lock-{app}") is not None
        assert lease, "the daemon took its leader lease"
        held = admin.get(leases, STATE_NAMESPACE, f"gitops-lock-{lease}")
        assert held is not None and held["spec"].get("holderIdentity"), held
        assert "gitops_leader 1.0" in daemon.get("/metrics")[1].decode()
        # Drift, seen through its watch, is healed; a file removed from git is pruned.
        configmaps, cronjobs = admin.resource_type("v1", "ConfigMap"), admin.resource_type("batch/v1", "CronJob")
        assert configmaps is not None and cronjobs is not None
        edited = admin.get(configmaps, installed.namespace, "web-config")
        assert edited is not None
        edited["data"]["LOG_LEVEL"] = "debug"
        admin.replace(configmaps, edited)
        edited_at = time.monotonic()
        wait_for("the drift healed", lambda: (admin.get(configmaps, installed.namespace, "web-config") or {})
                 .get("data", {}).get("LOG_LEVEL") == "info", timeout=60)
        print(f"drift healed {time.monotonic() - edited_at:.1f}s after the edit")
        (repo.root / "k8s" / "40-cronjob.yaml").unlink()
        repo.commit("no report")
        assert daemon.push(head(repo))[0] == 200
        wait_for("the CronJob pruned", lambda: admin.get(cronjobs, installed.namespace, "web-report") is None,
                 timeout=120)
        wait_for("the prune recorded", lambda: daemon.app(app).get("revision") == head(repo)
                 and daemon.app(app).get("result") == "applied", timeout=60)
        assert not [e for e in daemon.events() if "forbidden" in json.dumps(e).lower()]
        assert daemon.stop() == 0
    finally:
        daemon.close()
        forget_state(installed.admin, f"gitops-state-{app}", f"gitops-lock-{app}",
                     *([f"gitops-lock-{lease}"] if lease else []))


def test_the_token_cannot_read_other_namespaces_secrets_nor_act_outside_its_needs(installed: Installed) -> None:
    client, app_ns = installed.as_account(), installed.namespace
    # What it needs.
    for verb in ("get", "create", "update"):
        assert can(client, verb, "secrets", STATE_NAMESPACE)
        assert can(client, verb, "leases", STATE_NAMESPACE, "coordination.k8s.io")
    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        assert can(client, verb, "secrets", app_ns)
        assert can(client, verb, "deployments", app_ns, "apps")
    assert can(client, "patch", "namespaces", name=app_ns)
    # Never: other namespaces' Secrets, cluster-wide Secrets, its own state's listing or deletion.
    for namespace in ("default", "kube-system", "kube-public"):
        for verb in ("get", "list", "watch"):
            assert not can(client, verb, "secrets", namespace), (verb, namespace)
    assert not can(client, "list", "secrets")
    assert not can(client, "list", "secrets", STATE_NAMESPACE)
    assert not can(client, "delete", "secrets", STATE_NAMESPACE)
    # Never: other namespaces' objects, privilege changes, workload access, node or cluster objects.
    forbidden = [
        ("create", "deployments", "default", "apps", "", ""),
        ("patch", "configmaps", "kube-system", "", "", ""),
        ("delete", "namespaces", "", "", "kube-system", ""),
        ("patch", "namespaces", "", "", "default", ""),
        ("create", "namespaces", "", "", "", ""),
        ("create", "pods", app_ns, "", "", ""),
        ("create", "pods", app_ns, "", "web", "exec"),
        ("create", "serviceaccounts", app_ns, "", "default", "token"),
        ("create", "rolebindings", app_ns, "rbac.authorization.k8s.io", "", ""),
        ("create", "clusterroles", "", "rbac.authorization.k8s.io", "", ""),
        ("escalate", "roles", app_ns, "rbac.authorization.k8s.io", "", ""),
        ("impersonate", "users", "", "", "admin", ""),
        ("get", "nodes", "", "", "", ""),
        ("create", "customresourcedefinitions", "", "apiextensions.k8s.io", "", ""),
        ("update", "leases", "kube-node-lease", "coordination.k8s.io", "", ""),
    ]
    for verb, resource, namespace, group, name, subresource in forbidden:
        assert not can(client, verb, resource, namespace, group, name, subresource), (verb, resource, namespace)
    # Exactly the Role's rules in gitops-system, and nothing at all in another namespace.
    assert rules_in(client, STATE_NAMESPACE) == {
        ("", "secrets", "get"), ("", "secrets", "create"), ("", "secrets", "update"),
        ("coordination.k8s.io", "leases", "get"), ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("", "namespaces", "get"), ("", "namespaces", "list"), ("", "namespaces", "watch"),
    }
    assert rules_in(client, "default") == {("", "namespaces", v) for v in ("get", "list", "watch")}
    # Exactly the kinds of the example's app in its namespace: a verb or a kind more is a failure.
    manage = ("get", "list", "watch", "create", "patch", "delete")
    assert rules_in(client, app_ns) == {
        *((group, resource, verb) for group, resource in (("", "configmaps"), ("", "secrets"), ("", "services"),
                                                          ("apps", "deployments"), ("networking.k8s.io", "ingresses"),
                                                          ("batch", "cronjobs")) for verb in manage),
        *((group, resource, verb) for group, resource in (("", "pods"), ("apps", "replicasets"))
          for verb in ("get", "list", "watch")),
        ("", "namespaces", "get"), ("", "namespaces", "list"), ("", "namespaces", "watch"),
    }


def test_the_in_cluster_configuration_reaches_the_api_server_and_follows_a_rotated_token(
    installed: Installed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary directory stands in for the pod's mount; the API server is the real one."""
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "ca.crt").write_bytes(kube.ca_path().read_bytes())
    (mount / "namespace").write_text(STATE_NAMESPACE)
    (mount / "token").write_text(installed.token)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # no kubeconfig anywhere, as in a pod
    port = kube.api_url().rsplit(":", 1)[1]
    found = InCluster.detect({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}, mount)
    assert found is not None and found.namespace == STATE_NAMESPACE
    client = KubeClient(in_cluster=found)
    assert who(client) == f"system:serviceaccount:{STATE_NAMESPACE}:{installed.account}"
    # The kubelet renews the token: the next request carries the new one. A token of the
    # `default` account shows which one was sent.
    other = request_token(installed.admin, "default")
    replacement = mount / "token.new"
    replacement.write_text(other)
    os.replace(replacement, mount / "token")
    assert who(client) == f"system:serviceaccount:{STATE_NAMESPACE}:default"


@pytest.mark.parametrize("without", rules(), ids=lambda r: f"{r[1]}[{r[2]}]")
def test_each_rule_removed_makes_the_deploy_fail(kube_cluster: Any, namespace: str, tmp_path: Path,
                                                without: tuple[str, str, int]) -> None:
    narrowed = install_for(kube_cluster, namespace, tmp_path, without)
    daemon, app, _ = run_example(narrowed, tmp_path)
    lease = ""

    def outcome() -> str:
        result = str(daemon.app(app).get("result", ""))
        if result in ("applied", "failed", "error", "rolled-back"):
            return result
        if any(e["event"] == "leader-error" for e in daemon.events()):
            return "leader-error"
        return ""

    try:
        wait_for("an outcome", outcome, timeout=180)
        lease = leader_lease(daemon)
        assert outcome() != "applied", f"the example deployed without {without}: the rule is not needed"
        said = json.dumps(daemon.app(app)) + json.dumps([e for e in daemon.events() if e["event"] == "leader-error"])
        print(f"without {without}: {outcome()}: {said[:600]}")
        [role] = [d for d in manifests() if d["kind"] == without[0] and d["metadata"]["name"] == without[1]]
        resources = role["rules"][without[2]]["resources"]
        assert "forbidden" in said.lower(), said
        assert any(f'cannot {verb} resource \\"{resource}\\"' in said for resource in resources
                   for verb in role["rules"][without[2]]["verbs"]), f"the refusal names {resources}: {said}"
    finally:
        daemon.close()
        delete_all(narrowed.admin, narrowed.created)
        forget_state(narrowed.admin, f"gitops-state-{app}", f"gitops-lock-{app}",
                     *([f"gitops-lock-{lease}"] if lease else []))


def test_the_daemons_workloads_are_admitted_as_restricted_pods_and_shards_get_their_ordinal(
    kube_cluster: Any, namespace: str
) -> None:
    """The Deployment and the sharded StatefulSet, in a namespace that enforces the `restricted`
    Pod Security Standard (as gitops-system does): their controllers make the pods (admitted), and
    each StatefulSet pod carries the ordinal its --shard reads."""
    import yaml

    admin = KubeClient(str(kube_cluster.kubeconfig))
    namespaces = admin.resource_type("v1", "Namespace")
    assert namespaces is not None
    admin.apply(namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}, MANAGER, force=True)
    workloads = [doc for variant in ("kubernetes", "kubernetes-sharded")
                 for doc in yaml.safe_load_all(install.manifests(variant))
                 if doc and doc["kind"] in ("ServiceAccount", "Deployment", "StatefulSet")]
    seen: set[tuple[str, str]] = set()
    for doc in workloads:
        if (doc["kind"], doc["metadata"]["name"]) in seen:
            continue  # the ServiceAccount is in both variants
        seen.add((doc["kind"], doc["metadata"]["name"]))
        doc["metadata"]["namespace"] = namespace
        rtype = admin.resource_type(doc["apiVersion"], doc["kind"])
        assert rtype is not None
        admin.apply(rtype, doc, MANAGER, force=True)
    pods = admin.resource_type("v1", "Pod")
    assert pods is not None
    [sts] = [d for d in workloads if d["kind"] == "StatefulSet"]
    replicas = sts["spec"]["replicas"]

    def made() -> list[dict[str, Any]]:
        found = admin.list(pods, namespace)
        return found if len(found) == 1 + replicas else []

    found = wait_for("the daemon's pods", made, timeout=120)
    ordinals = {p["metadata"]["name"]: p["metadata"]["labels"].get("apps.kubernetes.io/pod-index")
                for p in found if [o["kind"] for o in p["metadata"]["ownerReferences"]] == ["StatefulSet"]}
    assert ordinals == {f"{sts['metadata']['name']}-{i}": str(i) for i in range(replicas)}
    # The namespace does enforce it: a pod that runs as root is refused.
    from gitops.backends.kubernetes.client import ApiError

    with pytest.raises(ApiError, match="restricted"):
        admin.create(pods, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": namespace},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
