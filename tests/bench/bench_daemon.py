"""Benchmark: `gitops daemon` latency and footprint on the test Swarm.

    python tests/bench/bench_daemon.py [--commits 10] [--idle 30] [--kube-apps 10 --kube-objects 100]

Needs the test swarm and, for the Kubernetes part, the test control plane (`tests/clusters up`).
Makes a git repository with one small Swarm app (one service, one replica, a config whose content
every commit changes, quick update_config), starts a real `gitops daemon` process on it, and measures:

* webhook commit -> applied: a commit, then a signed GitHub push to /api/webhook, until the daemon
  reports that revision applied (its rollout watched to the end); p50/p95 over --commits commits;
  split into "webhook -> apply started" (the daemon's own latency) and the rollout;
* poll commit -> applied: the same with no webhook, the app's sync.interval at 2 s;
* the daemon's RSS and CPU (share of one core) while idle for --idle seconds, and its peak RSS;
* on Kubernetes: one daemon managing --kube-apps apps of --kube-objects ConfigMaps each (1,000
  objects by default): the time until all are applied, RSS and CPU idle (polls every 60 s), and
  webhook commit -> applied for one of them (one ConfigMap changed) with the others idle.

Prints a table and writes tests/bench/results/bench_daemon.json. Asserts nothing about time.
The stack and gitops' state configs are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
RESULTS = HERE / "results"
SECRET = "bench-secret"

from harness import swarm  # noqa: E402


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


def write_app(root: Path, stack: str, interval: str, value: int) -> None:
    (root / "gitops.yaml").write_text(f"""version: 1
apps:
  - name: {stack}
    backend: swarm
    paths: [compose.yaml]
    target: {{stack: {stack}}}
    sync: {{prune: true, self_heal: true, interval: {interval}}}
    rollout: {{timeout: 2m}}
""")
    (root / "compose.yaml").write_text("""services:
  web:
    image: gitops-test/app:1
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    configs: [{source: app, target: /etc/app.conf}]
    deploy:
      replicas: 1
      update_config: {parallelism: 1, delay: 200ms, monitor: 1s, order: start-first, failure_action: rollback}
configs:
  app:
    file: ./app.conf
""")
    (root / "app.conf").write_text(f"value={value}\n")


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def app_status(base: str, app: str) -> dict[str, Any]:
    code, body = request(f"{base}/api/v1/apps/{app}")
    return json.loads(body) if code == 200 else {}


def wait(what: str, check: Any, timeout: float = 180.0, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def proc_stat(pid: int) -> tuple[float, int]:
    """CPU seconds (user+system) and RSS bytes of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_mode(mode: str, commits: int, workdir: Path) -> dict[str, Any]:
    stack = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    root = workdir / mode
    root.mkdir()
    write_app(root, stack, "1h" if mode == "webhook" else "2s", 0)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "0")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / f"{mode}.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "gitops", "daemon", "--repo", str(root), "--ref", "main",
                               "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
                              env={**os.environ, "GITOPS_WEBHOOK_SECRET": SECRET}, stdout=subprocess.DEVNULL,
                              stderr=log)
    totals: list[float] = []
    try:
        wait("the first apply", lambda: app_status(base, stack).get("result") == "applied")
        for i in range(1, commits + 1):
            (root / "app.conf").write_text(f"value={i}\n")
            git(root, "commit", "-qam", str(i))
            sha = git(root, "rev-parse", "HEAD")
            started = time.monotonic()
            if mode == "webhook":
                body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
                signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                code, _ = request(f"{base}/api/webhook", "POST", body,
                                  {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature})
                assert code == 200, code

            def applied(sha: str = sha) -> bool:
                status = app_status(base, stack)
                return status.get("revision") == sha and status.get("result") == "applied"

            wait(f"commit {i} applied", applied, poll=0.02)
            totals.append(time.monotonic() - started)
        idle = {}
        if mode == "webhook":
            cpu0, _ = proc_stat(daemon.pid)
            t0 = time.monotonic()
            time.sleep(IDLE_SECONDS)
            cpu1, rss = proc_stat(daemon.pid)
            idle = {"idle_seconds": IDLE_SECONDS, "idle_cpu_share": (cpu1 - cpu0) / (time.monotonic() - t0),
                    "idle_rss_mib": rss / 2**20, "peak_rss_mib": peak_rss(daemon.pid) / 2**20}
    finally:
        daemon.terminate()
        daemon.wait(60)
        swarm.remove_stack(stack)
        cleanup_state(stack)
    reaction, rollout = phases(workdir / f"{mode}.log")
    return {"mode": mode, "commits": commits,
            "commit_to_applied_p50": statistics.median(totals), "commit_to_applied_p95": percentile(totals, 0.95),
            "revision_seen_to_apply_p50": statistics.median(reaction),
            "apply_to_rollout_done_p50": statistics.median(rollout), "samples": totals, **idle}


