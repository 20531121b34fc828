"""Tables about Kubernetes kinds: apply order and immutable fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitops.model.plans import WAVE_KEY, parse_wave

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
#: when the object names none: pre-install/pre-upgrade hooks come before every other object of the
#: app, so a migration Job completes first; post-install/post-upgrade hooks after them. Within a
#: phase, each ``helm.sh/hook-weight`` is a wave of its own, lowest first (:func:`hook_waves`).
#: ``test`` and the delete and rollback hooks are never applied (the Helm renderer drops them).
HOOK_KEY = "helm.sh/hook"
HOOK_WEIGHT_KEY = "helm.sh/hook-weight"
HOOK_DELETE_KEY = "helm.sh/hook-delete-policy"
PRE_HOOK_WAVE = -1
POST_HOOK_WAVE = 1
#: helm's delete policies; with none given, helm (and so we) use before-hook-creation
BEFORE_HOOK_CREATION, HOOK_SUCCEEDED, HOOK_FAILED = "before-hook-creation", "hook-succeeded", "hook-failed"


def hook_weight(annotations: Mapping[str, Any]) -> int:
    """``helm.sh/hook-weight`` as helm reads it (an integer in a string; anything else is 0)."""
    text = str(annotations.get(HOOK_WEIGHT_KEY, "0")).strip()
    try:
        return int(text)
    except ValueError:
        return 0


def hook_delete_policies(annotations: Mapping[str, Any]) -> frozenset[str]:
    """``helm.sh/hook-delete-policy`` of a hook (before-hook-creation when it names none)."""
    text = annotations.get(HOOK_DELETE_KEY)
    names = {p.strip() for p in text.split(",") if p.strip()} if isinstance(text, str) else set()
    return frozenset(names or {BEFORE_HOOK_CREATION})


def hook_waves(objects: Iterable[tuple[Any, Mapping[str, Any]]]) -> dict[Any, int]:
    """The user wave of each Helm hook among ``objects`` ((key, annotations) pairs) that names no
    ``gitops.dev/wave`` of its own: pre- hooks take the waves just below the lowest wave of the other
    objects (0 when none is lower), one wave per distinct weight, lowest weight first; post- hooks
    the waves just above the highest."""
    others: list[int] = []
    pre: dict[Any, int] = {}
    post: dict[Any, int] = {}
    for key, marks in objects:
        phase = hook_wave(marks.get(HOOK_KEY))
        explicit = parse_wave(marks.get(WAVE_KEY))
        if phase == 0 or explicit is not None:
            others.append(explicit or 0)
        elif phase < 0:
            pre[key] = hook_weight(marks)
        else:
            post[key] = hook_weight(marks)
    low, high = min([0, *others]), max([0, *others])
    pre_weights, post_weights = sorted(set(pre.values())), sorted(set(post.values()))
    waves = {key: low - len(pre_weights) + pre_weights.index(w) for key, w in pre.items()}
    waves.update({key: high + 1 + post_weights.index(w) for key, w in post.items()})
    return waves


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
