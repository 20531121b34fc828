"""In-cluster configuration: a temporary directory stands in for a pod's service-account mount."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitops.backends.kubernetes import kubeconfig
from gitops.backends.kubernetes.client import KubeClient
from gitops.backends.kubernetes.kubeconfig import InCluster, TokenFile
from gitops.errors import BackendError

POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def mount(tmp_path: Path, token: str = "token-1") -> Path:
    """What the kubelet projects: files behind a ``..data`` symlink that it swaps atomically."""
    root = tmp_path / "serviceaccount"
    data = root / "..2026_01_01_00_00_00.1"
    data.mkdir(parents=True)
    for name, content in (("token", token), ("ca.crt", "CA"), ("namespace", "gitops-system\n")):
        (data / name).write_text(content)
    (root / "..data").symlink_to(data.name)
    for name in ("token", "ca.crt", "namespace"):
        (root / name).symlink_to(f"..data/{name}")
    return root


def rotate(root: Path, token: str) -> None:
    """The kubelet's renewal: a new data directory, then one rename of the ``..data`` link."""
    data = root / f"..new-{token}"
    data.mkdir()
    for name in ("ca.crt", "namespace"):
        (data / name).write_bytes((root / name).read_bytes())
    (data / "token").write_text(token)
    (root / "..data_tmp").symlink_to(data.name)
    os.replace(root / "..data_tmp", root / "..data")


@pytest.fixture
def no_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))


def test_detect_needs_the_service_host_and_a_mounted_token(tmp_path: Path) -> None:
    root = mount(tmp_path)
    found = InCluster.detect(POD_ENV, root)
    assert found == InCluster("10.96.0.1", "443", root)
    assert found.server == "https://10.96.0.1:443" and found.namespace == "gitops-system"
    assert InCluster.detect({}, root) is None
    assert InCluster.detect({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, root) is None
    assert InCluster.detect(POD_ENV, tmp_path / "elsewhere") is None
    assert InCluster("fd00::1", "443", root).server == "https://[fd00::1]:443"


def test_no_kubeconfig_anywhere_means_the_pods_service_account(tmp_path: Path, no_kubeconfig: None) -> None:
    root = mount(tmp_path)
    conn = kubeconfig.load(None, None, InCluster.detect(POD_ENV, root))
    assert conn is not None
    assert conn.server == "https://10.96.0.1:443" and conn.verify
    assert conn.ca_file == str(root / "ca.crt") and conn.ca_data is None
    assert conn.token() == "token-1"


def test_a_kubeconfig_or_a_context_wins_over_the_pods_account(tmp_path: Path, no_kubeconfig: None) -> None:
    root = mount(tmp_path)
    config = tmp_path / "config"
    config.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://elsewhere:6443"}}]
users: [{name: u, user: {token: from-kubeconfig}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    in_cluster = InCluster.detect(POD_ENV, root)
    conn = kubeconfig.load(str(config), None, in_cluster)
    assert conn is not None and conn.server == "https://elsewhere:6443" and conn.token() == "from-kubeconfig"
    with pytest.raises(kubeconfig.KubeconfigError, match="no-such-kubeconfig"):
        kubeconfig.load(None, "some-context", in_cluster)  # a context asked for is never the pod's


def test_a_rotated_token_is_read_again_and_an_unchanged_one_is_not(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = mount(tmp_path)
    token = TokenFile(root / "token")
    reads: list[Path] = []
    original = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    assert [token(), token(), token()] == ["token-1"] * 3
    assert len(reads) == 1, "an unchanged token file is served from memory"
    rotate(root, "token-2")
    assert token() == "token-2"
    assert len(reads) == 2


def test_a_missing_token_file_is_a_backend_error_naming_it(tmp_path: Path, no_kubeconfig: None) -> None:
    root = mount(tmp_path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(root / "ca.crt"), "-subj", "/CN=ca", "-days", "1"], check=True, capture_output=True)
    client = KubeClient(in_cluster=InCluster.detect(POD_ENV, root))
    (root / "token").unlink()
    with pytest.raises(BackendError, match=r"cannot authenticate to https://10\.96\.0\.1:443: .*token"):
        client.request("GET", "/api")


def test_a_mount_without_ca_is_refused_at_once(tmp_path: Path, no_kubeconfig: None) -> None:
    root = mount(tmp_path)
    (root / "ca.crt").unlink()
    with pytest.raises(BackendError, match="no CA certificate"):
        KubeClient(in_cluster=InCluster.detect(POD_ENV, root))
