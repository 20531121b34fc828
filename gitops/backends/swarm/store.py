"""App state and the apply lock, kept on the swarm itself in config objects.

Swarm configs are immutable and their create is atomic: a second create of the same name fails
with 409. Both the state and the lock are therefore chains of configs named with a sequence
number, where writing means *creating the next number*; whoever creates it first wins, exactly
like a compare-and-swap on a version.

* **State** (``gitops-state-<app>-<seq>``, label ``gitops.dev/state=<app>``; :func:`object_name`
  shortens long app names): the data is gzip(JSON of ``AppState.to_json()``). Reading takes the
  highest ``seq`` (``AppState.version`` is that ``seq``); saving creates ``seq + 1``. A name
  clash means another runner wrote first (:class:`gitops.errors.StateConflictError`); a write that lands below a
  newer one is withdrawn and refused the same way. The newest :data:`KEEP_STATES` configs are
  kept, older ones deleted. Release manifests never hold secret data (the backend strips it
  before they are packed), so plain configs are fine. A config holds at most 500 KiB: manifests
  of old releases are trimmed to :data:`STATE_BUDGET`.
* **Secret naming key** (:meth:`SwarmStore.naming_key`): 32 random bytes per app, the HMAC key of
  the content suffix of its secrets' names (:func:`gitops.backends.swarm.compose.keyed_hash`). It
  rides in the same state payload (field ``secret_naming_key``), not in :class:`AppState`, so no
  view of the state (status, history, JSON) can show it. Reading never writes: an app whose state
  has no key yet (a new app, or one deployed before keyed names) gets a fresh key in memory, which
  the next :meth:`SwarmStore.save` (the first write of an apply, before any object is written)
  stores; every later save carries the stored key on. The state is a plain config, readable by
  whoever may use the engine's API, who could as well run a container that mounts the secret.
* **Lock** (``gitops-lock-<app>-<epoch>``, label ``gitops.dev/lock=<app>``): the entry with the
  highest epoch says who holds the lock (labels ``gitops.dev/holder`` and ``gitops.dev/ttl``; an
  empty holder means free). Every transition creates ``epoch + 1``: acquiring a free or expired
  lock, renewing it (the holder does so from a background thread every ``ttl / 3`` seconds) and
  releasing it (an entry with no holder). Two runners racing for the same transition both try
  the same name and only one create succeeds. Lower epochs are deleted after each transition, so
  a runner acting on a very old read may re-create a deleted epoch: it then sees a higher one,
  withdraws its entry and has not taken the lock (the highest epoch is never deleted).
  Expiry is judged on the manager's clock (the entry's ``CreatedAt`` + ttl against
  ``SystemTime`` of ``GET /info``), so the clocks of CI runners do not matter. A crashed
  runner's lock expires ``ttl`` seconds after its last renewal.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitops.backends import locking
from gitops.backends.base import Lease
from gitops.clock import SYSTEM, Clock, Stopping
from gitops.errors import GitopsError, StateConflictError
from gitops.model.releases import AppState

from .client import SwarmClient, SwarmConflict, SwarmNotFound

log = logging.getLogger(__name__)

APP_LABEL = "gitops.dev/app"
STATE_LABEL = "gitops.dev/state"
SEQ_LABEL = "gitops.dev/seq"
LOCK_LABEL = "gitops.dev/lock"
HOLDER_LABEL = "gitops.dev/holder"
TTL_LABEL = "gitops.dev/ttl"
EPOCH_LABEL = "gitops.dev/epoch"

KEEP_STATES = 2
MAX_NAME = 64  # Swarm refuses longer config names
STATE_BUDGET = 300_000  # bytes of packed manifests kept; a config holds at most 500 KiB
MAX_CONFIG_BYTES = 500 * 1024
KEY_FIELD = "secret_naming_key"  # in the state payload, beside AppState's fields
KEY_BYTES = 32




# -- pure parts ------------------------------------------------------------------------------------


def encode_state(state: AppState, naming_key: bytes | None = None) -> bytes:
    payload = state.to_json()
    if naming_key is not None:
        payload[KEY_FIELD] = base64.b64encode(naming_key).decode("ascii")
    return gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)


def decode_state(data: bytes, version: str) -> AppState:
    return decode(data, version)[0]


def decode(data: bytes, version: str) -> tuple[AppState, bytes | None]:
    """The state and the secret naming key it holds (None: written before keyed names)."""
    payload = json.loads(gzip.decompress(data))
    key = payload.pop(KEY_FIELD, None)
    return AppState.from_json(payload, version=version), (base64.b64decode(key) if key else None)


def engine_time(text: str | None) -> float | None:
    """An Engine timestamp (RFC 3339, nanoseconds, ``Z``) as POSIX seconds."""
    if not text:
        return None
    base, _, rest = text.rstrip("Z").partition(".")
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in rest if ch.isdigit())[:9]
    return moment.timestamp() + (int(digits.ljust(9, "0")) / 1e9 if digits else 0.0)


@dataclass(frozen=True)
class LockEntry:
    """One link of the lock chain."""

    id: str
    epoch: int
    holder: str  # "" = free
    ttl: int
    created: float  # manager clock, POSIX seconds

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LockEntry | None:
        spec = config.get("Spec") or {}
        labels = spec.get("Labels") or {}
        try:
            epoch = int(labels.get(EPOCH_LABEL, ""))
        except ValueError:
            return None
        return cls(id=str(config.get("ID", "")), epoch=epoch, holder=str(labels.get(HOLDER_LABEL, "")),
                   ttl=int(labels.get(TTL_LABEL) or 0), created=engine_time(config.get("CreatedAt")) or 0.0)

    def expired(self, now: float) -> bool:
        return self.created + self.ttl < now

    def free_for(self, holder: str, now: float) -> bool:
        """Whether ``holder`` may take (or renew) the lock this entry describes."""
        return not self.holder or self.holder == holder or self.expired(now)


def object_name(prefix: str, app: str, number: int) -> str:
    """``<prefix>-<app>-<number>``; an app name too long for a config name is replaced by its hash
    (the labels, which have no such limit, still name the app)."""
    name = f"{prefix}-{app}-{number}"
    if len(name) <= MAX_NAME:
        return name
    return f"{prefix}-{hashlib.sha256(app.encode()).hexdigest()[:16]}-{number}"


def newest(entries: list[LockEntry]) -> LockEntry | None:
    return max(entries, key=lambda e: e.epoch) if entries else None


# -- the store -------------------------------------------------------------------------------------


class SwarmStore:
    def __init__(self, client: SwarmClient, app: str) -> None:
        self.client = client
        self.app = app
        self._key: bytes | None = None  # the naming key: read from the state, or made for its next save
        self._key_stored = False  # whether the state last read holds _key
        self._read = False  # whether the state was read at all

    # -- secret naming key ------------------------------------------------------------------------

    def naming_key(self) -> bytes:
        """The app's secret naming key: the one in the state (read now if the state was not read
        yet), else a new random one that the next :meth:`save` stores. Never written here."""
        if not self._read:
            self.load()
        if self._key is None:
            self._key = secrets.token_bytes(KEY_BYTES)
        return self._key

    @property
    def naming_key_stored(self) -> bool:
        """Whether :meth:`naming_key` is the key the target holds (False: a new one, provisional
        until the next save)."""
        return self._key_stored

    # -- state ----------------------------------------------------------------------------------

    def state_name(self, seq: int) -> str:
        return object_name("gitops-state", self.app, seq)

    def _states(self) -> list[tuple[int, dict[str, Any]]]:
        found = []
        for config in self.client.configs(f"{STATE_LABEL}={self.app}"):
            labels = (config.get("Spec") or {}).get("Labels") or {}
            try:
                found.append((int(labels.get(SEQ_LABEL, "")), config))
            except ValueError:
                continue
        return sorted(found, key=lambda item: item[0])

    def load(self) -> AppState:
        states = self._states()
        state, key = AppState(app=self.app), None
        if states:
            seq, config = states[-1]
            state, key = decode(base64.b64decode((config.get("Spec") or {}).get("Data") or ""), str(seq))
        self._read = True
        if key is not None:
            self._key = key  # the target's key wins over one made for a save that did not happen
        self._key_stored = key is not None
        return state

    def save(self, state: AppState) -> AppState:
        state = state.trimmed(STATE_BUDGET)
        if not self._read:
            self.load()  # never drop a stored key: learn it before writing
        data = encode_state(state, self._key)
        if len(data) > MAX_CONFIG_BYTES:
            raise GitopsError(f"app {self.app}: the release history is {len(data)} bytes compressed, more than "
                              f"a Swarm config holds ({MAX_CONFIG_BYTES})")
        seq = int(state.version or 0) + 1
        spec = {"Name": self.state_name(seq),
                "Labels": {STATE_LABEL: self.app, SEQ_LABEL: str(seq), APP_LABEL: self.app},
                "Data": base64.b64encode(data).decode("ascii")}
        try:
            created = self.client.create_config(spec)
        except SwarmConflict as err:
            raise StateConflictError(f"app {self.app}: state changed since it was read (another runner wrote "
                                f"release state {seq}); run again") from err
        states = self._states()
        if states and states[-1][0] > seq:
            self.client.remove("Config", created)
            raise StateConflictError(f"app {self.app}: state changed since it was read (a newer state "
                                f"{states[-1][0]} exists); run again")
        self._key_stored = self._key is not None
        for old_seq, config in states[:-KEEP_STATES]:
            if old_seq < seq:
                self.client.remove("Config", str(config["ID"]))
        return AppState(app=state.app, releases=state.releases, bad_revisions=state.bad_revisions,
                        version=str(seq))

    # -- lock -----------------------------------------------------------------------------------

    def lock_name(self, epoch: int) -> str:
        return object_name("gitops-lock", self.app, epoch)

    def entries(self) -> list[LockEntry]:
        found = (LockEntry.from_config(c) for c in self.client.configs(f"{LOCK_LABEL}={self.app}"))
        return [e for e in found if e is not None]

    def manager_time(self) -> float:
        return engine_time(self.client.info().get("SystemTime")) or time.time()

    def _create_entry(self, epoch: int, holder: str, ttl: int) -> bool:
        """Create link ``epoch``; False when it exists, or when a higher one exists (then ours was a
        re-creation of a deleted link from a stale read, and is withdrawn)."""
        spec = {"Name": self.lock_name(epoch),
                "Labels": {LOCK_LABEL: self.app, EPOCH_LABEL: str(epoch), HOLDER_LABEL: holder,
                           TTL_LABEL: str(ttl), APP_LABEL: self.app},
                "Data": base64.b64encode(json.dumps({"holder": holder, "ttl": ttl}).encode()).decode("ascii")}
        try:
            created = self.client.create_config(spec)
        except SwarmConflict:
            return False
        top = newest(self.entries())
        if top is not None and top.epoch > epoch:
            self.client.remove("Config", created)
            return False
        return True

    def _drop_below(self, epoch: int, entries: list[LockEntry]) -> None:
        for entry in entries:
            if entry.epoch < epoch:
                try:
                    self.client.remove("Config", entry.id)
                except SwarmNotFound:
                    pass
                except GitopsError as err:  # an old link left behind is harmless; the next transition retries
                    log.debug("could not delete old lock entry %s: %s", entry.id, err)

    def transition(self, holder: str, new_holder: str, ttl: int) -> tuple[bool, LockEntry | None]:
        """One attempt to move the lock from a state ``holder`` may change to ``new_holder``.

        Returns (done, the newest entry seen). Not done when someone else holds an unexpired
        lock, or when another runner made a transition at the same time."""
        entries = self.entries()
        top = newest(entries)
        if top is not None and not top.free_for(holder, self.manager_time()):
            return False, top
        epoch = (top.epoch if top else 0) + 1
        if not self._create_entry(epoch, new_holder, ttl):
            return False, newest(self.entries())
        self._drop_below(epoch, self.entries())
        return True, top

    def try_acquire(self, holder: str, ttl: int) -> tuple[bool, str]:
        taken, top = self.transition(holder, holder, ttl)
        return taken, (holder if taken else (top.holder if top and top.holder else "another runner"))

    def renew(self, holder: str, ttl: int) -> bool:
        """Extend our lock; False when it is no longer ours (someone took it over after expiry)."""
        top = newest(self.entries())
        if top is None or top.holder != holder:
            return False
        epoch = top.epoch + 1
        if not self._create_entry(epoch, holder, ttl):
            return False
        self._drop_below(epoch, self.entries())
        return True

    def release(self, holder: str) -> None:
        top = newest(self.entries())
        if top is None or top.holder != holder:
            return
        self.transition(holder, "", 0)

    @contextmanager
    def lock(self, holder: str, ttl: int, wait: float, *, stopping: Stopping | None = None,
             clock: Clock = SYSTEM) -> Iterator[Lease]:
        """Hold the lock; the Lease is marked lost when a renewal finds it taken over."""
        with locking.held(app=self.app, ttl=ttl, wait=wait, stopping=stopping, clock=clock,
                          acquire=lambda: self.try_acquire(holder, ttl),
                          renew=lambda: self.renew(holder, ttl), release=lambda: self.release(holder),
                          where=f"Swarm configs {LOCK_LABEL}={self.app}") as lease:
            yield lease
