"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok simulating the nodes and the pod lifecycle.

The processes run detached (their own session) so that `tests/clusters up` returns and the
cluster outlives it; their pids, logs and data live under ``<cache>/run/kube``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import build
from .build import file_lock, log
from .paths import cache_root, run_dir

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
ETCD_PORT = int(os.environ.get("GITOPS_TEST_ETCD_PORT", "32379"))
API_PORT = int(os.environ.get("GITOPS_TEST_API_PORT", "36443"))
KCM_PORT = int(os.environ.get("GITOPS_TEST_KCM_PORT", "30257"))
SCHEDULER_PORT = int(os.environ.get("GITOPS_TEST_SCHEDULER_PORT", "30259"))
KWOK_PORT = int(os.environ.get("GITOPS_TEST_KWOK_PORT", "30247"))
NODES = ("kwok-node-0", "kwok-node-1")
TOKEN_USER = "gitops-test-admin"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_LEASE_SECONDS = 40  # what a kubelet uses
NODE_MONITOR_GRACE_SECONDS = 50  # kube-controller-manager's default since 1.32, said explicitly


@dataclass(frozen=True)
class KubeStatus:
    running: dict[str, bool]
    ready: bool
    kubeconfig: Path

    def describe(self) -> str:
        parts = [f"{name}={'up' if up else 'down'}" for name, up in self.running.items()]
        return f"kubernetes: {'ready' if self.ready else 'not ready'} ({', '.join(parts)})"


def state_dir() -> Path:
    return run_dir("kube")


def kubeconfig_path() -> Path:
    return state_dir() / "kubeconfig"


def api_url() -> str:
    return f"https://{HOST}:{API_PORT}"


def ca_path() -> Path:
    return state_dir() / "pki" / "apiserver.crt"


def _token() -> str:
    path = state_dir() / "token"
    if not path.exists():
        path.write_text(os.urandom(16).hex())
        path.chmod(0o600)
    return path.read_text().strip()


def _pid(name: str) -> int | None:
    path = state_dir() / f"{name}.pid"
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A zombie or a recycled pid of another program does not count as ours.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return pid
    return pid if Path(cmdline).name == name else None


def _stamp(name: str, argv: list[str]) -> str:
    """What a component was started with: its command line and, for kwok, the stages this
    repository ships, so that a changed flag or stage restarts it on `up`."""
    digest = hashlib.sha256("\0".join(argv).encode())
    if name == "kwok":
        digest.update((HERE / "kwok-stages.yaml").read_bytes())
    return digest.hexdigest()


def _spawn(name: str, argv: list[str]) -> None:
    logfile = (state_dir() / f"{name}.log").open("ab")
    process = subprocess.Popen(
        argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, cwd=state_dir(),
    )
    (state_dir() / f"{name}.pid").write_text(str(process.pid))
    (state_dir() / f"{name}.stamp").write_text(_stamp(name, argv))


def _stop(name: str) -> None:
    pid = _pid(name)
    if pid is not None:
        log(f"stopping {name}")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _pid(name) is not None:
            time.sleep(0.1)
        if _pid(name) is not None:
            os.kill(pid, signal.SIGKILL)
    (state_dir() / f"{name}.pid").unlink(missing_ok=True)
    (state_dir() / f"{name}.stamp").unlink(missing_ok=True)


def _outdated(name: str, argv: list[str]) -> bool:
    try:
        return (state_dir() / f"{name}.stamp").read_text() != _stamp(name, argv)
    except OSError:
        return True


def _request(path: str, method: str = "GET", body: dict[str, object] | None = None,
             timeout: float = 5.0) -> tuple[int, bytes]:
    # kube-apiserver generates its serving certificate and the CA that signed it into the cert dir.
    context = ssl.create_default_context(cafile=str(ca_path()))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api_url() + path, data=data, method=method)  # noqa: S310 (https only)
    request.add_header("Authorization", f"Bearer {_token()}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _api_ready() -> bool:
    try:
        code, body = _request("/readyz", timeout=2)
    except (OSError, ssl.SSLError, urllib.error.URLError):
        return False
    return code == 200 and body.strip() == b"ok"


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s; logs are in {state_dir()}")


def _etcd_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ETCD_PORT}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _write_credentials() -> None:
    directory = state_dir()
    pki = directory / "pki"
    pki.mkdir(exist_ok=True)
    key, pub = pki / "sa.key", pki / "sa.pub"
    if not key.exists():
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
                       check=True, capture_output=True)
    token = _token()
    (directory / "tokens.csv").write_text(f'{token},{TOKEN_USER},{TOKEN_USER},"system:masters"\n')
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "gitops-test",
            "cluster": {"server": api_url(), "certificate-authority": str(ca_path())},
        }],
        "users": [{"name": TOKEN_USER, "user": {"token": token}}],
        "contexts": [{"name": "gitops-test", "context": {"cluster": "gitops-test", "user": TOKEN_USER}}],
        "current-context": "gitops-test",
    }
    path = kubeconfig_path()
    path.write_text(json.dumps(kubeconfig, indent=2))  # JSON is YAML
    path.chmod(0o600)
    # kwok reads its stages from the state directory, so every checkout starts it the same way.
    shutil.copyfile(HERE / "kwok-stages.yaml", directory / "kwok-stages.yaml")


