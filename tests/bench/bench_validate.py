"""Benchmark: `gitops validate` against kubeconform on the same objects and the same schemas.

Run: ``python tests/bench/bench_validate.py [--objects 10000] [--files 1000] [--repeat 3]``

* Generates 10,000 varied Kubernetes objects (12 kinds) as one multi-document file, and the same
  objects spread over a directory of 1,000 files.
* Builds kubeconform from its Go module (``go install github.com/yannh/kubeconform/cmd/kubeconform``)
  into a cache, and gives it the schemas gitops uses (the ``kubernetes-validate`` package's
  Kubernetes 1.35 set), with ``$ref``s rewritten to relative file references so it reads them
  offline.
* Runs both as fresh processes, several times, and prints wall time (median), peak memory (max
  RSS of the process) and the ratio ours/kubeconform. Writes ``tests/bench/results/validate.json``.

It asserts nothing about time.
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
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
KUBECONFORM_VERSION = "v0.8.0"
KUBERNETES_VERSION = "1.35"


def _objects(i: int) -> str:
    ns = f"team-{i % 17}"
    kinds = [
        f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  namespace: {ns}
  labels: {{app: web-{i}, tier: frontend}}
spec:
  replicas: {i % 5 + 1}
  selector:
    matchLabels: {{app: web-{i}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata:
      labels: {{app: web-{i}}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.{i % 20}
          ports: [{{containerPort: 8080, name: http}}]
          env:
            - {{name: MODE, value: prod}}
            - name: TOKEN
              valueFrom: {{secretKeyRef: {{name: sec-{i}, key: token}}}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: "1", memory: 256Mi}}
          readinessProbe: {{httpGet: {{path: /readyz, port: http}}, periodSeconds: 5}}
          livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
""",
        f"""apiVersion: v1
kind: Service
metadata: {{name: svc-{i}, namespace: {ns}}}
spec:
  selector: {{app: web-{i}}}
  ports: [{{port: 80, targetPort: http, protocol: TCP}}]
""",
        f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: cm-{i}, namespace: {ns}}}
data: {{key: value-{i}, other: "x", level: debug}}
""",
        f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing-{i}, namespace: {ns}}}
spec:
  rules:
    - host: h{i}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}
""",
        f"""apiVersion: batch/v1
kind: CronJob
metadata: {{name: cj-{i}, namespace: {ns}}}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: job, image: busybox, args: [sh, -c, "echo {i}"]}}]
""",
        f"""apiVersion: v1
kind: Secret
metadata: {{name: sec-{i}, namespace: {ns}}}
type: Opaque
stringData: {{token: t{i}}}
""",
        f"""apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db-{i}, namespace: {ns}}}
spec:
  serviceName: db-{i}
  replicas: 1
  selector: {{matchLabels: {{app: db-{i}}}}}
  template:
    metadata: {{labels: {{app: db-{i}}}}}
    spec:
      containers: [{{name: db, image: postgres:16, ports: [{{containerPort: 5432}}]}}]
  volumeClaimTemplates:
    - metadata: {{name: data}}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {{requests: {{storage: 1Gi}}}}
""",
        f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: hpa-{i}, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web-{i}}}
  minReplicas: 2
  maxReplicas: 4
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}}}]
""",
        f"""apiVersion: v1
kind: ServiceAccount
metadata: {{name: sa-{i}, namespace: {ns}}}
""",
        f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: role-{i}, namespace: {ns}}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}]
""",
        f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb-{i}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{i}}}
subjects: [{{kind: ServiceAccount, name: sa-{i}, namespace: {ns}}}]
""",
        f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: pdb-{i}, namespace: {ns}}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: web-{i}}}}}
""",
    ]
    return kinds[i % len(kinds)]


