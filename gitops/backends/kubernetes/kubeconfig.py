"""Reading a kubeconfig fast, for the common cases; everything else goes to the SDK's loader.

Importing the `kubernetes` SDK costs about 0.4 s (it imports every generated model), which is
most of a plan's wall time on a small app and the difference between 9x and 14x against
`kubectl diff` on 1,000 objects. This module reads what nearly every kubeconfig uses — server,
CA (file or data), insecure-skip-tls-verify, tls-server-name, client certificate and key (file or
data), a token or token file, and exec credential plugins — and returns None for anything else
(legacy auth-provider entries, username/password, proxies), in which case the caller uses the SDK.

Inside a pod, with no kubeconfig at all, :class:`InCluster` is the connection: the service
account's token and CA from the standard mount and the API server from the
``KUBERNETES_SERVICE_HOST``/``PORT`` variables (read by the caller, at its edge, and passed in).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_USER_KEYS = frozenset({"token", "tokenFile", "client-certificate", "client-certificate-data",
                                 "client-key", "client-key-data", "exec"})
SUPPORTED_CLUSTER_KEYS = frozenset({"server", "certificate-authority", "certificate-authority-data",
                                    "insecure-skip-tls-verify", "tls-server-name", "extensions"})


class KubeconfigError(Exception):
    pass


@dataclass
class Connection:
    """How to reach and authenticate to one API server.

    TLS material from the kubeconfig's ``*-data`` fields (or handed out by an exec plugin) stays in
    memory: :meth:`ssl_context` loads it into an SSLContext; a client certificate, which Python's
    ssl only loads from a file, goes through a private file that is removed as soon as it was read.
    Nothing is left on disk for a long-running process to regret. ``generation`` moves when an exec
    plugin hands out a new client certificate, so a client knows to build a new context."""

    server: str
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_server_name: str | None = None
    token: Callable[[], str | None] = field(default=lambda: None)
    ca_data: bytes | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    generation: int = 0

    def ssl_context(self) -> ssl.SSLContext:
        # The cluster's CA alone when the kubeconfig names one (as kubectl does); the system's
        # otherwise.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_data is not None:
            context.load_verify_locations(cadata=self.ca_data.decode(errors="replace"))
        elif self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        else:
            context.load_default_certs()
        if self.tls_server_name:
            context.check_hostname = False  # urllib3 checks the name given as server_hostname instead
        if self.cert_data is not None and self.key_data is not None:
            with tempfile.TemporaryDirectory(prefix="gitops-tls-") as directory:
                cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
                for path, data in ((cert, self.cert_data), (key, self.key_data)):
                    path.touch(mode=0o600)
                    path.write_bytes(data)
                context.load_cert_chain(str(cert), str(key))
        elif self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


SERVICE_ACCOUNT_MOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class TokenFile:
    """A bearer token kept in a file that its owner rewrites (a pod's bound service-account token,
    which the kubelet renews before it expires): read again whenever the file changed (its inode,
    size or modification time; the kubelet swaps a symlink), else served from memory. One stat per
    request, no clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._token: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError as err:
                raise KubeconfigError(f"cannot read the token file {self.path}: {err.strerror}") from err
            seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if seen != self._seen:
                self._token = self.path.read_text().strip() or None
                self._seen = seen
            return self._token


@dataclass(frozen=True)
class InCluster:
    """The in-cluster configuration of a pod: the API server's address (from the environment the
    kubelet sets) and the service account's mount (token, ca.crt, namespace)."""

    host: str
    port: str
    mount: Path = SERVICE_ACCOUNT_MOUNT

    @classmethod
    def detect(cls, environ: Mapping[str, str], mount: Path = SERVICE_ACCOUNT_MOUNT) -> InCluster | None:
        """The pod's configuration, or None outside a pod (no service host, or no token mounted)."""
        host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "")
        if not host or not port or not (mount / "token").is_file():
            return None
        return cls(host, port, mount)

    @property
    def server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 service address
        return f"https://{host}:{self.port}"

    @property
    def namespace(self) -> str:
        """The pod's namespace, as the mount says."""
        path = self.mount / "namespace"
        return path.read_text().strip() if path.is_file() else ""

    def connection(self) -> Connection:
        ca = self.mount / "ca.crt"
        if not ca.is_file():
            raise KubeconfigError(f"in-cluster configuration: no CA certificate at {ca}")
        # The CA file is read when a TLS context is made; the token on every request that finds
        # the file changed.
        return Connection(server=self.server, ca_file=str(ca), token=TokenFile(self.mount / "token"))


def _pem(data: str) -> bytes:
    return base64.b64decode(data)


