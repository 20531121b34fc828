"""Benchmark: `gitops diff` of two revisions of a 1,000-object repository, beside `git diff` and
two `kubectl kustomize` runs (the least a diff of rendered objects must do) on the same repository.

Run: ``python tests/bench/bench_diff.py [--objects 1000] [--repeat 5]``

* Makes a git repository with one Kubernetes app, a plain directory of N objects (and again as a
  kustomize directory) (Deployments,
  Services, ConfigMaps and Secrets, 10 per file), commits it, changes 5 % of the objects (images,
  replicas, config values, a secret value), adds and removes a few, and commits again.
* Times, as fresh processes (median of ``--repeat``): ``gitops diff --base HEAD~1 --head HEAD``
  (the first run separately: it makes the cached work trees of both revisions), ``git diff
  HEAD~1 HEAD``, and two ``kubectl kustomize`` runs (of the two revisions' directories), when a
  kubectl is found (on PATH, or the one the test clusters build in ~/.cache/gitops-test).
* Prints the figures and writes ``tests/bench/results/diff.json``. It asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results"
PER_FILE = 10


def _object(i: int, version: int) -> str:
    changed = version == 2 and i % 20 == 0  # 5 % of the objects change
    kind = i % 4
    ns = f"team-{i % 7}"
    if kind == 0:
        return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}, namespace: {ns}, labels: {{app: app-{i}}}}}
spec:
  replicas: {3 if changed else 2}
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec:
      containers:
        - name: app
          image: example/app-{i}:{"1.1" if changed else "1.0"}
          ports: [{{containerPort: 8080, name: http}}]
          resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
"""
    if kind == 1:
        return f"""apiVersion: v1
kind: Service
metadata: {{name: app-{i}, namespace: {ns}}}
spec:
  selector: {{app: app-{i - 1}}}
  ports: [{{port: 80, targetPort: {8081 if changed else 8080}}}]
"""
    if kind == 2:
        return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: config-{i}, namespace: {ns}}}
data: {{LOG_LEVEL: {"debug" if changed else "info"}, NAME: config-{i}}}
"""
    return f"""apiVersion: v1
kind: Secret
metadata: {{name: secret-{i}, namespace: {ns}}}
type: Opaque
stringData: {{TOKEN: {"rotated" if changed else "initial"}-{i}}}
"""


def _write(root: Path, objects: int, version: int, kustomize: bool) -> None:
    app = root / "app"
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    indexes = [i for i in range(objects) if not (version == 2 and i % 100 == 7)]  # a few removed ...
    indexes += [objects + i for i in range(objects // 100)] if version == 2 else []  # ... and added
    files = []
    for start in range(0, len(indexes), PER_FILE):
        name = f"objects-{start // PER_FILE:04d}.yaml"
        (app / name).write_text("---\n".join(_object(i, version) for i in indexes[start:start + PER_FILE]))
        files.append(name)
    namespaces = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{n}}}\n" for n in range(7))
    (app / "namespaces.yaml").write_text(namespaces)
    if kustomize:
        (app / "kustomization.yaml").write_text("resources:\n" + "".join(f"  - {f}\n" for f in ["namespaces.yaml",
                                                                                                   *files]))
    (root / "gitops.yaml").write_text("version: 1\nkubernetes_version: \"1.35\"\napps:\n  - name: fleet\n"
                                      "    backend: kubernetes\n    paths: [app]\n    target: {namespace: default}\n")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                        "GIT_COMMITTER_EMAIL": "b@b"})


def _time(command: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def _kubectl() -> str | None:
    found = shutil.which("kubectl")
    if found:
        return found
    cached = sorted((Path.home() / ".cache" / "gitops-test").glob("bin/*/kubectl"))
    return str(cached[-1]) if cached else None


def _layout(tmp: Path, objects: int, repeat: int, kustomize: bool, kubectl: str | None) -> dict[str, Any]:
    """One repository (a plain directory, or a kustomize directory) diffed, with the comparisons."""
    root = tmp / ("kustomize" if kustomize else "plain")
    root.mkdir()
    env = {**os.environ, "GITOPS_CACHE_DIR": str(tmp / "cache"), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    _git(root, "init", "-q", "-b", "main")
    _write(root, objects, 1, kustomize)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    base_tree = tmp / f"base-{root.name}"
    shutil.copytree(root / "app", base_tree)
    _write(root, objects, 2, kustomize)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "head")
    command = [sys.executable, "-m", "gitops", "diff", "--base", "HEAD~1", "--head", "HEAD", "--detailed-exitcode",
               "--output", "json"]
    first, out = _time(command, root, env, ok=(2,))
    [app] = json.loads(out)["apps"]
    runs = [_time(command, root, env, ok=(2,))[0] for _ in range(repeat)]
    git_runs = [_time(["git", "diff", "HEAD~1", "HEAD"], root, env)[0] for _ in range(repeat)]
    kustomize_runs: list[float] = []
    if kubectl and kustomize:
        for _ in range(repeat):
            a, _ = _time([kubectl, "kustomize", str(base_tree)], root, env)
            b, _ = _time([kubectl, "kustomize", str(root / "app")], root, env)
            kustomize_runs.append(a + b)
    return {
        "layout": root.name, "changes": {k: app[k] for k in ("create", "update", "delete", "unchanged")},
        "gitops_diff_first_seconds": round(first, 3),
        "gitops_diff_seconds": round(statistics.median(runs), 3),
        "git_diff_seconds": round(statistics.median(git_runs), 4),
        "two_kubectl_kustomize_seconds": round(statistics.median(kustomize_runs), 3) if kustomize_runs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    kubectl = _kubectl()
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        layouts = [_layout(Path(tmp), options.objects, options.repeat, kustomize, kubectl)
                   for kustomize in (False, True)]
    result: dict[str, Any] = {"objects": options.objects, "layouts": layouts, "kubectl": kubectl,
                              "repeat": options.repeat, "python": platform.python_version(), "cpus": os.cpu_count(),
                              "load_average": os.getloadavg()[0]}
    print(f"gitops diff of two revisions of {options.objects} objects (load average {result['load_average']:.1f}):")
    for one in layouts:
        c = one["changes"]
        print(f"  {one['layout']} directory ({c['create']} created, {c['update']} updated, {c['delete']} deleted, "
              f"{c['unchanged']} unchanged):")
        print(f"    gitops diff, first (makes both work trees): {one['gitops_diff_first_seconds']:.2f} s")
        print(f"    gitops diff, median of {options.repeat}:              {one['gitops_diff_seconds']:.2f} s")
        print(f"    git diff HEAD~1 HEAD:                       {one['git_diff_seconds']:.3f} s")
        if one["layout"] == "kustomize":
            shown = one["two_kubectl_kustomize_seconds"]
            print("    two kubectl kustomize runs:                 "
                  + (f"{shown:.2f} s" if shown is not None else "(no kubectl found)"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "diff.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'diff.json'}")


if __name__ == "__main__":
    main()
