"""The fast kubeconfig reader: what it reads itself, and when it leaves the file to the SDK."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.backends.kubernetes import kubeconfig


def write(path: Path, clusters: dict[str, Any], users: dict[str, Any], contexts: dict[str, tuple[str, str]],
          current: str | None = None) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def test_token_and_ca_file_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("CA")
    path = write(tmp_path / "config", {"c": {"server": "https://k:6443/", "certificate-authority": "ca.crt"}},
                 {"u": {"token": "abc"}}, {"ctx": ("c", "u")}, current="ctx")
    conn = kubeconfig.load(str(path))
    assert conn is not None
    assert conn.server == "https://k:6443" and conn.verify
    assert conn.ca_file == str(tmp_path / "ca.crt")
    assert conn.token() == "abc"


def self_signed(directory: Path, name: str) -> tuple[bytes, bytes]:
    """A real certificate and key (PEM), made with openssl."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", f"/CN={name}", "-days", "1"], check=True, capture_output=True)
    return cert.read_bytes(), key.read_bytes()


def tls_leftovers() -> list[str]:
    return [p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(("gitops-tls-",
                                                                                        "gitops-kubeconfig-"))]


def test_inline_tls_data_stays_in_memory_and_leaves_no_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "client")
    ca, _ = self_signed(tmp_path, "ca")
    b64 = {name: base64.b64encode(data).decode() for name, data in (("cert", cert), ("key", key), ("ca", ca))}
    path = write(tmp_path / "config", {"c": {"server": "https://k", "certificate-authority-data": b64["ca"]}},
                 {"u": {"client-certificate-data": b64["cert"], "client-key-data": b64["key"]}},
                 {"ctx": ("c", "u")}, "ctx")
    before = tls_leftovers()
    conn = kubeconfig.load(str(path))
    assert conn is not None and (conn.ca_data, conn.cert_data, conn.key_data) == (ca, cert, key)
    assert conn.cert_file is None and conn.key_file is None and conn.ca_file is None
    context = conn.ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and len(context.get_ca_certs()) == 1
    assert tls_leftovers() == before  # the key went through a private file, removed once read


def test_exec_plugin_rotating_its_client_certificate_moves_the_generation(tmp_path: Path) -> None:
    """A client made from the connection builds a new TLS context when the plugin hands out a new
    certificate (the daemon keeps clients for hours)."""
    pairs = [self_signed(tmp_path, f"c{i}") for i in (1, 2)]
    for i, (cert, key) in enumerate(pairs, start=1):
        (tmp_path / f"cred{i}.json").write_text(json.dumps({
            "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": {"clientCertificateData": cert.decode(), "clientKeyData": key.decode(),
                       "expirationTimestamp": "2000-01-01T00:00:00Z"}}))  # expired: asked again each time
    counter = tmp_path / "count"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        f"print(pathlib.Path({str(tmp_path)!r}, f'cred{{min(n, 2)}}.json').read_text())\n"
    )
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(plugin)]}}
    path = write(tmp_path / "config", {"c": {"server": "https://k"}}, {"u": user}, {"ctx": ("c", "u")}, "ctx")
    conn = kubeconfig.load(str(path))
    assert conn is not None and conn.cert_data == pairs[0][0] and conn.generation == 1
    conn.token()  # expired: the plugin runs again and hands out the second certificate
    assert conn.cert_data == pairs[1][0] and conn.generation == 2
    conn.token()  # the same certificate again: nothing to rebuild
    assert conn.generation == 2
    conn.ssl_context()


def test_merged_kubeconfig_list_first_definition_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a", {"c": {"server": "https://first"}}, {"u": {"token": "t1"}}, {"one": ("c", "u")}, "one")
    b = write(tmp_path / "b", {"c": {"server": "https://second"}, "d": {"server": "https://d"}},
              {"u": {"token": "t2"}}, {"two": ("d", "u")}, "two")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    first = kubeconfig.load()
    assert first is not None and first.server == "https://first" and first.token() == "t1"
    second = kubeconfig.load(context="two")
    assert second is not None and second.server == "https://d" and second.token() == "t1"


def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os, pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "assert json.loads(os.environ['KUBERNETES_EXEC_INFO'])['kind'] == 'ExecCredential'\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
        " 'status': {'token': 'tok-' + str(n) + os.environ['EXTRA'],"
        " 'expirationTimestamp': '2999-01-01T00:00:00Z'}}))\n"
    )
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(plugin)], "env": [{"name": "EXTRA", "value": "!"}]}}
    path = write(tmp_path / "config", {"c": {"server": "https://k"}}, {"u": user}, {"ctx": ("c", "u")}, "ctx")
    conn = kubeconfig.load(str(path))
    assert conn is not None
    assert conn.token() == "tok-1!"
    assert conn.token() == "tok-1!"
    assert counter.read_text() == "1"


@pytest.mark.parametrize("user", [
    {"auth-provider": {"name": "oidc", "config": {}}},
    {"username": "admin", "password": "secret"},
])
def test_unusual_entries_are_left_to_the_sdk(tmp_path: Path, user: dict[str, Any]) -> None:
    path = write(tmp_path / "config", {"c": {"server": "https://k"}}, {"u": user}, {"ctx": ("c", "u")}, "ctx")
    assert kubeconfig.load(str(path)) is None


def test_missing_context_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "config", {"c": {"server": "https://k"}}, {"u": {}}, {"ctx": ("c", "u")})
    with pytest.raises(kubeconfig.KubeconfigError, match="no current-context"):
        kubeconfig.load(str(path))
    with pytest.raises(kubeconfig.KubeconfigError, match="'other' not found"):
        kubeconfig.load(str(path), "other")


def test_the_client_falls_back_to_the_sdk_and_reports_errors(tmp_path: Path) -> None:
    from gitops.backends.kubernetes.client import KubeClient
    from gitops.errors import BackendError

    path = write(tmp_path / "config", {"c": {"server": "https://k:1"}},
                 {"u": {"username": "a", "password": "b"}}, {"ctx": ("c", "u")}, "ctx")
    client = KubeClient(str(path))
    assert client.server == "https://k:1"
    with pytest.raises(BackendError, match="cannot load"):
        KubeClient(str(tmp_path / "missing"))
