"""Benchmark: render + validate of a Helm chart (`gitops validate`) against `helm template` alone.

    python tests/bench/bench_helm.py [--repeat 5] [--objects 500]

Charts: the example chart (examples/helm), the upstream podinfo chart (shared corpora, when present)
and a generated chart of --objects ConfigMaps and Deployments; and the example chart from a chart
repository served on loopback, rendered with an empty chart cache (index and archive downloaded)
and with a warm one (no request: the `requests` column counts what the server was asked). For each, both commands run
--repeat times as separate processes; the table gives the median wall time and the peak RSS of
the process (for `gitops validate` that is the Python process; helm runs as its child; the floor
is this script's own RSS, about 30 MiB, which a forked child starts from). The helm
binary is the one on PATH, else the harness's (built when missing). Prints a table and writes
tests/bench/results/bench_helm.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
RESULTS = HERE / "results"

from harness import build  # noqa: E402
from testsupport import CORPORA  # noqa: E402


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return seconds, usage.ru_maxrss


def generated_chart(target: Path, objects: int) -> None:
    (target / "templates").mkdir(parents=True)
    (target / "Chart.yaml").write_text("apiVersion: v2\nname: many\nversion: 0.1.0\n")
    (target / "values.yaml").write_text(f"count: {objects // 2}\nimage: ghcr.io/stefanprodan/podinfo:6.7.1\n")
    (target / "templates" / "many.yaml").write_text("""{{- range $i := until (int .Values.count) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-{{ $i }}
data:
  INDEX: {{ $i | quote }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{{ $i }}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-{{ $i }}}}
  template:
    metadata: {labels: {app: app-{{ $i }}}}
    spec:
      containers:
        - name: app
          image: {{ $.Values.image }}
          envFrom: [{configMapRef: {name: config-{{ $i }}}}]
{{- end }}
""")


def repository_rows(helm: str, scratch: Path, repeat: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """`gitops validate` of the example chart from a loopback chart repository: cold and cached."""
    served = scratch / "served"
    served.mkdir()
    subprocess.run([helm, "package", str(REPO / "examples" / "helm" / "charts" / "web"), "--destination",
                    str(served)], check=True, capture_output=True)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *_: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([helm, "repo", "index", str(served), "--url", url], check=True, capture_output=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = scratch / "repository"
    root.mkdir()
    (root / "gitops.yaml").write_text(
        "version: 1\nkubernetes_version: \"1.35\"\napps:\n"
        f"  - {{name: bench, backend: kubernetes, helm: {{chart: web, repo: '{url}', version: 0.1.0, "
        "release: bench}, target: {namespace: bench}}\n")
    cache = scratch / "cache"
    run_env = {**env, "GITOPS_CACHE_DIR": str(cache)}
    validate = [sys.executable, "-m", "gitops", "validate"]
    rows = []
    try:
        for what, cold in (("validate, no cache", True), ("validate, cached", False)):
            samples, asked = [], 0
            for _ in range(repeat):
                if cold:
                    shutil.rmtree(cache, ignore_errors=True)
                requests.clear()
                samples.append(measure(validate, root, run_env))
                asked += len(requests)
            rows.append({"chart": "repository", "command": what, "repeat": repeat,
                         "median_seconds": round(statistics.median(s for s, _ in samples), 4),
                         "min_seconds": round(min(s for s, _ in samples), 4),
                         "peak_rss_mib": round(max(r for _, r in samples) / 1024, 1),
                         "requests": asked / repeat})
    finally:
        server.shutdown()
        server.server_close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--objects", type=int, default=500)
    args = parser.parse_args()
    helm = str(build.helm())
    env = {**os.environ, "GITOPS_HELM": helm, "PYTHONPATH": str(REPO)}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-helm-") as scratch:
        charts: list[tuple[str, Path]] = [("example", REPO / "examples" / "helm" / "charts" / "web")]
        podinfo = CORPORA / "podinfo" / "charts" / "podinfo"
        if podinfo.is_dir():
            charts.append(("podinfo", podinfo))
        else:
            print(f"(no podinfo chart at {podinfo}: skipped)")
        many = Path(scratch) / "many-src"
        generated_chart(many, args.objects)
        charts.append((f"generated-{args.objects}", many))
        for name, chart in charts:
            root = Path(scratch) / name
            shutil.copytree(chart, root / "chart")
            (root / "gitops.yaml").write_text(
                "version: 1\nkubernetes_version: \"1.35\"\napps:\n"
                "  - {name: bench, backend: kubernetes, helm: {chart: chart, release: bench},\n"
                "     target: {namespace: bench}}\n")
            template = [helm, "template", "bench", str(root / "chart"), "--namespace", "bench", "--include-crds",
                        "--kube-version", "1.35"]
            validate = [sys.executable, "-m", "gitops", "validate"]
            runs = {"helm template": [measure(template, root, env) for _ in range(args.repeat)],
                    "gitops validate": [measure(validate, root, env) for _ in range(args.repeat)]}
            for what, samples in runs.items():
                rows.append({"chart": name, "command": what, "repeat": args.repeat,
                             "median_seconds": round(statistics.median(s for s, _ in samples), 4),
                             "min_seconds": round(min(s for s, _ in samples), 4),
                             "peak_rss_mib": round(max(r for _, r in samples) / 1024, 1)})
        rows.extend(repository_rows(helm, Path(scratch), args.repeat, env))
    print(f"{'chart':<16} {'command':<20} {'median s':>9} {'min s':>8} {'peak RSS MiB':>13} {'requests':>9}")
    for row in rows:
        print(f"{row['chart']:<16} {row['command']:<20} {row['median_seconds']:>9.3f} {row['min_seconds']:>8.3f} "
              f"{row['peak_rss_mib']:>13.1f} {row.get('requests', ''):>9}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_helm.json"
    out.write_text(json.dumps({"helm": helm, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
