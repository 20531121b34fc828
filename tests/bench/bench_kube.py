"""Benchmark: gitops plan/apply against kubectl on the same control plane, side by side.

    python tests/bench/bench_kube.py [--objects 1000]

Needs the test control plane (`tests/clusters up --only kube`). Measures, for N objects
(ConfigMaps, Secrets, Services and Deployments with 0 replicas, in one namespace each tool):

* apply of N new objects: gitops (server-side apply, waves, state, rollout watch) vs
  `kubectl apply --server-side -f`;
* plan of N unchanged objects: gitops plan vs `kubectl diff -f`;
* plan with 10 changed objects: the same two;
* time from a crash-looping rollout to the start of the rollback (gitops only).

Each step runs in its own process, so the wall time includes start-up and the peak memory
(max RSS) is the step's own. Prints a table and writes JSON to tests/bench/results/bench_kube.json.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

RESULTS = HERE / "results"


def objects(namespace: str, count: int, changed: int = 0) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(count):
        kind = ("ConfigMap", "ConfigMap", "ConfigMap", "Secret", "Service", "Deployment")[i % 6]
        name = f"obj-{i:05d}"
        value = "changed" if kind == "ConfigMap" and i // 6 * 3 + i % 6 < changed else "v1"
        meta = {"name": name, "namespace": namespace, "labels": {"bench": "yes", "index": str(i)}}
        if kind == "ConfigMap":
            docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                         "data": {"value": value, "text": "x" * 200}})
        elif kind == "Secret":
            docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
                         "stringData": {"password": f"pw-{i}"}})
        elif kind == "Service":
            docs.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                         "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
        else:
            labels = {"app": name}
            docs.append({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {
                "replicas": 0, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                    "name": "app", "image": "gitops-test/app:1",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
    return docs


def write_yaml(docs: list[dict[str, Any]], path: Path) -> None:
    path.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")  # JSON documents are YAML


# -- steps run in a child process -------------------------------------------------------------

def step(args: argparse.Namespace) -> None:
    from kube_app import backend, resources

    from gitops import deploy

    docs = objects(args.namespace, args.objects, args.changed)
    kb = backend(args.kubeconfig, args.app, args.namespace, state_namespace=args.namespace)
    started = time.perf_counter()
    if args.step == "apply":
        stamps: dict[str, float] = {}
        result = deploy.apply_app(kb, resources(docs), f"rev-{args.changed}", deploy.Options(timeout=600),
                                  on_event=lambda e: stamps.setdefault(e["event"], time.perf_counter()))
        ok = result.outcome in ("applied", "no-op")
        detail = {"outcome": result.outcome, "writes": kb.client.writes}
        if "rollout" in stamps:
            detail["seconds_applying"] = round(stamps["rollout"] - stamps["apply"], 3)
            detail["seconds_watching_rollout"] = round(stamps["done"] - stamps["rollout"], 3)
    else:
        plan, _ = deploy.plan_app(kb, resources(docs), f"rev-{args.changed}")
        changed = sum(1 for c in plan.changes if c.action.value != "no-op")
        ok = True
        detail = {"changes": changed}
    detail["seconds_in_process"] = round(time.perf_counter() - started, 3)
    print(json.dumps({"ok": ok, **detail}))


def timed(argv: list[str]) -> tuple[float, float, str, int]:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"{argv[:3]} failed ({code}): {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out, code


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--step")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--app")
    parser.add_argument("--namespace")
    parser.add_argument("--changed", type=int, default=0)
    args = parser.parse_args()
    if args.step:
        step(args)
        return 0

    from harness import build, kube

    kube.up()
    kubectl = str(build.binaries()["kubectl"])
    kubeconfig = str(kube.kubeconfig_path())
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    os.environ["KUBECONFIG"] = kubeconfig
    suffix = uuid.uuid4().hex[:6]
    ns_ours, ns_kubectl = f"bench-gitops-{suffix}", f"bench-kubectl-{suffix}"
    app = f"bench-{suffix}"
    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    n = args.objects
    for ns in (ns_ours, ns_kubectl):
        subprocess.run([kubectl, "create", "namespace", ns], check=True, capture_output=True, env=env)
    base = work / "kubectl.yaml"
    write_yaml(objects(ns_kubectl, n), base)
    changed_file = work / "kubectl-changed.yaml"
    write_yaml(objects(ns_kubectl, n, changed=10), changed_file)

    def gitops_step(what: str, changed: int = 0) -> dict[str, Any]:
        argv = [sys.executable, __file__, "--step", what, "--kubeconfig", kubeconfig, "--app", app,
                "--namespace", ns_ours, "--objects", str(n), "--changed", str(changed)]
        seconds, rss, out, _ = timed(argv)
        return {"seconds": round(seconds, 3), "peak_rss_mib": round(rss, 1), **json.loads(out.strip().splitlines()[-1])}

    def kubectl_step(*argv: str) -> dict[str, Any]:
        seconds, rss, out, code = timed([kubectl, *argv])
        return {"seconds": round(seconds, 3), "peak_rss_mib": round(rss, 1), "exit": code,
                "changed_objects": out.count("\ndiff -u") + out.startswith("diff -u")}

    rows: dict[str, dict[str, Any]] = {}
    try:
        rows["apply_new"] = {
            "gitops": gitops_step("apply"),
            "kubectl": kubectl_step("apply", "--server-side", "--field-manager=bench", "-f", str(base)),
        }
        # gitops waits for the rollout; kubectl apply does not. The same wait, done with kubectl:
        waited = kubectl_step("wait", "--for=condition=Available=True", "deployment", "-l", "bench=yes",
                              "-n", ns_kubectl, "--timeout=600s")
        rows["apply_new"]["kubectl_apply_then_wait"] = {
            "seconds": round(rows["apply_new"]["kubectl"]["seconds"] + waited["seconds"], 3),
            "peak_rss_mib": max(rows["apply_new"]["kubectl"]["peak_rss_mib"], waited["peak_rss_mib"]),
        }
        rows["plan_unchanged"] = {
            "gitops": gitops_step("plan"),
            "kubectl": kubectl_step("diff", "--server-side", "--field-manager=bench", "-f", str(base)),
        }
        rows["plan_10_changed"] = {
            "gitops": gitops_step("plan", changed=10),
            "kubectl": kubectl_step("diff", "--server-side", "--field-manager=bench", "-f", str(changed_file)),
        }
        rows["apply_noop"] = {"gitops": gitops_step("apply")}
        rows["rollback"] = {"gitops": rollback_latency(kubeconfig, f"{app}-rb", ns_ours)}
    finally:
        for ns in (ns_ours, ns_kubectl):
            subprocess.run([kubectl, "delete", "namespace", ns, "--wait=false"], capture_output=True, env=env)

    report = {"objects": n, "kubernetes": kube.api_url(), "results": rows}
    for name, row in rows.items():
        for who in ("gitops", "kubectl"):
            if who in row and "gitops" in row and who != "gitops":
                row["speedup_gitops_vs_kubectl"] = round(row["kubectl"]["seconds"] / row["gitops"]["seconds"], 2)
        line = "  ".join(f"{who}: {v['seconds']:.2f}s ({v.get('peak_rss_mib')} MiB)" for who, v in row.items()
                         if isinstance(v, dict) and "seconds" in v)
        if name == "apply_new":
            line += (f"  [gitops applying {row['gitops'].get('seconds_applying')}s, "
                     f"watching the rollout {row['gitops'].get('seconds_watching_rollout')}s]")
        if name == "rollback":
            line = json.dumps(row["gitops"])
        extra = f"  speed-up x{row['speedup_gitops_vs_kubectl']}" if "speedup_gitops_vs_kubectl" in row else ""
        print(f"{name:<16} {line}{extra}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_kube.json").write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS / 'bench_kube.json'}")
    return 0


def rollback_latency(kubeconfig: str, app: str, namespace: str) -> dict[str, Any]:
    """Seconds from the start of a crash-looping rollout to the start of the rollback."""
    from kube_app import app_docs, backend, resources

    from gitops import deploy

    kb = backend(kubeconfig, app, namespace, state_namespace=namespace)
    docs = [d for d in app_docs(namespace) if d["kind"] != "Ingress"]
    for d in docs:
        d["metadata"]["name"] = f"rb-{d['metadata']['name']}"
    deploy.apply_app(kb, resources(docs), "good", deploy.Options(timeout=120))
    bad = json.loads(json.dumps(docs).replace("gitops-test/app:1", "gitops-test/crash:1"))
    stamps: dict[str, float] = {}
    result = deploy.apply_app(kb, resources(bad), "bad", deploy.Options(timeout=300),
                              on_event=lambda e: stamps.setdefault(e["event"], time.perf_counter()))
    return {"outcome": result.outcome,
            "seconds_to_rollback_start": round(stamps["rollback"] - stamps["rollout"], 2),
            "seconds_total": round(stamps.get("done", time.perf_counter()) - stamps["apply"], 2)}


if __name__ == "__main__":
    sys.exit(main())
