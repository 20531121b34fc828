"""Releases: what was applied for an app, when, and how it ended. Kept in the target itself."""

from __future__ import annotations

import base64
import enum
import gzip
import json
from dataclasses import dataclass, field, replace
from typing import Any

from gitops.model.resources import Origin, Resource, ResourceKey

HISTORY_LIMIT = 10
#: Values decrypted from SOPS files are never recorded. The annotation of a Kubernetes Secret whose
#: values came from a SOPS file in git ("decrypted"), and the label of a Swarm service naming the
#: environment variables whose values did (from a SOPS env file; "CONN,LEVEL"): a release records
#: the object without those values, and a rollback to it takes them from the live object
#: (:func:`restore`, called by ``deploy._restore_withheld``).
SOPS_KEY = "gitops.dev/sops"
WITHHELD_FIELDS = ("data", "stringData")


def _swarm_env(body: dict[str, Any]) -> list[Any] | None:
    task = body.get("TaskTemplate")
    spec = task.get("ContainerSpec") if isinstance(task, dict) else None
    env = spec.get("Env") if isinstance(spec, dict) else None
    return env if isinstance(env, list) else None


def _sops_names(body: dict[str, Any]) -> set[str]:
    labels = body.get("Labels")
    value = labels.get(SOPS_KEY) if isinstance(labels, dict) else None
    return {n.strip() for n in str(value).split(",") if n.strip()} if value else set()


def _with_env(body: dict[str, Any], env: list[Any]) -> dict[str, Any]:
    task = dict(body["TaskTemplate"])
    task["ContainerSpec"] = {**task["ContainerSpec"], "Env": env}
    return {**body, "TaskTemplate": task}


def withheld(body: dict[str, Any]) -> bool:
    """A body holding values that came from a SOPS file (see :data:`SOPS_KEY`)."""
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return (isinstance(annotations, dict) and SOPS_KEY in annotations) or bool(_sops_names(body))


def recordable(body: dict[str, Any]) -> dict[str, Any]:
    """The body as a release records it: a SOPS-decrypted Secret without its values, a Swarm
    service's environment items from a SOPS env file as bare names (``CONN``)."""
    if not withheld(body):
        return body
    names = _sops_names(body)
    env = _swarm_env(body)
    if names and env is not None:
        return _with_env(body, [str(item).split("=", 1)[0] if str(item).split("=", 1)[0] in names else item
                                for item in env])
    return {name: value for name, value in body.items() if name not in WITHHELD_FIELDS}


def restore(body: dict[str, Any], live: dict[str, Any]) -> dict[str, Any] | None:
    """A recorded body with its withheld values taken from the live object (None: it lacks them)."""
    names = _sops_names(body)
    env = _swarm_env(body)
    if names and env is not None:
        spec = live.get("Spec")
        live_env = _swarm_env(spec) if isinstance(spec, dict) else None
        values = {str(item).split("=", 1)[0]: str(item) for item in live_env or [] if "=" in str(item)}
        if any(str(item) in names and str(item) not in values for item in env):
            return None
        return _with_env(body, [values[str(item)] if str(item) in names else item for item in env])
    if not any(name in live for name in WITHHELD_FIELDS):
        return None
    return {**body, **{name: live[name] for name in WITHHELD_FIELDS if name in live}}


class Outcome(enum.StrEnum):
    IN_PROGRESS = "in-progress"  # applying now, or the runner died while applying
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the rollout failed (and the app was rolled back when allowed)
    ROLLED_BACK = "rolled-back"  # a re-apply of an older release after a failure, or on demand


def key_to_json(key: ResourceKey) -> list[str]:
    return [key.group, key.kind, key.namespace, key.name]


def key_from_json(data: list[str]) -> ResourceKey:
    return ResourceKey(*data)


def pack_resources(resources: list[Resource]) -> str:
    """Manifests of a release, compressed; stored only inside the target's own secret store.
    Values decrypted from SOPS files are withheld (:func:`recordable`)."""
    data = [
        {"key": key_to_json(r.key), "apiVersion": r.api_version, "body": recordable(r.body),
         "origin": [r.origin.file, r.origin.document, r.origin.line]}
        for r in resources
    ]
    return base64.b64encode(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), 6)).decode()


def unpack_resources(packed: str) -> list[Resource]:
    data = json.loads(gzip.decompress(base64.b64decode(packed)))
    return [
        Resource(key_from_json(item["key"]), item["apiVersion"], item["body"], Origin(*item["origin"]))
        for item in data
    ]


