"""Re-capture the fixtures marked "captured from the test cluster" in this directory.

Not a test: run it by hand against the test control plane when the fixtures should be refreshed
(for example after a Kubernetes upgrade), then review the diff:

    eval "$(tests/clusters env --only kube)"
    .venv/bin/python tests/unit/data/kube_health/capture.py

It creates the objects in a scratch namespace (``kube-health``), waits for each state, writes the
objects as the API returns them with managedFields, uids and resourceVersions stripped, and
deletes the namespace. Images named ``gitops-test/crash:*``, ``missing:*`` and ``unready:*`` fail
the way tests/harness/kwok-stages.yaml describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
NS = "kube-health"
QUOTA_NS = "kube-health-quota"
KUBECTL = os.environ.get(
    "KUBECTL", str(Path.home() / ".cache/gitops-test/bin/kubernetes-v1.35.4/kubectl"))
HEADER = ("# Captured from the gitops test cluster (kube-apiserver v1.35 + kwok, tests/clusters) by\n"
          "# capture.py in this directory; managedFields, uids and resourceVersions stripped.\n")


def kubectl(*args: str, stdin: str | None = None, ns: str | None = NS) -> str:
    cmd = [KUBECTL, *(["-n", ns] if ns else []), *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def apply(obj: dict[str, Any], ns: str = NS) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(obj), ns=ns)


def get(kind: str, name: str = "", selector: str = "", ns: str = NS) -> Any:
    args = ["get", kind, *([name] if name else []), *(["-l", selector] if selector else []), "-o", "json"]
    return json.loads(kubectl(*args, ns=ns))


def wait(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            print(f"  {what}: ok", file=sys.stderr)
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for field in ("managedFields", "uid", "resourceVersion", "selfLink"):
                meta.pop(field, None)
            for ref in meta.get("ownerReferences") or []:
                ref.pop("uid", None)
            meta.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
            if meta.get("annotations") == {}:
                meta.pop("annotations")
        for value in obj.values():
            strip(value)
        if obj.get("kind") == "List":
            obj.pop("metadata", None)
    elif isinstance(obj, list):
        for value in obj:
            strip(value)
    return obj


def save(name: str, obj: Any, note: str = "") -> None:
    body = yaml.safe_dump(strip(obj), sort_keys=False, default_flow_style=False, width=110)
    extra = "".join(f"# {line}\n" for line in note.splitlines()) if note else ""
    (HERE / name).write_text(HEADER + extra + body)
    print(f"wrote {name}", file=sys.stderr)


def listing(*objs: Any) -> dict[str, Any]:
    flat: list[Any] = []
    for obj in objs:
        flat.extend(obj["items"] if obj.get("kind", "").endswith("List") else [obj])
    return {"apiVersion": "v1", "kind": "List", "items": flat}


def deployment(name: str, image: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if "resources" in spec:
        container["resources"] = spec.pop("resources")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}, **spec}}


def image_patch(kind: str, name: str, image: str, **spec: Any) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}, **spec}}
    kubectl("patch", kind, name, "--type=strategic", "-p", json.dumps(patch))


def rolled_out(name: str) -> bool:
    d = get("deployment", name)
    s = d.get("status", {})
    want = d["spec"]["replicas"]
    return bool(s.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and s.get("updatedReplicas", 0) == want == s.get("availableReplicas", 0) == s.get("replicas", 0))


def waiting_pod(selector: str, reason: str) -> Any:
    for pod in get("pods", selector=selector)["items"]:
        for cs in pod.get("status", {}).get("containerStatuses", []):
            if cs.get("state", {}).get("waiting", {}).get("reason") == reason:
                return pod
    return None


def deployment_state(name: str) -> dict[str, Any]:
    return listing(get("deployment", name), get("replicasets", selector=f"app={name}"),
                   get("pods", selector=f"app={name}"))


def capture_deployments() -> None:
    apply(deployment("web", "gitops-test/app:1"))
    wait("web rolled out", lambda: rolled_out("web"))
    save("deployment-healthy.yaml", get("deployment", "web"))
    save("replicaset-healthy.yaml", get("replicasets", selector="app=web")["items"][0])
    save("pod-running-ready.yaml", get("pods", selector="app=web")["items"][0])

    image_patch("deployment", "web", "gitops-test/unready:2")
    wait("web rolling", lambda: any(
        p["spec"]["containers"][0]["image"] == "gitops-test/unready:2"
        and p.get("status", {}).get("phase") == "Running"
        for p in get("pods", selector="app=web")["items"]))
    time.sleep(1)
    save("deployment-progressing.yaml", get("deployment", "web"))
    unready = [p for p in get("pods", selector="app=web")["items"]
               if p["spec"]["containers"][0]["image"] == "gitops-test/unready:2"]
    save("pod-running-unready.yaml", unready[0])

    # A rollout to a crashing image: the new ReplicaSet's pod crash-loops, the old pods serve on.
    apply(deployment("crash", "gitops-test/app:1"))
    wait("crash rolled out", lambda: rolled_out("crash"))
    image_patch("deployment", "crash", "gitops-test/crash:1", progressDeadlineSeconds=4)
    pod = wait("a CrashLoopBackOff pod", lambda: waiting_pod("app=crash", "CrashLoopBackOff"))
    save("pod-crashloop.yaml", pod)
    save("rollout-deployment-crashloop.yaml", deployment_state("crash"),
         "Deployment crash (3 x gitops-test/app:1) patched to gitops-test/crash:1: the new ReplicaSet's\n"
         "pod is in CrashLoopBackOff, the three old pods still run.")

    def deadline() -> bool:
        conds = get("deployment", "crash").get("status", {}).get("conditions", [])
        return any(c["type"] == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded" for c in conds)

    wait("ProgressDeadlineExceeded", deadline)
    save("deployment-degraded-deadline.yaml", get("deployment", "crash"))

    apply(deployment("pull", "gitops-test/app:1", replicas=2))
    wait("pull rolled out", lambda: rolled_out("pull"))
    image_patch("deployment", "pull", "gitops-test/missing:1")
    pod = wait("an ImagePullBackOff pod", lambda: waiting_pod("app=pull", "ImagePullBackOff"))
    save("pod-imagepullbackoff.yaml", pod)
    save("rollout-deployment-imagepull.yaml", deployment_state("pull"),
         "Deployment pull (2 x gitops-test/app:1) patched to gitops-test/missing:1.")

    apply(deployment("huge", "gitops-test/app:1", replicas=2))
    wait("huge rolled out", lambda: rolled_out("huge"))
    kubectl("patch", "deployment", "huge", "--type=strategic", "-p", json.dumps({"spec": {"template": {"spec": {
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "1000"}}}]}}}}))

    def unschedulable() -> Any:
        for pod in get("pods", selector="app=huge")["items"]:
            for c in pod.get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
                    return pod
        return None

    save("pod-unschedulable.yaml", wait("an Unschedulable pod", unschedulable))
    save("rollout-deployment-unschedulable.yaml", deployment_state("huge"),
         "Deployment huge (2 x gitops-test/app:1) patched to request 1000 CPUs (nodes have 32).")

    apply(deployment("paused", "gitops-test/app:1", replicas=1))
    wait("paused rolled out", lambda: rolled_out("paused"))
    kubectl("rollout", "pause", "deployment/paused")
    image_patch("deployment", "paused", "gitops-test/app:2")
    time.sleep(1)
    save("deployment-paused.yaml", get("deployment", "paused"))

    kubectl("create", "namespace", QUOTA_NS, ns=None)
    apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "two-pods"},
           "spec": {"hard": {"pods": "2"}}}, ns=QUOTA_NS)
    wait("quota status", lambda: get("resourcequota", "two-pods", ns=QUOTA_NS).get("status", {}).get("hard"))
    apply(deployment("quota", "gitops-test/app:1", replicas=3), ns=QUOTA_NS)

    def replica_failure() -> Any:
        d = get("deployment", "quota", ns=QUOTA_NS)
        conds = d.get("status", {}).get("conditions", [])
        return d if any(c["type"] == "ReplicaFailure" and c["status"] == "True" for c in conds) else None

    save("deployment-replica-failure.yaml", wait("ReplicaFailure", replica_failure))


def statefulset(name: str, image: str, replicas: int = 3, partition: int | None = None) -> dict[str, Any]:
    strategy: dict[str, Any] = {"type": "RollingUpdate"}
    if partition is not None:
        strategy["rollingUpdate"] = {"partition": partition}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "updateStrategy": strategy,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def sts_ready(name: str) -> bool:
    s = get("statefulset", name).get("status", {})
    return bool(s.get("readyReplicas", 0) == 3 and s.get("updatedReplicas", 0) == 3
                and s.get("currentRevision") == s.get("updateRevision"))


def capture_statefulsets() -> None:
    apply(statefulset("db", "gitops-test/app:1"))
    wait("db ready", lambda: sts_ready("db"))
    save("statefulset-healthy.yaml", get("statefulset", "db"))
    kubectl("patch", "statefulset", "db", "--type=merge", "-p",
            json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}))
    image_patch("statefulset", "db", "gitops-test/app:2")
    wait("db partition rolled", lambda: get("statefulset", "db").get("status", {}).get("updatedReplicas") == 1
         and get("statefulset", "db")["status"].get("readyReplicas") == 3)
    save("statefulset-partition.yaml", get("statefulset", "db"),
         "StatefulSet db (3 x gitops-test/app:1) with partition 2, patched to gitops-test/app:2: only\n"
         "ordinal 2 is updated, which is all the partition asks for.")

    apply(statefulset("queue", "gitops-test/app:1"))
    wait("queue ready", lambda: sts_ready("queue"))
    image_patch("statefulset", "queue", "gitops-test/crash:1")
    wait("queue-2 crashing", lambda: waiting_pod("app=queue", "CrashLoopBackOff"))
    save("statefulset-rolling.yaml", get("statefulset", "queue"))
    save("rollout-statefulset-crashloop.yaml", listing(get("statefulset", "queue"), get("pods", selector="app=queue")),
         "StatefulSet queue (3 x gitops-test/app:1) patched to gitops-test/crash:1: queue-2 is\n"
         "recreated at the update revision and crash-loops; queue-0 and queue-1 wait at the old one.")


def capture_daemonsets() -> None:
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "app", "image": "gitops-test/app:1"}]}}}}
    apply(ds)

    def ds_ready() -> bool:
        d = get("daemonset", "agent")
        s = d.get("status", {})
        return bool(s.get("observedGeneration", 0) >= d["metadata"]["generation"]
                    and s.get("desiredNumberScheduled", 0) > 0
                    and s.get("numberAvailable", 0) == s["desiredNumberScheduled"]
                    == s.get("updatedNumberScheduled", 0))

    wait("agent ready", ds_ready)
    save("daemonset-healthy.yaml", get("daemonset", "agent"))
    image_patch("daemonset", "agent", "gitops-test/crash:1")
    wait("agent crashing", lambda: waiting_pod("app=agent", "CrashLoopBackOff"))
    save("daemonset-rolling.yaml", get("daemonset", "agent"))
    save("rollout-daemonset-crashloop.yaml",
         listing(get("daemonset", "agent"), get("controllerrevisions", selector="app=agent"),
                 get("pods", selector="app=agent")),
         "DaemonSet agent (gitops-test/app:1 on two nodes) patched to gitops-test/crash:1: one node's\n"
         "pod is replaced and crash-loops (maxUnavailable 1); the other still runs the old revision.")


def job(name: str, image: str, backoff: int = 0, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff, **spec, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "job", "image": image}]}}}}


def job_condition(name: str, kind: str) -> bool:
    conds = get("job", name).get("status", {}).get("conditions", [])
    return any(c["type"] == kind and c["status"] == "True" for c in conds)


def capture_jobs() -> None:
    apply(job("migrate", "gitops-test/app:1"))
    apply(job("broken", "gitops-test/crash:1"))
    apply(job("forever", "gitops-test/unready:1"))
    apply(job("later", "gitops-test/app:1", suspend=True))
    apply(job("flaky", "gitops-test/crash:1", backoff=3))
    wait("migrate complete", lambda: job_condition("migrate", "Complete"))
    save("job-complete.yaml", get("job", "migrate"))
    save("pod-succeeded.yaml", get("pods", selector="job-name=migrate")["items"][0])
    wait("broken failed", lambda: job_condition("broken", "Failed"))
    save("job-failed.yaml", get("job", "broken"))
    save("pod-failed-job.yaml", get("pods", selector="job-name=broken")["items"][0])
    save("rollout-job-failed.yaml", listing(get("job", "broken"), get("pods", selector="job-name=broken")),
         "Job broken (gitops-test/crash:1, backoffLimit 0): its only pod failed, so did the Job.")
    wait("forever running", lambda: get("job", "forever").get("status", {}).get("ready") == 0
         and get("job", "forever")["status"].get("active") == 1
         and get("pods", selector="job-name=forever")["items"][0]["status"].get("phase") == "Running")
    save("job-running.yaml", get("job", "forever"))
    save("job-suspended.yaml", get("job", "later"))
    wait("flaky failed once", lambda: get("job", "flaky").get("status", {}).get("failed") == 1)
    save("rollout-job-retrying.yaml", listing(get("job", "flaky"), get("pods", selector="job-name=flaky")),
         "Job flaky (gitops-test/crash:1, backoffLimit 3) right after its first pod failed: the Job\n"
         "retries, so the failed pod is not yet a rollout failure.")


def capture_others() -> None:
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "job", "image": "gitops-test/app:1"}]}}}}}}
    apply(cron)
    save("cronjob-healthy.yaml", get("cronjob", "nightly"))
    apply({**cron, "metadata": {"name": "paused-report"}, "spec": {**cron["spec"], "suspend": True}})
    save("cronjob-suspended.yaml", get("cronjob", "paused-report"))

    apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "kube-health-pv"},
           "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                    "hostPath": {"path": "/tmp/kube-health-pv"}}}, ns="")
    apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bound"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": "kube-health-pv",
                    "resources": {"requests": {"storage": "1Gi"}}}})
    wait("bound claim", lambda: get("pvc", "bound").get("status", {}).get("phase") == "Bound")
    time.sleep(1)
    save("pvc-pending.yaml", get("pvc", "data"))
    save("pvc-bound.yaml", get("pvc", "bound"))

    ports = [{"port": 80, "targetPort": 8080}]
    apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": ports}})
    apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "public"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": ports}})
    save("service-clusterip.yaml", get("service", "web"))
    save("service-loadbalancer-pending.yaml", get("service", "public"))
    apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [{
               "path": "/", "pathType": "Prefix",
               "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    save("ingress.yaml", get("ingress", "web"))
    apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"level": "info"}})
    save("configmap.yaml", get("configmap", "settings"))


def main() -> None:
    kubectl("create", "namespace", NS, ns=None)
    try:
        capture_deployments()
        capture_statefulsets()
        capture_daemonsets()
        capture_jobs()
        capture_others()
    finally:
        for ns in (NS, QUOTA_NS):
            subprocess.run([KUBECTL, "delete", "namespace", ns, "--wait=false"], capture_output=True, check=False)
        subprocess.run([KUBECTL, "delete", "pv", "kube-health-pv", "--wait=false"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
