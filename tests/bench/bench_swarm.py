"""Benchmark: gitops plan/apply of a Swarm stack against `docker stack deploy`, side by side.

    python tests/bench/bench_swarm.py [--services 20] [--repeat 3] [--poll]

Needs the test swarm (`tests/clusters up --only swarm`) and its local images gitops-test/app:1/:2
(never pulled). Generates a stack of N varied services (replicas 1-2, environment, configs,
secrets, published ports, overlay networks, a few health checks, quick update_config) into a
temporary git repository with a gitops.yaml, and deploys the same stack under three unique stack
names: one with gitops, one with `docker stack deploy` (returns before the services converge) and
one with `docker stack deploy --detach=false` (waits for them; when the docker CLI lacks that flag,
or with --poll, a detached deploy timed until `docker service ls` shows it converged). Measures:

* first deploy: `gitops apply` (waits for the rollout) vs both docker forms; for the detached one,
  also the time until `docker service ls` shows every replica running;
* `gitops plan` with no change and with one change (one service's image to :2);
* no-op re-apply: wall time and the number of services whose ``Version.Index`` moved (updates)
  and of running tasks replaced; for docker with ``--resolve-image never`` (used everywhere, the
  images being local) and once more with the default ``--resolve-image always``;
* one-change apply (one image to :2): `gitops apply` vs `docker stack deploy --detach=false`.

Every command runs as its own process: the wall time includes start-up and the peak memory (max
RSS, from os.wait4) is the command's own. Prints a table and writes
tests/bench/results/bench_swarm.json. Everything created (stacks, by the label
com.docker.stack.namespace, and gitops' state configs) is removed at the end, also on failure.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))

RESULTS = HERE / "results"
STACK_LABEL = "com.docker.stack.namespace"
APP_LABEL = "gitops.dev/app"  # gitops' state and lock configs
IMAGE = "gitops-test/app"
STEP_TIMEOUT = 240.0  # seconds; a step that takes longer is killed and the run fails
FAST_UPDATE = {"parallelism": 1, "delay": "200ms", "monitor": "1s", "failure_action": "pause"}


# -- the stack ---------------------------------------------------------------------------------------


def compose_doc(services: int, ports: list[int], changed: int | None = None) -> dict[str, Any]:
    """N services, varied; ``changed`` is the index of the one service whose image is :2."""
    doc: dict[str, Any] = {
        "version": "3.8",
        "services": {},
        "networks": {"front": {"driver": "overlay"}, "back": {"driver": "overlay", "attachable": True}},
        "configs": {"site": {"file": "./site.html"}},
        "secrets": {"token": {"file": "./token.txt"}},
    }
    free = iter(ports)
    for i in range(services):
        name = f"svc{i:02d}"
        service: dict[str, Any] = {
            "image": f"{IMAGE}:{2 if i == changed else 1}",
            "environment": {"INDEX": str(i), "MODE": "bench", **({"EXTRA": "x" * 40} if i % 2 else {})},
            "stop_grace_period": "1s",
            "deploy": {
                "replicas": 2 if i % 3 == 0 else 1,
                "update_config": {**FAST_UPDATE, "order": "start-first" if i % 2 == 0 else "stop-first"},
                "restart_policy": {"condition": "on-failure", "delay": "1s"},
                "labels": {"bench.index": str(i)},
            },
        }
        if i % 4 == 0:
            service["configs"] = [{"source": "site", "target": "/www/index.html"}]
        elif i % 4 == 1:
            doc["configs"][f"conf{i:02d}"] = {"file": f"./conf{i:02d}.conf"}
            service["configs"] = [{"source": f"conf{i:02d}", "target": "/etc/app.conf"}]
        if i % 5 == 0:
            service["secrets"] = ["token"]
        if i % 5 == 2:
            service["ports"] = [{"target": 8080, "published": next(free), "protocol": "tcp"}]
        if i % 3 == 0:
            service["networks"] = ["front", "back"]
        elif i % 3 == 1:
            service["networks"] = ["back"]
        if i % 6 == 5:
            service["healthcheck"] = {"test": ["CMD", "wget", "-qO-", "http://localhost:8080/"],
                                      "interval": "1s", "timeout": "1s", "retries": 3}
        if i % 7 == 3:
            service["deploy"]["resources"] = {"limits": {"memory": "64M"}}
        doc["services"][name] = service
    return doc


def ports_needed(services: int) -> int:
    return sum(1 for i in range(services) if i % 5 == 2)


def write_stack(folder: Path, doc: dict[str, Any], name: str = "compose.yaml") -> Path:
    """The compose file (JSON is YAML) and the files its configs and secrets name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.html").write_text("<h1>bench</h1>\n")
    (folder / "token.txt").write_text("bench-s3cret\n")
    for key, value in doc["configs"].items():
        if key.startswith("conf"):
            (folder / value["file"]).write_text(f"name = {key}\n")
    path = folder / name
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"})


