"""Applies N ConfigMaps as one app, slowly, printing a line per change (killed by a test)."""

from __future__ import annotations

import sys
import time
from typing import Any

from kube_app import backend, resources

from gitops import deploy


def main() -> int:
    kubeconfig, app, namespace, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:03d}", "namespace": namespace},
             "data": {"i": str(i)}} for i in range(count)]

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "change":
            print("change", event["object"], flush=True)
            time.sleep(0.05)

    kb = backend(kubeconfig, app, namespace, state_namespace=namespace)
    result = deploy.apply_app(kb, resources(docs), "many", deploy.Options(lock_ttl=3, lock_wait=60, timeout=60),
                              on_event=on_event)
    print("outcome", result.outcome, result.error, flush=True)
    return 0 if result.outcome == "applied" else 1


if __name__ == "__main__":
    sys.exit(main())
