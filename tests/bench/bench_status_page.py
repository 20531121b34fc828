"""Benchmark: the status page's weight and server time, for a daemon with 50 apps.

    python tests/bench/bench_status_page.py [--apps 50] [--objects 40] [--releases 30] [--runs 200]

No cluster: a real :class:`gitops.daemon.loop.Daemon` whose per-app runtime is filled in by hand
(what its reconciles would have recorded: sync, health, revision, result, a plan with field
changes and each object's health), served by the real listener on loopback. Measures:

* ``/`` rendered by the view (``index_html``), and ``GET /`` over HTTP (the whole request, as a
  browser waits for it): p50/p95 server time;
* the bytes over the wire: the page, its CSS and JS (a first visit), and each refresh the page's
  JS makes (``GET /api/v1/apps``);
* ``/apps/NAME`` for an app of --objects objects with a plan touching each of them and
  --releases releases (the view, then over HTTP without the live read: no target here).

Targets (issue 9): under 200 ms server time and under 100 kB over the wire for 50 apps.
Prints a table and writes tests/bench/results/bench_status_page.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
RESULTS = HERE / "results"

from gitops import diff, engine  # noqa: E402
from gitops.daemon.http import Server, serve  # noqa: E402
from gitops.daemon.log import Log  # noqa: E402
from gitops.daemon.loop import AppRuntime, Daemon, Options  # noqa: E402
from gitops.daemon.metrics import Metrics  # noqa: E402
from gitops.model import Health, HealthStatus, ResourceKey  # noqa: E402
from gitops.model.plans import Action, AppPlan, Change  # noqa: E402
from gitops.model.releases import AppState, Outcome, Release  # noqa: E402
from gitops.views import pages  # noqa: E402

REPO_URL = "https://github.com/acme/platform.git"


def sha(i: int) -> str:
    return f"{i:08x}" * 5


def app_status(name: str, i: int, objects: int) -> engine.AppStatus:
    keys = [ResourceKey("apps", "Deployment", f"ns-{i}", f"{name}-{n}") for n in range(objects)]
    changes = tuple(
        Change(key, Action.UPDATE if n % 3 == 0 else Action.NOOP,
               fields=tuple(diff.fields({"spec": {"replicas": 2, "image": f"app:{n}"}},
                                        {"spec": {"replicas": 3, "image": f"app:{n + 1}"}})) if n % 3 == 0 else ())
        for n, key in enumerate(keys))
    plan = AppPlan(name, "kubernetes", f"https://kube.example:6443 ns-{i}", sha(i), "d", "b", changes)
    healths = {key: Health(HealthStatus.HEALTHY if n % 7 else HealthStatus.PROGRESSING,
                           "" if n % 7 else "1 of 3 replicas updated") for n, key in enumerate(keys)}
    return engine.AppStatus(name, "kubernetes", plan.target, sha(i), None,
                            "OutOfSync" if i % 5 == 0 else "Synced",
                            HealthStatus.HEALTHY if i % 9 else HealthStatus.DEGRADED,
                            changes=sum(1 for c in changes if c.action is not Action.NOOP),
                            plan=plan, objects=healths)


def daemon_with(apps: int, objects: int) -> Daemon:
    daemon = Daemon(Options(repo=REPO_URL), log=Log("json", stream=open("/dev/null", "w")))  # noqa: SIM115
    for i in range(apps):
        name = f"app-{i:02d}-{'payments' if i % 2 else 'storefront'}"
        failed = i % 11 == 0
        daemon.apps[name] = AppRuntime(
            name, backend="kubernetes" if i % 3 else "swarm", target=f"https://kube.example:6443 ns-{i}",
            sync="OutOfSync" if i % 5 == 0 else "Synced", health="Degraded" if failed else "Healthy",
            revision=sha(i), applied=sha(i + 1 if failed else i),
            result="rolled-back" if failed else "applied", last_reconcile="2026-12-02T03:00:00Z",
            message=(f"revision {sha(i)[:12]} rolled-back: Deployment/ns-{i}/web: CrashLoopBackOff: back-off "
                     "restarting failed container; waiting for a newer commit") if failed else "",
            problems=[f"Deployment/ns-{i}/web: 1 of 3 replicas unavailable"] if failed else [],
            status=app_status(name, i, 5))
    return daemon


def history(releases: int) -> AppState:
    out = tuple(Release(n + 1, sha(n), f"d{n}", Outcome.FAILED if n % 6 == 5 else Outcome.SUCCEEDED,
                        "2026-12-02T03:00:00Z", "2026-12-02T03:01:00Z", message="rollout of 12 object(s) done",
                        manifests="x") for n in range(releases))
    return AppState("big", out, tuple(r.revision for r in out if r.outcome is Outcome.FAILED))


def timed(runs: int, call: Any) -> tuple[float, float, Any]:
    samples = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], result


def get(port: int, path: str) -> tuple[int, bytes, int]:
    """Status, body, and the bytes on the wire (status line, headers and body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    head = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + sum(
        len(k) + len(v) + 4 for k, v in response.getheaders()) + 2
    conn.close()
    return response.status, body, head + len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--objects", type=int, default=40)
    parser.add_argument("--releases", type=int, default=30)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    daemon = daemon_with(args.apps, args.objects)
    big = next(iter(daemon.apps))
    daemon.apps[big].status = app_status(big, 0, args.objects)
    server = Server(("127.0.0.1", 0), daemon, branch_ref=None, webhook_secret=b"", api_token="",
                    log=daemon.log, metrics=Metrics(), repo=REPO_URL)
    serve(server)
    port = server.server_address[1]
    results: dict[str, Any] = {"apps": args.apps, "objects": args.objects, "releases": args.releases,
                               "runs": args.runs}
    try:
        snapshot = [pages.api_app(a, REPO_URL) for a in daemon.snapshot()]
        p50, p95, html = timed(args.runs, lambda: pages.index_html(
            [pages.api_app(a, REPO_URL) for a in daemon.snapshot()], repo=REPO_URL, access=pages.Access()))
        results["index_view_ms"] = {"p50": round(p50, 2), "p95": round(p95, 2)}
        p50, p95, answer = timed(args.runs, lambda: get(port, "/"))
        assert answer[0] == 200 and args.apps == answer[1].count(b"<tr data-app=")
        results["index_http_ms"] = {"p50": round(p50, 2), "p95": round(p95, 2)}
        css, js, api = get(port, "/static/status.css"), get(port, "/static/status.js"), get(port, "/api/v1/apps")
        results["bytes"] = {"index": answer[2], "css": css[2], "js": js[2],
                            "first_visit": answer[2] + css[2] + js[2], "each_refresh_api": api[2],
                            "index_html_only": len(html)}
        assert len(json.loads(api[1])["apps"]) == len(snapshot)

        status = daemon.apps[big].status
        assert status is not None
        state = history(args.releases)
        p50, p95, _ = timed(args.runs, lambda: pages.app_html(
            pages.api_app(daemon.apps[big].to_json(daemon.clock), REPO_URL), repo=REPO_URL, access=pages.Access(),
            objects=status.objects, plan=status.plan, history=state))
        results["app_view_ms"] = {"p50": round(p50, 2), "p95": round(p95, 2)}
        p50, p95, answer = timed(args.runs, lambda: get(port, f"/apps/{big}"))
        assert answer[0] == 200
        results["app_http_ms"] = {"p50": round(p50, 2), "p95": round(p95, 2)}
        results["bytes"]["app_page"] = answer[2]
    finally:
        server.shutdown()
        server.server_close()

    b = results["bytes"]
    ms = {k: results[k] for k in ("index_view_ms", "index_http_ms", "app_view_ms", "app_http_ms")}
    print(f"status page, {args.apps} apps ({args.runs} runs each; targets: < 200 ms server time, < 100 kB)")
    print(f"  /  view render      p50 {ms['index_view_ms']['p50']:7.2f} ms   p95 {ms['index_view_ms']['p95']:7.2f} ms")
    print(f"  GET /  over HTTP    p50 {ms['index_http_ms']['p50']:7.2f} ms   p95 {ms['index_http_ms']['p95']:7.2f} ms")
    print(f"  bytes: page {b['index'] / 1000:.1f} kB + css {b['css'] / 1000:.1f} kB + js {b['js'] / 1000:.1f} kB"
          f" = first visit {b['first_visit'] / 1000:.1f} kB;"
          f" each refresh (GET /api/v1/apps) {b['each_refresh_api'] / 1000:.1f} kB")
    print(f"  /apps/NAME ({args.objects} objects, {args.releases} releases):"
          f" view p50 {ms['app_view_ms']['p50']:.2f} ms,"
          f" HTTP p50 {ms['app_http_ms']['p50']:.2f} ms, {b['app_page'] / 1000:.1f} kB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_status_page.json"
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
