"""Building blocks for the Kubernetes deploy tests: an example app as manifests, and a backend."""

from __future__ import annotations

import copy
from typing import Any

from gitops.backends.kubernetes.backend import KubernetesBackend
from gitops.backends.kubernetes.client import KubeClient
from gitops.model import Origin, Resource, ResourceKey


def resources(docs: list[dict[str, Any]], file: str = "app.yaml") -> list[Resource]:
    out = []
    for index, doc in enumerate(docs):
        api_version = doc["apiVersion"]
        meta = doc.get("metadata", {})
        key = ResourceKey(api_version.rpartition("/")[0], doc["kind"], meta.get("namespace", ""), meta["name"])
        out.append(Resource(key, api_version, copy.deepcopy(doc), Origin(file, index, 1)))
    return out


def backend(kubeconfig: str, app: str, namespace: str, state_namespace: str) -> KubernetesBackend:
    return KubernetesBackend(KubeClient(kubeconfig), app, namespace=namespace, state_namespace=state_namespace)


def app_docs(namespace: str, image: str = "gitops-test/app:1", config: str = "a", password: str = "hunter2",
             replicas: int = 2, extra: bool = False) -> list[dict[str, Any]]:
    labels = {"app": "web"}
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": namespace},
         "data": {"mode": config}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": namespace},
         "type": "Opaque", "stringData": {"password": password}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
         "spec": {
             "replicas": replicas, "progressDeadlineSeconds": 60,
             "selector": {"matchLabels": labels},
             "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                 "name": "app", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                 "resources": {"requests": {"cpu": 0.1, "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                 "envFrom": [{"configMapRef": {"name": "web-config"}}],
             }]}},
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": namespace},
         "spec": {"rules": [{"host": "web.example.test", "http": {"paths": [{
             "path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": namespace},
         "spec": {"schedule": "*/30 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
             "restartPolicy": "OnFailure", "containers": [{"name": "report", "image": "gitops-test/app:1"}]}}}}}},
    ]
    if extra:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "extra", "namespace": namespace}, "data": {"k": "v"}})
    return docs