def generate(workdir: Path, objects: int, files: int) -> tuple[Path, Path]:
    documents = [_objects(i) for i in range(objects)]
    single = workdir / "objects.yaml"
    single.write_text("---\n".join(documents))
    directory = workdir / "objects"
    directory.mkdir()
    per_file = max(1, objects // files)
    for index in range(files):
        chunk = documents[index * per_file : (index + 1) * per_file]
        (directory / f"part-{index:04d}.yaml").write_text("---\n".join(chunk))
    return single, directory


def kubernetes_validate_schemas() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("kubernetes_validate")
    assert spec is not None and spec.submodule_search_locations
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    return base / f"v{KUBERNETES_VERSION}.0-local"


def schemas_for_kubeconform(target: Path) -> Path:
    """The same schema files, with absolute ``/api/_definitions.json`` refs made relative."""
    source = kubernetes_validate_schemas()
    target.mkdir(parents=True, exist_ok=True)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$id":
                    continue
                if key == "$ref" and isinstance(value, str) and value.startswith("/api/"):
                    value = value[len("/api/") :]
                out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for path in source.glob("*.json"):
        (target / path.name).write_text(json.dumps(rewrite(json.loads(path.read_text()))))
    return target


def build_go_tool(cache: Path, module: str, version: str) -> Path | None:
    """``go install module@version`` into ``cache/bin/<version>`` (once); None without Go."""
    name = module.rstrip("/").rsplit("/", 1)[-1]
    binary = cache / "bin" / version / name
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        print(f"go is not installed: {name} is not built, only gitops is measured", file=sys.stderr)
        return None
    env = dict(os.environ, GOBIN=str(binary.parent), GOFLAGS="-mod=mod")
    print(f"building {name} {version} from its Go module...", file=sys.stderr)
    subprocess.run([go, "install", f"{module}@{version}"], check=True, env=env)
    return binary


def build_kubeconform(cache: Path) -> Path | None:
    return build_go_tool(cache, KUBECONFORM_MODULE, KUBECONFORM_VERSION)


def measure(command: list[str], repeat: int) -> dict[str, Any]:
    """Median wall time and max peak RSS of ``repeat`` fresh runs of ``command``."""
    times: list[float] = []
    peaks: list[int] = []
    output = b""
    for _ in range(repeat):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        output = process.stdout.read()
        _, _, usage = os.wait4(process.pid, 0)  # reaps the child and gives its own peak RSS
        process.returncode = 0
        times.append(time.perf_counter() - started)
        peaks.append(usage.ru_maxrss)  # KiB on Linux
    return {
        "seconds_median": round(statistics.median(times), 3),
        "seconds_all": [round(t, 3) for t in times],
        "peak_rss_mib": round(max(peaks) / 1024, 1),
        "tail": output.decode("utf-8", "replace")[-300:],
    }


def run_gitops(target: Path, repeat: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "gitops", "validate", str(target), "--kubernetes-version", KUBERNETES_VERSION]
    return measure(command, repeat)


def in_process_breakdown(target: Path) -> dict[str, float]:
    """Where our time goes (one in-process run): read+parse, and validation."""
    sys.path.insert(0, str(ROOT))
    from gitops import render
    from gitops import validate as validate_stage

    started = time.perf_counter()
    renderer = render.Renderer(target.parent if target.is_file() else target, env={})
    renderer.add_path(target)
    parsed = time.perf_counter()
    store = validate_stage.SchemaStore(KUBERNETES_VERSION)
    diagnostics, counts = validate_stage.run(renderer.result, store, target.parent, validate_stage.Options())
    validated = time.perf_counter()
    return {
        "objects": counts.objects,
        "errors": sum(1 for d in diagnostics if str(d.severity) == "error"),
        "parse_seconds": round(parsed - started, 3),
        "validate_seconds": round(validated - parsed, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitops-bench")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "benchmark": "validate",
        "objects": args.objects,
        "files": args.files,
        "kubernetes_version": KUBERNETES_VERSION,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="gitops-bench-") as tmp:
        workdir = Path(tmp)
        single, directory = generate(workdir, args.objects, args.files)
        kubeconform = build_kubeconform(args.cache)
        schemas = schemas_for_kubeconform(workdir / "schemas") if kubeconform else None
        results["kubeconform"] = {"module": KUBECONFORM_MODULE, "version": KUBECONFORM_VERSION} if kubeconform else None
        for case, target in (("single_file", single), ("directory", directory)):
            entry: dict[str, Any] = {"target": target.name, "gitops": run_gitops(target, args.repeat)}
            entry["gitops_breakdown"] = in_process_breakdown(target)
            if kubeconform and schemas:
                command = [
                    str(kubeconform), "-summary", "-schema-location",
                    f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json", str(target),
                ]  # fmt: skip
                entry["kubeconform"] = measure(command, args.repeat)
                entry["ratio_gitops_to_kubeconform"] = round(
                    entry["gitops"]["seconds_median"] / entry["kubeconform"]["seconds_median"], 2
                )
            results["cases"][case] = entry
            line = f"{case:12s} gitops {entry['gitops']['seconds_median']:.2f}s ({entry['gitops']['peak_rss_mib']} MiB)"
            if "kubeconform" in entry:
                line += (
                    f" | kubeconform {entry['kubeconform']['seconds_median']:.2f}s "
                    f"({entry['kubeconform']['peak_rss_mib']} MiB) | ratio {entry['ratio_gitops_to_kubeconform']}"
                )
            print(line)
            print(f"{'':12s} gitops in-process: {entry['gitops_breakdown']}")
            print(f"{'':12s} gitops says: {entry['gitops']['tail'].strip().splitlines()[-1]}")
            if "kubeconform" in entry:
                print(f"{'':12s} kubeconform says: {entry['kubeconform']['tail'].strip().splitlines()[-1]}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "validate.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
