"""Benchmark: what notifications cost a reconcile, when the receiver answers, hangs, or fails.

    python tests/bench/bench_notify.py [--reconciles 40]

In one process, the daemon's reconcile loop runs on the in-memory backend of the unit tests (so
the figures are the loop's own, not a cluster's): each reconcile finds drift (a hand edit) and
heals it, and so emits two notifications (drift-detected, drift-healed) to a webhook and a GitHub
commit-status provider on a real HTTP receiver on loopback. Four runs: no notifications, the
receiver answering 200, hanging (holding every request until the run ends; the notifier's read
timeout is 5 s), and answering 500 (retried with backoff). Prints p50/p95/max of one reconcile
and the deliveries, and writes tests/bench/results/bench_notify.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "unit"))
RESULTS = HERE / "results"

from fakes import FakeBackend, res  # noqa: E402
from receiver import Receiver, receiving  # noqa: E402

from gitops import config, engine  # noqa: E402
from gitops.daemon.log import Log  # noqa: E402
from gitops.daemon.loop import Daemon, Options  # noqa: E402

REVISION = "a" * 40


def gitops_yaml(receiver: Receiver | None) -> str:
    text = "apps:\n  - {name: web, backend: kubernetes, paths: k8s, sync: {self_heal: true}, rollout: {timeout: 5s}}\n"
    if receiver is not None:
        text += (f"notifications:\n  providers:\n    - {{name: hook, type: webhook, url: '{receiver.url}/hook'}}\n"
                 f"    - {{name: gh, type: github, api_url: '{receiver.url}/api', repository: o/r,"
                 " token: {env: GITOPS_NOTIFY_TOKEN}}\n"
                 "  subscriptions:\n    - {provider: hook}\n    - {provider: gh}\n")
    return text


def run(mode: str, reconciles: int, receiver: Receiver | None, tmp: Path) -> dict[str, Any]:
    fake = FakeBackend(app="web")
    engine.render_app = lambda ws, app, *a, **k: ([res("Deployment", "web", image="app:1")], [])  # type: ignore[assignment]
    engine.backend_for = lambda *a, **k: fake  # type: ignore[assignment]
    engine.revision_of = lambda ws, *a: ws.revision or ""  # type: ignore[assignment]
    settings = config.parse(gitops_yaml(receiver))
    out = io.StringIO()
    daemon = Daemon(Options(repo=str(tmp), leader_election="off", notify_env={"GITOPS_NOTIFY_TOKEN": "t"}),
                    log=Log("json", out))
    daemon.leading.set()
    daemon.notifier.start()
    ws = engine.Workspace(tmp, REVISION, settings)
    daemon._adopt(ws)
    daemon._reconcile("web", ws)  # the first apply
    key = res("Deployment", "web").key
    seconds = []
    for i in range(reconciles):
        fake.objects[key]["image"] = f"edited:{i}"  # drift: detected and healed, two notifications
        started = time.perf_counter()
        daemon._reconcile("web", ws)
        seconds.append(time.perf_counter() - started)
    queued = daemon.notifier.pending()
    received = len(receiver.requests()) if receiver is not None else 0
    if receiver is not None:
        receiver.release.set()
    if mode == "receiver ok":  # let it catch up: every notification delivered
        deadline = time.monotonic() + 30
        while daemon.notifier.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    daemon.notifier.grace = 0.0
    daemon.notifier.close()
    text = daemon.metrics.text().decode()
    delivered = sum(float(line.split()[-1]) for line in text.splitlines()
                    if line.startswith("gitops_notification_delivered_total{"))
    dropped = sum(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith("gitops_notification_dropped_total{"))
    ms = sorted(s * 1000 for s in seconds)
    return {"mode": mode, "reconciles": reconciles, "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2), "max_ms": round(ms[-1], 2),
            "received_during_run": received, "queued_at_end": queued, "delivered": delivered,
            "dropped": dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reconciles", type=int, default=40)
    args = parser.parse_args()
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run("no notifications", args.reconciles, None, Path(tmp)))
        for mode in ("receiver ok", "receiver hangs", "receiver 500"):
            with receiving() as receiver:
                receiver.hang = mode == "receiver hangs"
                receiver.status = 500 if mode == "receiver 500" else 200
                results.append(run(mode, args.reconciles, receiver, Path(tmp)))
    print(f"{'mode':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'received':>9} {'queued':>7} {'delivered':>10} "
          f"{'dropped':>8}")
    for r in results:
        print(f"{r['mode']:<18} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8} {r['received_during_run']:>9} "
              f"{r['queued_at_end']:>7} {r['delivered']:>10.0f} {r['dropped']:>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_notify.json").write_text(json.dumps({"reconcile": results}, indent=2) + "\n")
    print(f"wrote {RESULTS / 'bench_notify.json'}")


if __name__ == "__main__":
    main()
