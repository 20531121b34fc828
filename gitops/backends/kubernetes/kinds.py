"""Tables about Kubernetes kinds: apply order and immutable fields."""

from __future__ import annotations

from typing import Any

#: Apply waves (lower first; prune runs in reverse). Kinds not listed go last: custom resources
#: need their CRDs, and webhooks should not intercept the objects they are applied with.
WAVES: dict[tuple[str, str], int] = {
    ("", "Namespace"): 0,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): 0,
    ("scheduling.k8s.io", "PriorityClass"): 0,
    ("storage.k8s.io", "StorageClass"): 0,
    ("networking.k8s.io", "IngressClass"): 0,
    ("", "ServiceAccount"): 1,
    ("rbac.authorization.k8s.io", "ClusterRole"): 1,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): 1,
    ("rbac.authorization.k8s.io", "Role"): 1,
    ("rbac.authorization.k8s.io", "RoleBinding"): 1,
    ("", "ResourceQuota"): 1,
    ("", "LimitRange"): 1,
    ("networking.k8s.io", "NetworkPolicy"): 1,
    ("", "Secret"): 2,
    ("", "ConfigMap"): 2,
    ("", "PersistentVolume"): 3,
    ("", "PersistentVolumeClaim"): 3,
    ("", "Service"): 4,
    ("apps", "Deployment"): 5,
    ("apps", "StatefulSet"): 5,
    ("apps", "DaemonSet"): 5,
    ("apps", "ReplicaSet"): 5,
    ("", "ReplicationController"): 5,
    ("", "Pod"): 5,
    ("batch", "Job"): 5,
    ("batch", "CronJob"): 5,
    ("autoscaling", "HorizontalPodAutoscaler"): 6,
    ("policy", "PodDisruptionBudget"): 6,
    ("networking.k8s.io", "Ingress"): 6,
}
LAST_WAVE = 7
WORKLOADS = frozenset({
    ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"),
    ("", "ReplicationController"), ("", "Pod"), ("batch", "Job"),
})

#: Kinds that hold stateful data: prune keeps them unless the app prunes data.
DATA = frozenset({("", "PersistentVolumeClaim"), ("", "PersistentVolume")})
#: Kinds Kubernetes makes by itself in a namespace: not counted in what deleting it would take.
GENERATED = frozenset({("", "Event"), ("events.k8s.io", "Event"), ("", "Endpoints"),
                       ("discovery.k8s.io", "EndpointSlice"), ("", "Binding")})
#: Objects every namespace gets (kind, name), made by controllers.
NAMESPACE_DEFAULTS = frozenset({("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")})

#: Fields that cannot change in place: changing one means delete and create (action replace).
IMMUTABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("/spec/selector",),
    ("apps", "ReplicaSet"): ("/spec/selector",),
    ("apps", "DaemonSet"): ("/spec/selector",),
    ("apps", "StatefulSet"): ("/spec/selector", "/spec/serviceName", "/spec/volumeClaimTemplates",
                              "/spec/podManagementPolicy"),
    ("batch", "Job"): ("/spec/selector", "/spec/template", "/spec/completionMode", "/spec/podFailurePolicy"),
    ("", "Service"): ("/spec/clusterIP", "/spec/clusterIPs"),
    ("", "PersistentVolumeClaim"): ("/spec/accessModes", "/spec/storageClassName", "/spec/volumeName",
                                    "/spec/selector", "/spec/volumeMode", "/spec/dataSource"),
    ("", "Pod"): ("/spec",),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("/roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("/roleRef",),
    ("", "Secret"): ("/type",),
}


#: Helm hooks (``helm.sh/hook``) are user waves (``gitops.dev/wave``, each healthy before the next)
#: when the object names none: pre-install/pre-upgrade the wave before the app's (0), so a migration
#: Job completes first; post-install/post-upgrade the wave after it. ``test`` and the delete and
#: rollback hooks are never applied (the Helm renderer drops them).
HOOK_KEY = "helm.sh/hook"
PRE_HOOK_WAVE = -1
POST_HOOK_WAVE = 1


def hook_wave(hooks: object) -> int:
    """The user wave of an object with ``helm.sh/hook: hooks`` (0: not an install/upgrade hook)."""
    if not isinstance(hooks, str):
        return 0
    names = {h.strip() for h in hooks.split(",")}
    if names & {"pre-install", "pre-upgrade"}:
        return PRE_HOOK_WAVE
    if names & {"post-install", "post-upgrade"}:
        return POST_HOOK_WAVE
    return 0


def wave(group: str, kind: str) -> int:
    return WAVES.get((group, kind), LAST_WAVE)


def immutable_paths(group: str, kind: str, live: dict[str, Any] | None) -> tuple[str, ...]:
    paths = IMMUTABLE.get((group, kind), ())
    if live is not None and live.get("immutable") is True and kind in ("ConfigMap", "Secret"):
        paths = (*paths, "/data", "/binaryData", "/stringData", "/immutable")
    return paths


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")