def gitops_repo(root: Path, app: str, stack: str, host: str, doc: dict[str, Any]) -> None:
    root.mkdir(parents=True)
    (root / "gitops.yaml").write_text(
        "version: 1\n"
        "apps:\n"
        f"  - name: {app}\n"
        "    backend: swarm\n"
        "    paths: [stack/compose.yaml]\n"
        "    target:\n"
        f"      host: {host}\n"
        f"      stack: {stack}\n"
        "    rollout:\n"
        "      timeout: 3m\n")
    write_stack(root / "stack", doc)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")


# -- processes ------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss_mib: float
    code: int
    out: str
    err: str
    lines: list[tuple[float, str]]  # stdout lines with the second each arrived at

    def figures(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "peak_rss_mib": round(self.rss_mib, 1), "exit": self.code}


ENV: dict[str, str] = dict(os.environ)


def timed(argv: list[str], *, cwd: Path | None = None, ok: tuple[int, ...] = (0,),
          timeout: float = STEP_TIMEOUT) -> Run:
    """Run one command to its end; its wall time and peak RSS (os.wait4); killed after ``timeout``."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    killer = threading.Timer(timeout, process.kill)
    killer.daemon = True
    killer.start()
    try:
        lines = [(time.perf_counter() - started, line) for line in process.stdout]
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:  # interrupted: no orphan left writing to the swarm while we clean up
        killer.cancel()
        process.kill()
        process.wait()
        raise
    seconds = time.perf_counter() - started
    killer.cancel()
    reader.join()
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    err = "".join(errors)
    if code not in ok:
        why = "killed after the step timeout" if seconds >= timeout else f"exit {code}"
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({why}):\n{''.join(text for _, text in lines)[-2000:]}"
                           f"\n{err[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, code, "".join(line for _, line in lines), err, lines)


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], env=ENV, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- what the swarm shows ------------------------------------------------------------------------------


def service_ids(stack: str) -> list[str]:
    return docker("service", "ls", "-q", "--filter", f"label={STACK_LABEL}={stack}").split()


def versions(stack: str) -> dict[str, int]:
    ids = service_ids(stack)
    if not ids:
        return {}
    out = docker("service", "inspect", "--format", "{{.Spec.Name}} {{.Version.Index}}", *ids)
    return {name: int(index) for name, index in (line.split() for line in out.splitlines() if line.strip())}


def running_tasks(stack: str) -> set[str]:
    ids = service_ids(stack)
    if not ids:
        return set()
    return set(docker("service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", *ids).split())


def snapshot(stack: str) -> tuple[dict[str, int], set[str]]:
    return versions(stack), running_tasks(stack)


def settled(stack: str, seconds: float = 2.0) -> tuple[dict[str, int], set[str]]:
    """The snapshot once the stack has converged and stayed a moment (a detached deploy returns early)."""
    services = len(service_ids(stack))
    wait_converged(stack, services, time.perf_counter())
    time.sleep(seconds)
    wait_converged(stack, services, time.perf_counter())
    return snapshot(stack)


def moved(before: tuple[dict[str, int], set[str]], after: tuple[dict[str, int], set[str]]) -> dict[str, Any]:
    updated = sorted(n for n, v in after[0].items() if before[0].get(n) != v)
    return {"services_updated": len(updated), "services": len(after[0]),
            "tasks_replaced": len(before[1] - after[1]), "updated": updated}


def converged(stack: str, services: int, changed_service: str | None = None) -> bool:
    """Every service of the stack listed with all its replicas running (and, for ``changed_service``,
    its update completed): what `docker service ls` / `inspect` show."""
    out = docker("service", "ls", "--filter", f"label={STACK_LABEL}={stack}", "--format", "{{.Name}} {{.Replicas}}")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    if len(rows) != services:
        return False
    for row in rows:
        running, _, desired = row[1].partition("/")
        if running != desired:
            return False
    if changed_service:
        state = docker("service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                       changed_service).strip()
        return state == "completed"
    return True


def wait_converged(stack: str, services: int, started: float, changed_service: str | None = None,
                   timeout: float = STEP_TIMEOUT) -> float:
    """Seconds from ``started`` (perf_counter) until the stack converged; polls `docker service ls`."""
    while not converged(stack, services, changed_service):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"stack {stack} did not converge in {timeout:.0f}s")
        time.sleep(0.1)
    return time.perf_counter() - started


def used_published_ports() -> set[int]:
    out = docker("service", "ls", "--format", "{{.Ports}}")
    return {int(p) for p in re.findall(r":(\d+)->", out)}


def free_ports(count: int) -> list[int]:
    """Ports free on the host and not published by any swarm service (ingress does not listen)."""
    taken = used_published_ports()
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("0.0.0.0", 0))  # noqa: S104 - a published port listens on every interface
            held.append(s)
            port = int(s.getsockname()[1])
            if port not in taken:
                ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def remove_everything(stacks: list[str], app: str, deadline: float = 300.0) -> dict[str, Any]:
    """Remove the stacks (every object labelled with them: services first, then what they used) and
    gitops' state and lock configs; returns what is left (nothing, normally)."""

    def ids(kind: str, label: str) -> list[str]:
        listing = ["ps", "-aq"] if kind == "container" else [kind, "ls", "-q"]
        return docker(*listing, "--filter", f"label={label}", check=False).split()

    labels = [f"{STACK_LABEL}={stack}" for stack in stacks]
    for label in labels:
        if found := ids("service", label):
            docker("service", "rm", *found, check=False)
    # The engine stops the tasks' containers one after the other, each after its grace period (the
    # test images ignore SIGTERM); removing our containers at once is much quicker.
    for label in labels:
        if found := ids("container", label):
            docker("rm", "-f", *found, check=False)
    for label in [*labels, f"{APP_LABEL}={app}"]:
        for kind in ("config", "secret"):
            if found := ids(kind, label):
                docker(kind, "rm", *found, check=False)
    # Networks and volumes go when no task uses them any more; a swarm network removed from the
    # cluster is still listed on the node until its last container is gone.
    end = time.monotonic() + deadline
    while True:
        remaining = 0
        for label in labels:
            for kind in ("container", "network", "volume"):
                found = ids(kind, label)
                remaining += len(found)
                for one in found:
                    docker(*(["rm", "-f"] if kind == "container" else [kind, "rm"]), one, check=False)
        if not remaining or time.monotonic() > end:
            break
        time.sleep(0.5)
    left: dict[str, Any] = {}
    for label in [*labels, f"{APP_LABEL}={app}"]:
        for kind in ("service", "container", "config", "secret", "network", "volume"):
            if found := ids(kind, label):
                left[f"{label} {kind}"] = len(found)
    return left


