"""Benchmark: `gitops diff` of two revisions of a 1,000-object repository, beside `git diff` and
two `kubectl kustomize` runs (the least a diff of rendered objects must do) on the same repository.

Run: ``python tests/bench/bench_diff.py [--objects 1000] [--repeat 5] [--apps 10]``

* Makes a git repository with one Kubernetes app, a plain directory of N objects (and again as a
  kustomize directory) (Deployments,
  Services, ConfigMaps and Secrets, 10 per file), commits it, changes 5 % of the objects (images,
  replicas, config values, a secret value), adds and removes a few, and commits again.
* And a third repository: the same N objects as ``--apps`` kustomize apps (N / apps objects each),
  where only the first app changes (as above): the other apps' inputs are the same at both
  commits. Its kubectl figure is a ``kubectl kustomize`` of every app at both revisions.
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


def _write(root: Path, objects: int, version: int, kustomize: bool, apps: int = 0) -> None:
    if apps:
        per_app = objects // apps
        for a in range(apps):
            _write_app(root / f"app-{a:02d}", range(a * per_app, (a + 1) * per_app), version if a == 0 else 1,
                       True, objects, namespaces=a == 0)
        (root / "gitops.yaml").write_text("version: 1\nkubernetes_version: \"1.35\"\napps:\n" + "".join(
            f"  - name: fleet-{a:02d}\n    backend: kubernetes\n    paths: [app-{a:02d}]\n"
            f"    target: {{namespace: default}}\n" for a in range(apps)))
        return
    _write_app(root / "app", range(objects), version, kustomize, objects)
    (root / "gitops.yaml").write_text("version: 1\nkubernetes_version: \"1.35\"\napps:\n  - name: fleet\n"
                                      "    backend: kubernetes\n    paths: [app]\n    target: {namespace: default}\n")


def _write_app(app: Path, numbers: range, version: int, kustomize: bool, added_from: int,
               namespaces: bool = True) -> None:
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    indexes = [i for i in numbers if not (version == 2 and i % 100 == 7)]  # a few removed ...
    indexes += [added_from + i for i in range(len(numbers) // 100)] if version == 2 else []  # ... and added
    files = []
    for start in range(0, len(indexes), PER_FILE):
        name = f"objects-{start // PER_FILE:04d}.yaml"
        (app / name).write_text("---\n".join(_object(i, version) for i in indexes[start:start + PER_FILE]))
        files.append(name)
    if namespaces:
        text = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{n}}}\n" for n in range(7))
        (app / "namespaces.yaml").write_text(text)
        files.insert(0, "namespaces.yaml")
    if kustomize:
        (app / "kustomization.yaml").write_text("resources:\n" + "".join(f"  - {f}\n" for f in files))


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


def _layout(tmp: Path, objects: int, repeat: int, kustomize: bool, kubectl: str | None,
            apps: int = 0) -> dict[str, Any]:
    """One repository (a plain directory, a kustomize directory, or ``apps`` kustomize apps)
    diffed, with the comparisons."""
    root = tmp / (f"{apps}-apps" if apps else "kustomize" if kustomize else "plain")
    root.mkdir()
    env = {**os.environ, "GITOPS_CACHE_DIR": str(tmp / "cache"), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    _git(root, "init", "-q", "-b", "main")
    _write(root, objects, 1, kustomize, apps)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    base_tree = tmp / f"base-{root.name}"
    dirs = [f"app-{a:02d}" for a in range(apps)] if apps else ["app"]
    for name in dirs:
        shutil.copytree(root / name, base_tree / name)
    _write(root, objects, 2, kustomize, apps)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "head")
    command = [sys.executable, "-m", "gitops", "diff", "--base", "HEAD~1", "--head", "HEAD", "--detailed-exitcode",
               "--output", "json"]
    first, out = _time(command, root, env, ok=(2,))
    found = json.loads(out)["apps"]
    runs = [_time(command, root, env, ok=(2,))[0] for _ in range(repeat)]
    git_runs = [_time(["git", "diff", "HEAD~1", "HEAD"], root, env)[0] for _ in range(repeat)]
    kustomize_runs: list[float] = []
    if kubectl and (kustomize or apps):
        for _ in range(repeat):
            took = 0.0
            for name in dirs:
                took += _time([kubectl, "kustomize", str(base_tree / name)], root, env)[0]
                took += _time([kubectl, "kustomize", str(root / name)], root, env)[0]
            kustomize_runs.append(took)
    return {
        "layout": root.name, "apps": len(found),
        "changes": {k: sum(app[k] for app in found) for k in ("create", "update", "delete", "unchanged")},
        "gitops_diff_first_seconds": round(first, 3),
        "gitops_diff_seconds": round(statistics.median(runs), 3),
        "git_diff_seconds": round(statistics.median(git_runs), 4),
        "two_kubectl_kustomize_seconds": round(statistics.median(kustomize_runs), 3) if kustomize_runs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--apps", type=int, default=10, help="apps of the third repository (0: none)")
    options = parser.parse_args()
    kubectl = _kubectl()
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        layouts = [_layout(Path(tmp), options.objects, options.repeat, kustomize, kubectl)
                   for kustomize in (False, True)]
        if options.apps:
            layouts.append(_layout(Path(tmp), options.objects, options.repeat, True, kubectl, options.apps))
    result: dict[str, Any] = {"objects": options.objects, "layouts": layouts, "kubectl": kubectl,
                              "repeat": options.repeat, "python": platform.python_version(), "cpus": os.cpu_count(),
                              "load_average": os.getloadavg()[0]}
    print(f"gitops diff of two revisions of {options.objects} objects (load average {result['load_average']:.1f}):")
    for one in layouts:
        c = one["changes"]
        what = f"{one['apps']} kustomize apps, one changed" if one["apps"] > 1 else f"{one['layout']} directory"
        print(f"  {what} ({c['create']} created, {c['update']} updated, {c['delete']} deleted, "
              f"{c['unchanged']} unchanged):")
        print(f"    gitops diff, first (makes both work trees): {one['gitops_diff_first_seconds']:.2f} s")
        print(f"    gitops diff, median of {options.repeat}:              {one['gitops_diff_seconds']:.2f} s")
        print(f"    git diff HEAD~1 HEAD:                       {one['git_diff_seconds']:.3f} s")
        if one["layout"] != "plain":
            shown = one["two_kubectl_kustomize_seconds"]
            label = "two kubectl kustomize runs:" if one["apps"] == 1 else "kubectl kustomize of each app, twice:"
            print(f"    {label:44s}" + (f"{shown:.2f} s" if shown is not None else "(no kubectl found)"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "diff.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'diff.json'}")


if __name__ == "__main__":
    main()
