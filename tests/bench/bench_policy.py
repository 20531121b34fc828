"""Benchmark: what the policy rules add to `gitops validate`, and kube-score on the same objects.

Run: ``python tests/bench/bench_policy.py [--objects 10000] [--repeat 5] [--cache DIR]``

* The 10,000 varied Kubernetes objects of ``bench_validate.py`` (its generator), in one file.
* ``gitops validate`` with the policy rules and with ``--no-policy``, as fresh processes, in turns
  (so a shared machine's load weighs on both alike), several times: median wall time, peak RSS,
  and the overhead of the rules in percent (the goal is < 25 %), from the medians and from the
  fastest runs. In this process too (``engine.validate`` with and without, no start-up), and
  ``policy.check`` alone with its findings.
* kube-score (``github.com/zegl/kube-score/cmd/kube-score``, built from its Go module with
  ``bench_validate.build_go_tool``) scoring the same file: wall time and peak RSS.

Prints the figures and writes ``tests/bench/results/policy.json``. It asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_validate import KUBERNETES_VERSION, ROOT, build_go_tool, generate, measure

RESULTS = ROOT / "tests" / "bench" / "results"
KUBE_SCORE_MODULE = "github.com/zegl/kube-score/cmd/kube-score"
KUBE_SCORE_VERSION = "v1.20.0"


def gitops_command(target: Path, policy: bool) -> list[str]:
    command = [sys.executable, "-m", "gitops", "validate", str(target), "--kubernetes-version", KUBERNETES_VERSION]
    return command + ([] if policy else ["--no-policy"])


def alternating(commands: list[list[str]], repeat: int) -> list[dict[str, Any]]:
    """``measure`` of each command, run in turns (a b a b ...), so that the load of a shared
    machine weighs on both alike; the same figures as ``measure`` gives."""
    runs: list[list[dict[str, Any]]] = [[] for _ in commands]
    for _ in range(repeat):
        for index, command in enumerate(commands):
            runs[index].append(measure(command, 1))
    out = []
    for entries in runs:
        times = [t for e in entries for t in e["seconds_all"]]
        out.append({"seconds_median": round(statistics.median(times), 3), "seconds_min": min(times),
                    "seconds_all": times,
                    "peak_rss_mib": max(e["peak_rss_mib"] for e in entries), "tail": entries[-1]["tail"]})
    return out


def in_process(target: Path, repeat: int) -> dict[str, Any]:
    """In this process: ``engine.validate`` with and without the rules (in turns, the fastest of
    ``repeat`` runs each, no process start-up in the figure), the rules' own time, what they found."""
    sys.path.insert(0, str(ROOT))
    from gitops import engine, render
    from gitops.model.policies import PolicySettings
    from gitops.validate import policy

    best = {False: float("inf"), True: float("inf")}
    for _ in range(repeat):
        for with_rules in (False, True):
            began = time.perf_counter()
            engine.validate([str(target)], kubernetes_version=KUBERNETES_VERSION, env={}, policy=with_rules)
            best[with_rules] = min(best[with_rules], time.perf_counter() - began)

    renderer = render.Renderer(target.parent, env={}, keep_sources=False)
    renderer.add_path(target)
    started = time.perf_counter()
    found = policy.check(renderer.result, PolicySettings())
    seconds = time.perf_counter() - started
    return {
        "validate_seconds_no_policy": round(best[False], 3),
        "validate_seconds_policy": round(best[True], 3),
        "overhead_percent": round(100 * (best[True] / best[False] - 1), 1),
        "objects": len(renderer.result.manifests),
        "policy_check_seconds": round(seconds, 3),
        "findings": len(found),
        "findings_by_rule": dict(sorted(Counter(d.code for d in found).items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitops-bench")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "benchmark": "policy",
        "objects": args.objects,
        "kubernetes_version": KUBERNETES_VERSION,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory(prefix="gitops-bench-policy-") as tmp:
        single, _ = generate(Path(tmp), args.objects, 1)
        without, with_policy = alternating([gitops_command(single, False), gitops_command(single, True)],
                                           args.repeat)
        results["gitops_no_policy"] = without
        results["gitops_policy"] = with_policy
        results["policy_overhead_percent"] = round(
            100 * (with_policy["seconds_median"] / without["seconds_median"] - 1), 1
        )
        # the least disturbed run of each: on a shared machine the medians move with the load
        results["policy_overhead_percent_min"] = round(
            100 * (with_policy["seconds_min"] / without["seconds_min"] - 1), 1
        )
        results["in_process"] = in_process(single, args.repeat)
        kube_score = build_go_tool(args.cache, KUBE_SCORE_MODULE, KUBE_SCORE_VERSION)
        results["kube_score"] = None
        if kube_score is not None:
            results["kube_score"] = {
                "module": KUBE_SCORE_MODULE, "version": KUBE_SCORE_VERSION,
                **measure([str(kube_score), "score", "--output-format", "ci", str(single)], args.repeat),
            }
    for key in ("gitops_no_policy", "gitops_policy", "kube_score"):
        entry = results.get(key)
        if entry:
            entry["tail"] = entry["tail"][-200:]

    print(f"{args.objects} objects in one file, median of {args.repeat} fresh processes:")
    print(f"  gitops validate --no-policy  {without['seconds_median']:.2f}s (min {without['seconds_min']:.2f}s)  "
          f"({without['peak_rss_mib']} MiB)")
    print(f"  gitops validate (policy)     {with_policy['seconds_median']:.2f}s "
          f"(min {with_policy['seconds_min']:.2f}s)  ({with_policy['peak_rss_mib']} MiB)")
    print(f"  -> the rules add {results['policy_overhead_percent']} % (medians), "
          f"{results['policy_overhead_percent_min']} % (fastest runs)")
    inside = results["in_process"]
    print(f"  in process, fastest runs     {inside['validate_seconds_no_policy']:.2f}s without the rules, "
          f"{inside['validate_seconds_policy']:.2f}s with them -> {inside['overhead_percent']} %")
    print(f"  policy.check alone           {inside['policy_check_seconds']:.2f}s, {inside['findings']} findings "
          f"over {inside['objects']} objects")
    if results["kube_score"]:
        score = results["kube_score"]
        print(f"  kube-score {KUBE_SCORE_VERSION} score         {score['seconds_median']:.2f}s  "
              f"({score['peak_rss_mib']} MiB)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "policy.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