def _argv(bins: dict[str, Path]) -> dict[str, list[str]]:
    directory = state_dir()
    kubeconfig = str(kubeconfig_path())
    pki = directory / "pki"
    return {
        "etcd": [
            str(bins["etcd"]), "--name=gitops-test", f"--data-dir={directory / 'etcd-data'}",
            f"--listen-client-urls=http://{HOST}:{ETCD_PORT}", f"--advertise-client-urls=http://{HOST}:{ETCD_PORT}",
            f"--listen-peer-urls=http://{HOST}:{ETCD_PORT + 1}",
            f"--initial-advertise-peer-urls=http://{HOST}:{ETCD_PORT + 1}",
            f"--initial-cluster=gitops-test=http://{HOST}:{ETCD_PORT + 1}",
            "--listen-metrics-urls=", "--quota-backend-bytes=4294967296",
            "--unsafe-no-fsync",  # a throw-away test store: durability buys nothing, fsync costs a lot
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(bins["kube-apiserver"]), f"--etcd-servers=http://{HOST}:{ETCD_PORT}",
            f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={API_PORT}",
            f"--cert-dir={pki}", f"--token-auth-file={directory / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--endpoint-reconciler-type=none", "--allow-privileged=true", "--v=1",
        ],
        "kube-controller-manager": [
            str(bins["kube-controller-manager"]), f"--kubeconfig={kubeconfig}",
            f"--bind-address={HOST}", f"--secure-port={KCM_PORT}", "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'apiserver.crt'}",
            "--use-service-account-credentials=false",
            # kwok owns the nodes (and renews their leases); there is no cloud and no pod network.
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service",
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
            # kwok renews each node's Lease every 10 s (a quarter of NODE_LEASE_SECONDS); a node is
            # NotReady only after this long without one. Set together, so nodes never flap.
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s", "--v=1",
        ],
        "kube-scheduler": [
            str(bins["kube-scheduler"]), f"--kubeconfig={kubeconfig}",
            f"--bind-address={HOST}", f"--secure-port={SCHEDULER_PORT}", "--leader-elect=false", "--v=1",
        ],
        "kwok": [
            str(bins["kwok"]), f"--kubeconfig={kubeconfig}", f"--config={directory / 'kwok-stages.yaml'}",
            "--manage-nodes-with-label-selector=type=kwok", f"--server-address={HOST}:{KWOK_PORT}",
            "--cidr=10.244.0.0/16", f"--node-ip={HOST}",
            # Without this kwok renews no node Lease, and the node lifecycle controller marks every
            # node NotReady (and every pod on it Ready=False) about once a minute.
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        ],
    }


def _ensure_nodes() -> None:
    for name in NODES:
        code, body = _request(f"/api/v1/nodes/{name}")
        if code == 200:
            continue
        node: dict[str, object] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            },
            "spec": {},
        }
        code, body = _request("/api/v1/nodes", "POST", node)
        if code not in (201, 409):
            raise RuntimeError(f"creating node {name} failed: {code} {body[:300]!r}")


def _nodes_ready() -> bool:
    code, body = _request("/api/v1/nodes?labelSelector=type%3Dkwok")
    if code != 200:
        return False
    items = json.loads(body).get("items", [])
    ready = [
        item for item in items
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in item.get("status", {}).get("conditions", []))
    ]
    return len(ready) == len(NODES)


def _default_service_account() -> bool:
    code, _ = _request("/api/v1/namespaces/default/serviceaccounts/default")
    return code == 200


def status() -> KubeStatus:
    running = {name: _pid(name) is not None for name in COMPONENTS}
    ready = all(running.values()) and _api_ready()
    return KubeStatus(running=running, ready=ready, kubeconfig=kubeconfig_path())


def up() -> KubeStatus:
    """Start the control plane unless it already runs; build missing binaries first."""
    with file_lock(cache_root() / ".kube.lock"):
        current = status()
        if current.ready and _nodes_ready() and not any(_outdated(n, a) for n, a in _argv(build.cached()).items()):
            return current
        bins = build.binaries()
        _write_credentials()
        argv = _argv(bins)
        started = time.monotonic()
        # A component started by an older harness (other flags or stages) is restarted; the
        # cluster's data in etcd is kept.
        for name in reversed(COMPONENTS):
            if _pid(name) is not None and _outdated(name, argv[name]):
                _stop(name)
        for name in COMPONENTS:
            if _pid(name) is not None:
                continue
            log(f"starting {name}")
            _spawn(name, argv[name])
            if name == "etcd":
                _wait("etcd", _etcd_ready, 60)
            elif name == "kube-apiserver":
                _wait("kube-apiserver", _api_ready, 120)
        _ensure_nodes()
        _wait("kwok nodes", _nodes_ready, 60)
        _wait("the default service account", _default_service_account, 60)
        log(f"kubernetes control plane ready at {api_url()} in {time.monotonic() - started:.1f}s")
        return status()


def down(wipe: bool = True) -> None:
    """Stop every component (newest first); with wipe, forget the cluster's data too."""
    with file_lock(cache_root() / ".kube.lock"):
        for name in reversed(COMPONENTS):
            _stop(name)
        if wipe:
            shutil.rmtree(state_dir() / "etcd-data", ignore_errors=True)
