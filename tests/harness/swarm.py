"""A real single-node Docker Swarm on the local engine, and test images built without a registry.

The engine is Debian's ``docker.io``. When no engine answers, ``dockerd`` is started here (its
log and pid under ``<cache>/run/swarm``); the swarm is initialised on 127.0.0.1. Test images are
``docker import``-ed from a root filesystem holding Debian's static busybox:

* ``gitops-test/app:1``, ``:2``, ``:3`` serve HTTP on port 8080 and pass their health check;
* ``gitops-test/fail:1`` exits non-zero at once, for failed rollouts.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from .build import file_lock, log
from .paths import cache_root, run_dir

BUSYBOX = Path("/bin/busybox")
APP_IMAGE = "gitops-test/app"
APP_TAGS = ("1", "2", "3")
FAIL_IMAGE = "gitops-test/fail:1"
IMAGES = (*(f"{APP_IMAGE}:{tag}" for tag in APP_TAGS), FAIL_IMAGE)
APPLETS = ("sh", "sleep", "httpd", "echo", "cat", "true", "false", "wget", "nc", "ls", "env", "test", "[")
DOCKER_SOCKET = "/var/run/docker.sock"
#: Bumped whenever the images' content changes, so machines with older ones rebuild them.
IMAGE_VERSION = "2"
VERSION_LABEL = "gitops-test.image-version"


@dataclass(frozen=True)
class SwarmStatus:
    engine: bool
    swarm: bool
    images: dict[str, bool]

    @property
    def ready(self) -> bool:
        return self.engine and self.swarm and all(self.images.values())

    def describe(self) -> str:
        missing = [name for name, present in self.images.items() if not present]
        return (f"swarm: {'ready' if self.ready else 'not ready'} (engine={'up' if self.engine else 'down'}, "
                f"swarm={'active' if self.swarm else 'inactive'}"
                + (f", missing images: {', '.join(missing)}" if missing else "") + ")")


def state_dir() -> Path:
    return run_dir("swarm")


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{DOCKER_SOCKET}"


def _docker(*args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    docker = shutil.which("docker")
    if docker is None:
        raise RuntimeError("the docker client is not installed (Debian package docker.io)")
    env = {**os.environ, "DOCKER_HOST": docker_host()}
    result = subprocess.run([docker, *args], input=stdin, capture_output=True, env=env)
    if check and result.returncode != 0:
        why = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"docker {' '.join(args)} failed: {why}")
    return result


def _engine_up() -> bool:
    try:
        return _docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0
    except RuntimeError:
        return False


def _swarm_active() -> bool:
    result = _docker("info", "--format", "{{.Swarm.LocalNodeState}}", check=False)
    return result.returncode == 0 and result.stdout.decode().strip() == "active"


def _image_present(name: str) -> bool:
    """Present and built by this version of the harness."""
    result = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{VERSION_LABEL}"}}}}', name,
                     check=False)
    return result.returncode == 0 and result.stdout.decode().strip() == IMAGE_VERSION


def status() -> SwarmStatus:
    engine = _engine_up()
    return SwarmStatus(
        engine=engine,
        swarm=engine and _swarm_active(),
        images={name: engine and _image_present(name) for name in IMAGES},
    )


def _start_engine() -> None:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise RuntimeError("dockerd is not installed: run scripts/setup-system.sh (Debian package docker.io)")
    if os.geteuid() != 0:
        raise RuntimeError("no Docker engine answers and starting dockerd needs root")
    log("starting dockerd")
    logfile = (state_dir() / "dockerd.log").open("ab")
    process = subprocess.Popen(
        [dockerd, f"--host=unix://{DOCKER_SOCKET}", f"--pidfile={state_dir() / 'dockerd.pid'}"],
        stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    (state_dir() / "started-by-harness").write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _engine_up():
            return
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise RuntimeError(f"dockerd did not start; see {state_dir() / 'dockerd.log'}")


def _rootfs_tar(command: list[str], healthy: bool) -> bytes:
    """A root filesystem with static busybox and its applets, as a tar stream for `docker import`."""
    if not BUSYBOX.exists():
        raise RuntimeError(f"{BUSYBOX} is missing: install Debian's busybox-static")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "etc", "www"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
                           ("www/index.html", "ok\n" if healthy else "failing\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _build_images() -> None:
    serve = ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"]
    for tag in APP_TAGS:
        name = f"{APP_IMAGE}:{tag}"
        if _image_present(name):
            continue
        log(f"building test image {name}")
        changes = [
            "--change", f'CMD {serve!r}'.replace("'", '"'),
            "--change", f"ENV APP_VERSION={tag}",
            "--change", "EXPOSE 8080",
            "--change", f"LABEL {VERSION_LABEL}={IMAGE_VERSION}",
        ]
        _docker("import", *changes, "-", name, stdin=_rootfs_tar(serve, healthy=True))
    if not _image_present(FAIL_IMAGE):
        log(f"building test image {FAIL_IMAGE}")
        fail = ["/bin/sh", "-c", "echo failing on purpose >&2; exit 1"]
        _docker("import", "--change", f"CMD {fail!r}".replace("'", '"'),
                "--change", f"LABEL {VERSION_LABEL}={IMAGE_VERSION}", "-", FAIL_IMAGE,
                stdin=_rootfs_tar(fail, healthy=False))


INGRESS_SUBNET = "10.255.0.0/16"


def _ensure_large_ingress() -> None:
    """Give the routing mesh a /16. Docker 20.10 leaks ingress addresses of removed services with
    published ports; with the default /24, a machine that has run the suite a few times cannot
    start such tasks any more ("could not find an available IP"). The network can only be
    replaced while no service publishes a port through it."""
    inspect = _docker("network", "inspect", "ingress", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                      check=False)
    subnet = inspect.stdout.decode().strip()
    if inspect.returncode == 0 and subnet == INGRESS_SUBNET:
        return
    ids = _docker("service", "ls", "-q", check=False).stdout.decode().split()
    for service in ids:
        ports = _docker("service", "inspect", service, "--format",
                        "{{range .Endpoint.Ports}}{{.PublishMode}} {{end}}", check=False).stdout.decode()
        if "ingress" in ports:
            log(f"the ingress network is {subnet or 'missing'}, not {INGRESS_SUBNET}, and services publish "
                "ports through it; leaving it (tests with published ports may run out of addresses)")
            return
    log(f"replacing the ingress network {subnet or '(none)'} with {INGRESS_SUBNET}")
    if inspect.returncode == 0:
        _docker("network", "rm", "ingress", stdin=b"y\n", check=False)
    for _ in range(100):  # the removal finishes asynchronously
        created = _docker("network", "create", "--driver", "overlay", "--ingress", "--subnet", INGRESS_SUBNET,
                          "ingress", check=False)
        if created.returncode == 0:
            return
        time.sleep(0.2)
    # A node can keep a stale local copy of the old network (Docker 20.10); the swarm still works,
    # with the smaller ingress. `tests/clusters down && up` on a harness-made swarm starts afresh.
    log(f"could not replace the ingress network: {created.stderr.decode().strip()}")


def up() -> SwarmStatus:
    with file_lock(cache_root() / ".swarm.lock"):
        started = time.monotonic()
        if not _engine_up():
            _start_engine()
        if not _swarm_active():
            log("initialising the swarm on 127.0.0.1")
            _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        _ensure_large_ingress()
        _build_images()
        current = status()
        log(f"docker swarm ready in {time.monotonic() - started:.1f}s")
        return current


def remove_stack(stack: str) -> None:
    """Remove everything labelled as part of a stack (services first, then what they used)."""
    label = f"label=com.docker.stack.namespace={stack}"
    for kind in ("service", "config", "secret", "network", "volume"):
        ids = _docker(kind, "ls", "-q", "--filter", label, check=False).stdout.decode().split()
        if not ids:
            continue
        if kind == "network":
            # Service tasks release their network attachments asynchronously.
            for _ in range(50):
                if _docker(kind, "rm", *ids, check=False).returncode == 0:
                    break
                time.sleep(0.2)
        elif kind == "volume":
            for _ in range(50):
                if _docker(kind, "rm", "-f", *ids, check=False).returncode == 0:
                    break
                time.sleep(0.2)
        else:
            _docker(kind, "rm", *ids, check=False)


def down() -> None:
    """Leave the swarm and stop dockerd if this harness started it; an engine we found is left alone."""
    with file_lock(cache_root() / ".swarm.lock"):
        marker = state_dir() / "started-by-harness"
        if not marker.exists():
            log("dockerd was not started by the harness; leaving the engine and swarm as they are")
            return
        if _engine_up() and _swarm_active():
            _docker("swarm", "leave", "--force", check=False)
        pidfile = state_dir() / "dockerd.pid"
        try:
            pid = int(pidfile.read_text())
            log("stopping dockerd")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _engine_up():
                time.sleep(0.2)
        except (OSError, ValueError):
            pass
        marker.unlink(missing_ok=True)