@dataclass(frozen=True)
class Release:
    """One apply of one revision of an app."""

    number: int
    revision: str
    digest: str
    outcome: Outcome
    started: str  # RFC 3339 UTC
    finished: str = ""
    inventory: tuple[ResourceKey, ...] = ()
    message: str = ""
    manifests: str = field(default="", repr=False)  # packed; empty when trimmed
    #: Objects no longer desired that prune left in place (data, opted out, blocked, left behind):
    #: still remembered, so a later run re-judges them and ``status`` shows them as orphaned.
    kept: tuple[ResourceKey, ...] = ()
    #: Objects that opt out of pruning (``x-gitops-prune: false``, ``gitops.dev/prune: disabled``),
    #: remembered so the opt-out still holds after the object left the repository.
    protected: tuple[ResourceKey, ...] = ()
    #: The prune guards this release lifted (``cascade``, ``data``, ``mass-delete``): history shows them.
    overrides: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "number": self.number, "revision": self.revision, "digest": self.digest,
            "outcome": self.outcome.value, "started": self.started, "finished": self.finished,
            "inventory": [key_to_json(k) for k in self.inventory], "message": self.message,
            "manifests": self.manifests,
        }
        if self.kept:
            data["kept"] = [key_to_json(k) for k in self.kept]
        if self.protected:
            data["protected"] = [key_to_json(k) for k in self.protected]
        if self.overrides:
            data["overrides"] = list(self.overrides)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(
            number=int(data["number"]), revision=data["revision"], digest=data["digest"],
            outcome=Outcome(data["outcome"]), started=data.get("started", ""),
            finished=data.get("finished", ""),
            inventory=tuple(key_from_json(k) for k in data.get("inventory", [])),
            message=data.get("message", ""), manifests=data.get("manifests", ""),
            kept=tuple(key_from_json(k) for k in data.get("kept", [])),
            protected=tuple(key_from_json(k) for k in data.get("protected", [])),
            overrides=tuple(data.get("overrides", [])),
        )

    def resources(self) -> list[Resource]:
        return unpack_resources(self.manifests) if self.manifests else []


@dataclass(frozen=True)
class AppState:
    """Everything the target remembers about one app: its release history and bad revisions."""

    app: str
    releases: tuple[Release, ...] = ()  # oldest first
    bad_revisions: tuple[str, ...] = ()
    version: str = ""  # the store's own version (e.g. resourceVersion), for optimistic writes

    @property
    def current(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    @property
    def last_good(self) -> Release | None:
        for release in reversed(self.releases):
            if release.outcome in (Outcome.SUCCEEDED, Outcome.ROLLED_BACK) and release.manifests:
                return release
        return None

    def inventory(self) -> set[ResourceKey]:
        """Objects we may own: the union over releases that may have left objects behind.

        After a crash mid-apply the newest release is in-progress; its inventory already holds
        everything it was about to create, so nothing created then is ever forgotten. Objects a
        release kept (not pruned) count too: every run judges them again.
        """
        keys: set[ResourceKey] = set()
        for release in self._since_good():
            keys.update(release.inventory)
            keys.update(release.kept)
        return keys

    def kept(self) -> set[ResourceKey]:
        """Objects that left the repository and were left in place (see :attr:`Release.kept`)."""
        return {k for release in self._since_good() for k in release.kept}

    def protected(self) -> set[ResourceKey]:
        """Objects recorded as opting out of pruning (see :attr:`Release.protected`)."""
        return {k for release in self._since_good() for k in release.protected}

    def _since_good(self) -> list[Release]:
        """The newest releases back to (and including) the last one that ended well."""
        out: list[Release] = []
        for release in reversed(self.releases):
            out.append(release)
            if release.outcome in (Outcome.SUCCEEDED, Outcome.ROLLED_BACK):
                break
        return out

    def next_number(self) -> int:
        return (self.releases[-1].number + 1) if self.releases else 1

    def with_release(self, release: Release) -> AppState:
        """Add or replace (same number) a release, keeping the last HISTORY_LIMIT."""
        kept = [r for r in self.releases if r.number != release.number] + [release]
        kept.sort(key=lambda r: r.number)
        return replace(self, releases=tuple(kept[-HISTORY_LIMIT:]))

    def trimmed(self, budget: int) -> AppState:
        """Drop manifests of the oldest releases until the packed manifests fit ``budget`` bytes;
        the last good release and anything newer keep theirs (they are what rollback needs)."""
        total = sum(len(r.manifests) for r in self.releases)
        if total <= budget:
            return self
        keep_from = self.releases.index(self.last_good) if self.last_good else len(self.releases) - 1
        releases = list(self.releases)
        for index in range(len(releases)):
            if total <= budget or index >= keep_from:
                break
            total -= len(releases[index].manifests)
            releases[index] = replace(releases[index], manifests="")
        return replace(self, releases=tuple(releases))

    def with_bad_revision(self, revision: str) -> AppState:
        if revision in self.bad_revisions:
            return self
        return replace(self, bad_revisions=(*self.bad_revisions, revision)[-HISTORY_LIMIT:])

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "releases": [r.to_json() for r in self.releases],
                "bad_revisions": list(self.bad_revisions)}

    @classmethod
    def from_json(cls, data: dict[str, Any], version: str = "") -> AppState:
        return cls(
            app=data["app"],
            releases=tuple(Release.from_json(r) for r in data.get("releases", [])),
            bad_revisions=tuple(data.get("bad_revisions", [])),
            version=version,
        )