# -- gitops output ----------------------------------------------------------------------------------


def events(run: Run) -> list[tuple[float, dict[str, Any]]]:
    found = []
    for at, line in run.lines:
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                found.append((at, json.loads(line)))
    return found


def gitops_figures(run: Run) -> dict[str, Any]:
    """Wall time, RSS, and from the JSON events: the outcome, the number of changes, phase times."""
    figures = run.figures()
    seen = events(run)
    stamps: dict[str, float] = {}
    for at, event in seen:
        stamps.setdefault(str(event.get("event")), at)
    if seen:
        last = seen[-1][1]
        for key in ("outcome", "summary"):
            if key in last:
                figures[key] = last[key]
    changes = [e for _, e in seen if e.get("event") == "change" and e.get("action") not in (None, "no-op")]
    for _, document in seen:  # a plan: {"apps": [{"changes": [...]}]}
        for planned in document.get("apps") or []:
            changes += [c for c in planned.get("changes", []) if c.get("action") != "no-op"]
    figures["changes"] = len(changes)
    figures["changed"] = sorted({f"{c.get('action')} {c.get('object') or c.get('kind') + '/' + c.get('name')}"
                                 for c in changes})[:10]
    if "apply" in stamps and "rollout" in stamps:
        figures["seconds_to_first_write"] = round(stamps["apply"], 3)
        figures["seconds_applying"] = round(stamps["rollout"] - stamps["apply"], 3)
        if "done" in stamps:
            figures["seconds_watching_rollout"] = round(stamps["done"] - stamps["rollout"], 3)
    figures["events"] = sorted(stamps)
    return figures