def phases(log: Path) -> tuple[list[float], list[float]]:
    """From the daemon's JSON log: new revision seen -> first write, and first write -> rollout done."""
    from datetime import datetime

    def at(event: dict[str, Any]) -> float:
        return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    reaction: list[float] = []
    rollout: list[float] = []
    seen = apply = 0.0
    for event in events[1:]:
        if event["event"] == "revision" and event.get("previous"):
            seen = at(event)
        elif event["event"] == "apply-apply" and seen:
            apply = at(event)
            reaction.append(apply - seen)
        elif event["event"] == "apply-done" and apply:
            rollout.append(at(event) - apply)
            seen = apply = 0.0
    return reaction or [0.0], rollout or [0.0]


def run_kube(apps: int, objects: int, commits: int, workdir: Path) -> dict[str, Any]:
    from harness import kube

    kube.up()
    os.environ["KUBECONFIG"] = str(kube.kubeconfig_path())
    run = uuid.uuid4().hex[:6]
    root = workdir / "kube"
    names = [f"bench-{run}-{i}" for i in range(apps)]
    lines = ['version: 1', 'kubernetes_version: "1.35"', "apps:"]
    for name in names:
        lines += [f"  - name: {name}", "    backend: kubernetes", f"    paths: [{name}]",
                  f"    target: {{namespace: {name}}}", "    sync: {prune: true, self_heal: true, interval: 1m}"]
        (root / name).mkdir(parents=True)
        docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"]
        docs += [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{j:03d}, namespace: {name}}}\n"
                 f"data: {{value: '0', index: '{j}'}}\n" for j in range(objects)]
        (root / name / "objects.yaml").write_text("---\n".join(docs))
    (root / "gitops.yaml").write_text("\n".join(lines) + "\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "0")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "kube.log").open("wb")
    started = time.monotonic()
    daemon = subprocess.Popen([sys.executable, "-m", "gitops", "daemon", "--repo", str(root), "--ref", "main",
                               "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
                              env={**os.environ, "GITOPS_WEBHOOK_SECRET": SECRET}, stdout=subprocess.DEVNULL,
                              stderr=log)
    totals: list[float] = []
    try:
        wait("every app applied", lambda: all(app_status(base, n).get("result") == "applied" for n in names),
             timeout=900, poll=0.5)
        first_sync = time.monotonic() - started
        _, rss_synced = proc_stat(daemon.pid)
        cpu0, _ = proc_stat(daemon.pid)
        t0 = time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu1, rss_idle = proc_stat(daemon.pid)
        idle_cpu = (cpu1 - cpu0) / (time.monotonic() - t0)
        target = names[0]
        for i in range(1, commits + 1):
            path = root / target / "objects.yaml"
            path.write_text(path.read_text().replace(f"data: {{value: '{i - 1}', index: '0'}}",
                                                     f"data: {{value: '{i}', index: '0'}}"))
            git(root, "commit", "-qam", str(i))
            sha = git(root, "rev-parse", "HEAD")
            body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            t = time.monotonic()
            request(f"{base}/api/webhook", "POST", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature})
            wait(f"commit {i}", lambda sha=sha: app_status(base, target).get("revision") == sha
                 and app_status(base, target).get("result") == "applied", poll=0.02)
            totals.append(time.monotonic() - t)
        peak = peak_rss(daemon.pid)
    finally:
        daemon.terminate()
        daemon.wait(60)
        for name in names:
            subprocess.run([str(kube.build.cached()["kubectl"]), "--kubeconfig", str(kube.kubeconfig_path()),
                            "delete", "namespace", name, "--wait=false"], capture_output=True, check=False)
            for kind in ("secret", "lease"):
                subprocess.run([str(kube.build.cached()["kubectl"]), "--kubeconfig", str(kube.kubeconfig_path()),
                                "-n", "gitops-system", "delete", kind, f"gitops-state-{name}",
                                f"gitops-lock-{name}"], capture_output=True, check=False)
    return {"mode": "kubernetes-webhook", "apps": apps, "objects": apps * (objects + 1), "commits": commits,
            "first_sync_seconds": first_sync, "rss_after_first_sync_mib": rss_synced / 2**20,
            "idle_seconds": IDLE_SECONDS, "idle_cpu_share": idle_cpu, "idle_rss_mib": rss_idle / 2**20,
            "peak_rss_mib": peak / 2**20, "commit_to_applied_p50": statistics.median(totals),
            "commit_to_applied_p95": percentile(totals, 0.95), "revision_seen_to_apply_p50": 0.0,
            "apply_to_rollout_done_p50": 0.0, "samples": totals}


def cleanup_state(app: str) -> None:
    subprocess.run(["docker", "config", "rm", *configs_of(app)], capture_output=True, check=False)


def configs_of(app: str) -> list[str]:
    out = subprocess.run(["docker", "config", "ls", "-q", "--filter", f"label=gitops.dev/app={app}"],
                         capture_output=True, text=True, check=False).stdout
    return out.split() or ["--"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


IDLE_SECONDS = 30.0


def main() -> int:
    global IDLE_SECONDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--kube-apps", type=int, default=10)
    parser.add_argument("--kube-objects", type=int, default=100, help="ConfigMaps per app")
    parser.add_argument("--only", choices=["swarm", "kubernetes"], default=None)
    args = parser.parse_args()
    IDLE_SECONDS = args.idle
    swarm.up()
    os.environ["DOCKER_HOST"] = swarm.docker_host()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        if args.only != "kubernetes":
            for mode in ("webhook", "poll"):
                results.append(run_mode(mode, args.commits, Path(tmp)))
        if args.only != "swarm":
            results.append(run_kube(args.kube_apps, args.kube_objects, args.commits, Path(tmp)))
    print(f"{'mode':18} {'commits':>7} {'p50 s':>7} {'p95 s':>7} {'seen->write':>11} {'rollout':>8}  extra")
    for r in results:
        extra = ""
        if "idle_cpu_share" in r:
            extra = (f"idle CPU {100 * r['idle_cpu_share']:.2f}% of a core, idle RSS {r['idle_rss_mib']:.0f} MiB, "
                     f"peak RSS {r['peak_rss_mib']:.0f} MiB")
        if "first_sync_seconds" in r:
            extra = (f"{r['objects']} objects in {r['apps']} apps: first sync {r['first_sync_seconds']:.1f}s; " + extra)
        print(f"{r['mode']:18} {r['commits']:>7} {r['commit_to_applied_p50']:7.2f} {r['commit_to_applied_p95']:7.2f} "
              f"{r['revision_seen_to_apply_p50']:11.2f} {r['apply_to_rollout_done_p50']:8.2f}  {extra}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_daemon.json"
    out.write_text(json.dumps({"results": results, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                              indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