def _paths(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _merge(paths: list[Path]) -> tuple[dict[str, Any], dict[str, Path]]:
    """kubectl's merge: the first file to define a name wins; the first current-context wins."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    origin: dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            continue
        loaded = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        if not isinstance(loaded, dict):
            continue
        if merged["current-context"] is None and loaded.get("current-context"):
            merged["current-context"] = loaded["current-context"]
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in loaded.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in merged[section]:
                    merged[section][entry.get("name")] = entry.get(inner) or {}
                    origin[f"{section}/{entry.get('name')}"] = path
    return merged, origin


def _relative(value: str | None, base: Path | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base.parent / path
    return str(path)


def load(kubeconfig: str | None = None, context: str | None = None,
         in_cluster: InCluster | None = None) -> Connection | None:
    """The connection of ``context`` (default: current-context); None when the SDK must decide.

    With ``in_cluster`` (a pod's configuration) and no kubeconfig anywhere (none given, no
    $KUBECONFIG, no ~/.kube/config) nor a context asked for, the pod's service account."""
    paths = _paths(kubeconfig)
    if in_cluster is not None and context is None and not any(path.is_file() for path in paths):
        return in_cluster.connection()
    config, origin = _merge(paths)
    name = context or config["current-context"]
    if not name:
        raise KubeconfigError(f"no context given and no current-context in {', '.join(map(str, paths))}")
    ctx = config["contexts"].get(name)
    if ctx is None:
        raise KubeconfigError(f"context {name!r} not found in {', '.join(map(str, paths))}")
    cluster = config["clusters"].get(ctx.get("cluster"))
    user = config["users"].get(ctx.get("user"), {}) if ctx.get("user") else {}
    if cluster is None:
        raise KubeconfigError(f"context {name!r} names cluster {ctx.get('cluster')!r}, which is not defined")
    if set(cluster) - SUPPORTED_CLUSTER_KEYS or set(user) - SUPPORTED_USER_KEYS or not cluster.get("server"):
        return None
    cluster_file = origin.get(f"clusters/{ctx.get('cluster')}")
    user_file = origin.get(f"users/{ctx.get('user')}")
    conn = Connection(server=str(cluster["server"]).rstrip("/"),
                      verify=not cluster.get("insecure-skip-tls-verify", False),
                      tls_server_name=cluster.get("tls-server-name"))
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _pem(cluster["certificate-authority-data"])
    else:
        conn.ca_file = _relative(cluster.get("certificate-authority"), cluster_file)
    if user.get("client-certificate-data"):
        conn.cert_data = _pem(user["client-certificate-data"])
    else:
        conn.cert_file = _relative(user.get("client-certificate"), user_file)
    if user.get("client-key-data"):
        conn.key_data = _pem(user["client-key-data"])
    else:
        conn.key_file = _relative(user.get("client-key"), user_file)
    if user.get("token"):
        token = str(user["token"])
        conn.token = lambda: token
    elif user.get("tokenFile"):
        conn.token = TokenFile(Path(_relative(user["tokenFile"], user_file) or ""))
    elif user.get("exec"):
        credential = ExecCredential(user["exec"], cluster, conn)
        credential()  # at once: a plugin may hand out a client certificate the pool needs
        conn.token = credential
    return conn


class ExecCredential:
    """A client.authentication.k8s.io exec plugin: run it, cache its credential until it expires."""

    def __init__(self, spec: dict[str, Any], cluster: dict[str, Any], conn: Connection) -> None:
        self.spec = spec
        self.cluster = cluster
        self.conn = conn
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            if self._token is not None and time.time() < self._expires - 10:
                return self._token
            self._run()
            return self._token

    def _run(self) -> None:
        command = self.spec.get("command")
        if not command:
            raise KubeconfigError("exec plugin without a command")
        env = dict(os.environ)
        for item in self.spec.get("env") or []:
            env[str(item.get("name"))] = str(item.get("value", ""))
        env["KUBERNETES_EXEC_INFO"] = json.dumps({
            "apiVersion": self.spec.get("apiVersion", "client.authentication.k8s.io/v1"),
            "kind": "ExecCredential", "spec": {"interactive": False},
        })
        try:
            result = subprocess.run([command, *(self.spec.get("args") or [])], env=env, capture_output=True,
                                    text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as err:
            raise KubeconfigError(f"exec plugin {command}: {err}") from err
        if result.returncode != 0:
            raise KubeconfigError(f"exec plugin {command} failed: {result.stderr.strip()[:500]}")
        try:
            status = json.loads(result.stdout).get("status") or {}
        except ValueError as err:
            raise KubeconfigError(f"exec plugin {command} printed no ExecCredential: {err}") from err
        self._token = status.get("token")
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            cert, key = status["clientCertificateData"].encode(), status["clientKeyData"].encode()
            if (cert, key) != (self.conn.cert_data, self.conn.key_data):
                self.conn.cert_data, self.conn.key_data = cert, key
                self.conn.generation += 1  # a rotated client certificate: clients build a new TLS context
        expiry = status.get("expirationTimestamp")
        self._expires = _parse_time(expiry) if expiry else float("inf")


def _parse_time(text: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