# -- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan (the median is reported)")
    parser.add_argument("--poll", action="store_true",
                        help="time docker's convergence by polling `docker service ls` even when the docker CLI "
                        "has `stack deploy --detach=false`")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below still cleans up

    from harness import swarm

    status = swarm.up()
    if not status.ready:
        raise SystemExit(status.describe())
    host = swarm.docker_host()
    ENV["DOCKER_HOST"] = host
    if shutil.which("docker") is None:
        raise SystemExit("the docker client is not installed")
    n = args.services
    suffix = uuid.uuid4().hex[:6]
    app = f"bench-{suffix}"
    stack_gitops, stack_docker, stack_wait = f"bench_g_{suffix}", f"bench_d_{suffix}", f"bench_w_{suffix}"
    stacks = [stack_gitops, stack_docker, stack_wait]
    changed = n // 2  # the service whose image goes to :2
    changed_name = f"svc{changed:02d}"
    gitops = [sys.executable, "-m", "gitops"]
    client_version = docker("version", "--format", "{{.Client.Version}}").strip()
    server_version = docker("version", "--format", "{{.Server.Version}}").strip()
    detach_supported = "--detach" in docker("stack", "deploy", "--help")
    never = ["--resolve-image", "never"]

    report: dict[str, Any] = {
        "services": n, "stacks": {"gitops": stack_gitops, "docker": stack_docker, "docker_wait": stack_wait},
        "docker_client": client_version, "docker_engine": server_version, "python": platform.python_version(),
        "cpus": os.cpu_count(), "docker_stack_deploy_detach_false_supported": detach_supported,
        "docker_wait_mode": "--detach=false" if detach_supported and not args.poll else "polling docker service ls",
        "docker_resolve_image": "never (images are local; the default 'always' is measured once, for no-op)",
        "changed_service": changed_name,
        "commands": {
            "gitops_plan": "python -m gitops plan APP --detailed-exitcode --output json",
            "gitops_apply": "python -m gitops apply APP --auto-approve --output json",
            "docker": "docker stack deploy --resolve-image never -c compose.yaml STACK",
            "docker_wait": "docker stack deploy --detach=false --resolve-image never -c compose.yaml STACK",
            "docker_resolve_image_always": "docker stack deploy -c compose.yaml STACK",
        },
    }
    rows: dict[str, dict[str, Any]] = {}
    report["results"] = rows

    def docker_wait_deploy(stack: str, compose: Path, changed_service: str | None = None) -> dict[str, Any]:
        """`docker stack deploy --detach=false`; without that flag, detached plus polling."""
        if detach_supported and not args.poll:
            run = timed(["docker", "stack", "deploy", "--detach=false", *never, "-c", str(compose), stack])
            verify = next((line.strip() for line in run.out.splitlines() if "verify: Waiting" in line), "")
            return {**run.figures(), "mode": "--detach=false",
                    "services_verified": run.out.count(" converged"), "first_verify_line": verify}
        started = time.perf_counter()
        run = timed(["docker", "stack", "deploy", *never, "-c", str(compose), stack])
        seconds = wait_converged(stack, n, started, changed_service)
        return {**run.figures(), "seconds": round(seconds, 3), "seconds_command": round(run.seconds, 3),
                "mode": "detached, then polling docker service ls (no --detach=false here)"}

    def plans(root: Path) -> dict[str, Any]:
        runs = [timed([*gitops, "plan", app, "--detailed-exitcode", "--output", "json"], cwd=root, ok=(0, 2))
                for _ in range(args.repeat)]
        figures = gitops_figures(runs[-1])
        figures["seconds"] = round(statistics.median(r.seconds for r in runs), 3)
        figures["seconds_all"] = [round(r.seconds, 3) for r in runs]
        figures["peak_rss_mib"] = round(max(r.rss_mib for r in runs), 1)
        return figures

    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as tmp:
        work = Path(tmp)
        try:
            ports = free_ports(3 * ports_needed(n))
            k = ports_needed(n)
            root = work / "gitops"
            gitops_repo(root, app, stack_gitops, host, compose_doc(n, ports[:k]))
            docker_file = write_stack(work / "docker", compose_doc(n, ports[k:2 * k]))
            wait_file = write_stack(work / "docker-wait", compose_doc(n, ports[2 * k:]))
            wait_changed = write_stack(work / "docker-wait", compose_doc(n, ports[2 * k:], changed), "compose-v2.yaml")

            say(f"stacks {', '.join(stacks)}; {n} services each; work in {work}")
            # Start-up of the interpreter and the CLI alone, as a floor for every gitops figure.
            floor = [timed([*gitops, "--version"]) for _ in range(args.repeat)]
            rows["cli_startup"] = {"gitops": {
                "seconds": round(statistics.median(r.seconds for r in floor), 3),
                "peak_rss_mib": round(max(r.rss_mib for r in floor), 1), "command": "gitops --version"}}

            say("first deploys")
            first = gitops_figures(timed([*gitops, "apply", app, "--auto-approve", "--output", "json"], cwd=root))
            started = time.perf_counter()
            detached = timed(["docker", "stack", "deploy", *never, "-c", str(docker_file), stack_docker])
            converge = wait_converged(stack_docker, n, started)
            rows["first_deploy"] = {
                "gitops": first,
                "docker": {**detached.figures(), "seconds_to_converge": round(converge, 3)},
                "docker_wait": docker_wait_deploy(stack_wait, wait_file),
            }
            for stack in stacks:  # every stack must be whole before the next steps
                wait_converged(stack, n, time.perf_counter())

            say("plan without changes")
            rows["plan_unchanged"] = {"gitops": plans(root)}

            say("no-op re-apply")
            before = snapshot(stack_gitops)
            run = timed([*gitops, "apply", app, "--auto-approve", "--output", "json"], cwd=root)
            noop = {**gitops_figures(run), **moved(before, settled(stack_gitops))}
            before = snapshot(stack_docker)
            run = timed(["docker", "stack", "deploy", *never, "-c", str(docker_file), stack_docker])
            docker_noop = {**run.figures(), **moved(before, settled(stack_docker))}
            before = snapshot(stack_wait)
            wait_noop = {**docker_wait_deploy(stack_wait, wait_file), **moved(before, settled(stack_wait))}
            rows["apply_noop"] = {"gitops": noop, "docker": docker_noop, "docker_wait": wait_noop}
            before = snapshot(stack_docker)
            run = timed(["docker", "stack", "deploy", "-c", str(docker_file), stack_docker])
            after = settled(stack_docker)
            rows["apply_noop_resolve_image_always"] = {"docker": {
                **run.figures(), **moved(before, after),
                "registry_warnings": run.err.count("could not be accessed on a registry"),
                "stderr_head": " ".join(run.err.split())[:400]}}

            say(f"one change: {changed_name} to :2")
            doc = compose_doc(n, ports[:k], changed)
            (root / "stack" / "compose.yaml").write_text(json.dumps(doc, indent=1) + "\n")
            git(root, "commit", "-qam", f"{changed_name} to :2")
            rows["plan_one_change"] = {"gitops": plans(root)}
            before = snapshot(stack_gitops)
            run = timed([*gitops, "apply", app, "--auto-approve", "--output", "json"], cwd=root)
            one = {**gitops_figures(run), **moved(before, snapshot(stack_gitops))}
            before = snapshot(stack_wait)
            wait_one = {**docker_wait_deploy(stack_wait, wait_changed, f"{stack_wait}_{changed_name}"),
                        **moved(before, snapshot(stack_wait))}
            rows["apply_one_change"] = {"gitops": one, "docker_wait": wait_one}
        finally:
            say("removing the stacks")
            left = remove_everything(stacks, app)
            report["left_after_cleanup"] = left
            if left:
                print(f"warning: left after cleanup: {left}", file=sys.stderr)

    print_table(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_swarm.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {RESULTS / 'bench_swarm.json'}")
    return 0


def cell(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    text = f"{figures['seconds']:.2f}s {figures['peak_rss_mib']:.0f}MiB"
    if "services_updated" in figures:
        text += f" upd {figures['services_updated']}/{figures['services']} repl {figures['tasks_replaced']}"
    if "seconds_to_converge" in figures:
        text += f" (conv {figures['seconds_to_converge']:.2f}s)"
    return text


def print_table(report: dict[str, Any]) -> None:
    rows = report["results"]
    wait = "docker " + ("--detach=false" if report["docker_wait_mode"] == "--detach=false" else "+ polling")
    step = f"step ({report['services']} services)"
    header = f"{step:<34} {'gitops':<30} {'docker stack deploy':<34} {wait}"
    print(header)
    print("-" * len(header))
    labels = {
        "cli_startup": "CLI start-up (gitops --version)",
        "first_deploy": "first deploy",
        "plan_unchanged": "plan, no change",
        "plan_one_change": "plan, one image change",
        "apply_noop": "no-op re-apply",
        "apply_noop_resolve_image_always": "no-op, --resolve-image always",
        "apply_one_change": "apply one image change",
    }
    for name, label in labels.items():
        row = rows.get(name, {})
        print(f"{label:<34} {cell(row.get('gitops')):<30} {cell(row.get('docker')):<34} {cell(row.get('docker_wait'))}")
    first = rows.get("first_deploy", {}).get("gitops", {})
    if "seconds_applying" in first:
        print(f"gitops first deploy: {first['seconds_to_first_write']}s to the first write, "
              f"{first['seconds_applying']}s writing, {first.get('seconds_watching_rollout')}s watching the rollout")
    print("upd = services whose Version.Index moved; repl = running tasks replaced; conv = until docker service ls "
          "showed every replica running")
    if not report["docker_stack_deploy_detach_false_supported"]:
        print("this docker CLI has no --detach for stack deploy: convergence measured by polling docker service ls")
    elif report["docker_wait_mode"] != "--detach=false":
        print("docker's convergence measured by polling docker service ls (--poll)")


if __name__ == "__main__":
    sys.exit(main())
