"""The fast kubeconfig reader: what it reads itself, and when it leaves the file to the SDK."""

from __future__ import annotations

import base64
import stat
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


def test_inline_data_becomes_private_files(tmp_path: Path) -> None:
    b64 = base64.b64encode(b"-----PEM-----").decode()
    path = write(tmp_path / "config", {"c": {"server": "https://k", "certificate-authority-data": b64}},
                 {"u": {"client-certificate-data": b64, "client-key-data": b64}}, {"ctx": ("c", "u")}, "ctx")
    conn = kubeconfig.load(str(path))
    assert conn is not None and conn.key_file and conn.cert_file and conn.ca_file
    assert Path(conn.key_file).read_bytes() == b"-----PEM-----"
    assert stat.S_IMODE(Path(conn.key_file).stat().st_mode) == 0o600


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
    import sys

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
