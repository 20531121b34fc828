"""The reconcile loop: watch one repository, and keep every app of its gitops.yaml equal to it.

One scheduler thread decides what is due; a bounded pool of workers reconciles apps, never two
reconciles of one app at once. Per tick, the repository is checked once (``git ls-remote``) for
all apps, and fetched only when its revision moved. Each app reconciles with the same flow as
`gitops apply` (lock, in-progress release, waves, rollout watch, whole-app rollback, bad-revision
quarantine):

* a new revision is applied (``sync.auto``; otherwise the app is only reported OutOfSync);
* at a revision already applied, a difference is drift: re-applied with ``sync.self_heal``
  (after a short delay, backing off while it keeps coming back), otherwise reported;
* a revision that fails validation, or is marked bad, is not retried: the app waits for a newer
  commit and says so; so does every app when the newest commit is not signed by an allowed signer
  (``Options.signers``): the apps stay at their last verified revision (drift is still healed);
* any other failure (target or git unreachable, a held lock) is retried with capped exponential
  backoff, and never stops the loop.

Every wait takes the daemon's stop signal and clock.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops import config, deploy, engine
from gitops.clock import SYSTEM, Clock
from gitops.daemon.log import Log
from gitops.daemon.metrics import Metrics
from gitops.daemon.notify import Event, Notifier, Secrets
from gitops.errors import GitopsError, LockedError, SignatureError, StoppedError
from gitops.model import ResourceKey
from gitops.model.plans import Action

BACKOFF_FIRST = 5.0
BACKOFF_MAX = 300.0
SELF_HEAL_DELAY = 2.0
DEPENDENCY_POLL = 3.0  # an app waiting for one it depends on looks again this often
DRIFT_DELAY = 1.0  # a change seen on the target: reconcile after this (changes come in bursts)


@dataclass
class Options:
    repo: str  # any URL the source layer accepts; a local clone's path with -C
    ref: str | None = None  # a branch (followed), a tag or a commit; None: the remote's HEAD
    workers: int = 4
    holder: str = field(default_factory=deploy.default_holder)
    env: Mapping[str, str] = field(default_factory=dict)  # what ${VAR} in compose files may read
    cache_dir: Path | None = None
    lock_wait: float = 5.0  # a lock held by a CI runner: retried with backoff, not waited out
    shard: int = 0  # this daemon serves the apps whose stable hash modulo ``shards`` is ``shard``
    shards: int = 1
    leader_ttl: int = 15  # seconds; a leader killed -9 is replaced within about this long
    # Where the leader lease lives: "auto" (a Kubernetes app's cluster when there is one, else the
    # swarm), "kubernetes", "swarm", or "off" (a single daemon: it acts at once, elects nothing).
    leader_election: str = "auto"
    min_poll: float = 0.5  # the scheduler's resolution
    notify_env: Mapping[str, str] = field(default_factory=dict)  # GITOPS_NOTIFY_* of the daemon's environment
    notify_secrets: Path | None = None  # the directory that `{file: NAME}` in notifications: reads
    # Who may sign the revisions applied (--verify-ssh, --verify-gpg); empty: not verified, unless
    # gitops.yaml says verify.required (then every revision is refused).
    signers: engine.Signers = field(default_factory=engine.Signers)
    tools: engine.Tools = field(default_factory=engine.Tools)  # helm (--helm) and the chart cache


@dataclass
class AppRuntime:
    """What the daemon knows of one app between reconciles (shown by the status API)."""

    name: str
    backend: str = ""
    target: str = ""
    sync: str = "Unknown"  # Synced / OutOfSync / Unknown
    health: str = "Unknown"
    revision: str = ""  # the revision last reconciled
    applied: str = ""  # the revision the target has (last release)
    result: str = ""  # synced | applied | rolled-back | failed | held | out-of-sync | waiting | error
    message: str = ""
    last_reconcile: str = ""  # wall clock, ISO
    next_due: float = 0.0  # monotonic
    reconciled_once: bool = False
    failures: int = 0
    heals: int = 0  # self-heals in a row (drift that keeps coming back)
    not_before: float = 0.0  # monotonic: a change seen brings the next reconcile no earlier than this
    healing: bool = False  # next_due was brought forward by a change seen: heal, do not check git for it
    held_revision: str = ""  # waiting for a commit newer than this one
    deploying: str = ""  # a revision this daemon applies or applied, not yet announced deployed
    problems: list[str] = field(default_factory=list)
    status: engine.AppStatus | None = None  # of the last reconcile: its plan and objects (the app page)
    failing: str = ""  # a rollout failed and is being rolled back: reported (Degraded) until the reconcile ends
    promotion: str = ""  # promote_from: the revision promoted and how far behind git it is
    recheck_in: float | None = None  # promote_from: a newer revision may be promoted after this long

    def to_json(self, clock: Clock) -> dict[str, Any]:
        return {
            "app": self.name, "backend": self.backend, "target": self.target, "sync": self.sync,
            "health": "Degraded" if self.failing else self.health, "revision": self.revision, "applied": self.applied,
            "result": "failed" if self.failing else self.result, "message": self.failing or self.message,
            "last_reconcile": self.last_reconcile,
            "next_in_seconds": max(0.0, round(self.next_due - clock.monotonic(), 1)),
            "held_revision": self.held_revision, "problems": self.problems,
            "waiting": self.message if self.result == "waiting" and not self.failing else "",
            "promotion": self.promotion,
        }


class Daemon:
    def __init__(self, options: Options, *, log: Log | None = None, metrics: Metrics | None = None,
                 clock: Clock = SYSTEM, stop: threading.Event | None = None, notifier: Notifier | None = None) -> None:
        self.options = options
        self.log = log or Log()
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.notifier = notifier or Notifier(log=self.log, metrics=self.metrics, clock=clock,
                                             secrets=Secrets(options.notify_env, options.notify_secrets))
        self.stop = stop or threading.Event()
        self.wake = threading.Event()  # a webhook or a manual sync: check the repository now
        self.session = engine.Session()
        self.apps: dict[str, AppRuntime] = {}
        self.workspace: engine.Workspace | None = None
        self.git_error = ""
        self.config_error = ""  # the newest revision's gitops.yaml does not validate
        self.signature_error = ""  # the newest revision is refused: not signed by an allowed signer
        self._refused: tuple[str, str] | None = None  # that revision, and why (each app's result says it)
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._seen_running: set[str] = set()  # apps whose objects changed while they reconciled
        self._cancel: dict[str, threading.Event] = {}  # per running app: a newer revision arrived
        self._watchers: dict[str, tuple[threading.Event, frozenset[ResourceKey]]] = {}  # per app: drift watch
        self._forced: set[str] = set()
        self._rollbacks: dict[str, str] = {}  # app -> revision: a roll back asked for (the status page)
        self._fetch_due = 0.0
        self._git_failures = 0
        self._bad_config = ""  # a revision whose gitops.yaml does not validate: not fetched again
        self._random = random.Random()  # noqa: S311 (jitter, not security)
        self.leading = threading.Event()  # this daemon holds its shard's leader lease
        self.leader_name = leader_name(options)

    # -- what the HTTP side asks --------------------------------------------------------------

    def trigger(self, app: str | None = None) -> None:
        """Check the repository now (a webhook), or reconcile one app now (a manual sync)."""
        with self._lock:
            if app is not None:
                self._forced.add(app)
            self._fetch_due = 0.0
        self.wake.set()

    def request_rollback(self, app: str, revision: str) -> None:
        """Roll the app back to a recorded release, as the app's next reconcile (never beside one);
        the repository's revision is then held until a newer commit."""
        with self._lock:
            self._rollbacks[app] = revision
        self.trigger(app)

    def view(self, name: str) -> tuple[AppRuntime, engine.Workspace | None] | None:
        """A copy of what the daemon knows of one app, and the revision it works on (the app page)."""
        with self._lock:
            runtime = self.apps.get(name)
            return None if runtime is None else (replace(runtime, problems=list(runtime.problems)), self.workspace)

    def ready(self) -> bool:
        """Leading, and every app reconciled once (a standby is not ready: only the leader acts)."""
        with self._lock:
            return self.leading.is_set() and all(a.reconciled_once for a in self.apps.values())

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.apps[name].to_json(self.clock) for name in sorted(self.apps)]

    def app_detail(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            runtime = self.apps.get(name)
            ws = self.workspace
            if runtime is None:
                return None
            detail = runtime.to_json(self.clock)
        if ws is not None:
            try:
                state = engine.history(ws, name, session=self.session)
                detail["releases"] = [{k: v for k, v in r.to_json().items() if k != "manifests"}
                                      for r in state.releases]
                detail["bad_revisions"] = list(state.bad_revisions)
            except GitopsError as exc:
                detail["history_error"] = str(exc)
        return detail

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Reconcile until the stop signal is set; then finish what runs and return."""
        self.log("daemon-start", repo=engine.repository_identity(self.options.repo), ref=self.options.ref or "HEAD",
                 workers=self.options.workers, holder=self.options.holder)
        leadership = threading.Thread(target=self._lead, name="leader", daemon=True)
        leadership.start()
        self.notifier.start()
        with ThreadPoolExecutor(max_workers=max(1, self.options.workers), thread_name_prefix="reconcile") as pool:
            while not self.stop.is_set():
                self._tick(pool.submit)
                self.wake.wait(timeout=self._sleep_for())
                self.wake.clear()
            self.log("daemon-stopping", running=sorted(self._running))
        leadership.join(timeout=30)
        with self._lock:
            watchers, self._watchers = list(self._watchers.values()), {}
        for stop, _ in watchers:
            stop.set()
        self.session.close()
        self.notifier.close()
        self.log("daemon-stopped")

    def _sleep_for(self) -> float:
        now = self.clock.monotonic()
        with self._lock:
            due = [a.next_due for a in self.apps.values() if a.name not in self._running]
        nearest = min([*due, self._fetch_due]) if due else self._fetch_due
        return min(max(self.options.min_poll, nearest - now), 5.0)

    def _tick(self, submit: Callable[..., Any]) -> None:
        now = self.clock.monotonic()
        with self._lock:
            # An app due by its interval (or a manual sync) looks at the repository first; one due
            # because its objects changed heals at the revision it has: a drift never brings in a
            # commit that neither the poll nor a webhook asked for.
            due_apps = [a.name for a in self.apps.values()
                        if (a.next_due <= now and not a.healing) or a.name in self._forced]
            check = not self.apps or bool(due_apps) or self._fetch_due <= now
        if check:
            self._check_repository(now)
        with self._lock:
            if self.workspace is None or not self.leading.is_set():
                return
            now = self.clock.monotonic()
            due = [(a.name, a.name in self._forced) for a in self.apps.values()
                   if (a.next_due <= now or a.name in self._forced) and a.name not in self._running]
            for name, _ in due:
                self.apps[name].healing = False
                self._running.add(name)
                self._forced.discard(name)
                self._cancel[name] = threading.Event()
            ws = self.workspace
        for name, forced in due:
            submit(self._reconcile_guarded, name, ws, forced)

    def _check_repository(self, now: float) -> None:
        """One remote check; a fetch (into a work tree of that revision) only when it moved."""
        started = time.perf_counter()
        try:
            revision = engine.remote_revision(self.options.repo, self.options.ref)
            self.metrics.git_seconds.labels("ls-remote").observe(time.perf_counter() - started)
            with self._lock:
                current = self.workspace.revision if self.workspace else None
            if revision != current and revision != self._bad_config:
                started = time.perf_counter()
                try:
                    ws = engine.open_revision(self.options.repo, revision, self.options.cache_dir,
                                              signers=self.options.signers, tools=self.options.tools)
                except SignatureError as exc:
                    # Not fetched or verified again: every app stays at its last verified revision
                    # (drift still healed there) and says why, until a newer commit.
                    self._bad_config = revision
                    self._refuse(revision, f"revision {revision[:12]} refused: {exc}; waiting for a newer commit")
                except engine.ConfigError as exc:
                    # The revision's gitops.yaml does not validate: not a fault of git, and not
                    # worth fetching again. Every app keeps its last revision and waits for a newer one.
                    self._bad_config = revision
                    message = f"gitops.yaml of revision {revision[:12]} is invalid; waiting for a newer commit: {exc}"
                    with self._lock:
                        self.config_error = message
                        for runtime in self.apps.values():
                            runtime.problems = [message]
                    self.log("held", revision=revision, message=message)
                else:
                    self.metrics.git_seconds.labels("fetch").observe(time.perf_counter() - started)
                    self._adopt(ws)
                    self.config_error = ""
                    with self._lock:
                        self.signature_error, self._refused = "", None
                    self.log("revision", revision=revision, previous=current,
                             apps=[a.name for a in ws.settings.apps],
                             **({"signed_by": ws.signature.signer, "key": ws.signature.key} if ws.signature else {}))
            with self._lock:
                self.git_error = ""
                self._git_failures = 0
                self._fetch_due = now + self._poll_interval()
        except GitopsError as exc:
            self.metrics.git_errors.inc()
            with self._lock:
                self.git_error = str(exc)
                self._git_failures += 1
                delay = _backoff(self._git_failures)
                self._fetch_due = now + delay
                for runtime in self.apps.values():
                    runtime.problems = [f"repository: {exc}"]
            self.log("git-error", error=str(exc), retry_in=round(delay, 1))

    def _refuse(self, revision: str, message: str) -> None:
        """The newest revision is not signed by an allowed signer: held for every app (its result
        and message say so, at each reconcile of the last verified revision, until a newer commit)."""
        self.log("held", revision=revision, message=message)
        with self._lock:
            self.signature_error, self._refused = message, (revision, message)
            runtimes = list(self.apps.values())
            for runtime in runtimes:
                runtime.held_revision, runtime.result, runtime.message = revision, "held", message
                runtime.problems = [message, *(p for p in runtime.problems if p != message)]
        for runtime in runtimes:
            self.metrics.reconciles.labels(runtime.name, "held").inc()
            self.notifier.emit(self._event("sync-failed", runtime.name, revision, message, result="held"))

    def _poll_interval(self) -> float:
        ws = self.workspace
        if ws is None or not ws.settings.apps:
            return 60.0
        return min(app.sync.interval_seconds for app in ws.settings.apps)

    def _adopt(self, ws: engine.Workspace) -> None:
        """A new revision: every app of it is due now; apps that left gitops.yaml are forgotten."""
        mine = [app for app in ws.settings.apps if in_shard(app.name, self.options.shard, self.options.shards)]
        self.notifier.configure(ws.settings.notifications)
        names = {app.name for app in mine}
        with self._lock:
            self.workspace = ws
            for app in mine:
                runtime = self.apps.setdefault(app.name, AppRuntime(app.name))
                runtime.backend = app.backend
                runtime.next_due = 0.0
                if app.name in self._running:
                    # Its older revision is still applying or being watched: abandon that wait
                    # (the release stays in progress) and apply this one next.
                    self._cancel[app.name].set()
            for name in [n for n in self.apps if n not in names]:
                del self.apps[name]

    def _reconcile_guarded(self, name: str, ws: engine.Workspace, forced: bool = False) -> None:
        try:
            self._reconcile(name, ws, forced)
        except Exception as exc:  # never let one app's surprise stop the daemon
            self.log("reconcile-crash", app=name, error=f"{type(exc).__name__}: {exc}")
            self._finish(name, ws.revision or "", "error", f"{type(exc).__name__}: {exc}", retry=True)
        finally:
            self._done_running(name)
            self.wake.set()

    def _done_running(self, name: str) -> None:
        """The app's reconcile ended. A change seen while it ran may be its own write, or another
        hand's (a delete between its plan and its end): it is looked at again shortly, never lost
        until the next interval."""
        with self._lock:
            self._running.discard(name)
            self._cancel.pop(name, None)
            seen = name in self._seen_running
            self._seen_running.discard(name)
        if seen:
            self._changed(name, None)

    def _reconcile(self, name: str, ws: engine.Workspace, forced: bool = False) -> None:
        started = time.perf_counter()
        app = ws.settings.app(name)
        if app.promote_from is not None:
            promoted = self._promoted(name, ws, app, started)
            if promoted is None:
                return
            ws, app = promoted
        revision = ws.revision or ""
        with self._lock:
            runtime = self.apps.get(name)
            rollback_to = self._rollbacks.pop(name, None)
            if runtime is None:
                return
            if rollback_to is None and runtime.held_revision and runtime.held_revision == revision and not forced:
                runtime.next_due = self.clock.monotonic() + app.sync.interval_seconds
                return
        if rollback_to is not None:
            self._roll_back(name, ws, rollback_to)
            return
        self.log("reconcile", app=name, revision=revision)
        try:
            api_versions = (engine.api_versions_for(app, engine.backend_for(ws, app, self.session))
                            if app.helm is not None else frozenset[str]())
            resources, _ = engine.render_app(ws, app, self.options.env, api_versions=api_versions,
                                              sops=engine.sops_tool(ws.settings, self.session.environ))
        except engine.ValidationFailed as exc:
            self._hold(name, revision, f"revision {revision[:12]} does not validate; waiting for a newer commit: "
                       f"{exc}")
            return
        except GitopsError as exc:  # the target cannot say which API versions it serves
            self.metrics.reconciles.labels(name, "failed").inc()
            self._finish(name, revision, "failed", str(exc), retry=True, started=started)
            return
        try:
            backend = engine.backend_for(ws, app, self.session)
            state = backend.load_state()
            app_revision = engine.revision_of(ws, app, resources)
            with self._lock:
                runtime.target = backend.target_id()
                runtime.applied = state.current.revision if state.current else ""
            if app_revision in state.bad_revisions:
                self._hold(name, revision, f"revision {revision[:12]} failed before and is marked bad; "
                           "waiting for a newer commit")
                return
            app_plan, _ = deploy.plan_app(backend, resources, app_revision, prune=app.sync.prune,
                                          policy=engine.policy_for(app))
            if not app_plan.ok:
                # A prune guard refused it (a cascade, data, a mass delete, an empty render): a
                # daemon never deletes that on its own. It waits for a newer commit.
                reasons = "; ".join(b.message for b in app_plan.blocked)
                self._hold(name, revision, f"revision {revision[:12]} refused by a prune guard: {reasons}; "
                           "waiting for a newer commit (or apply it by hand with the override)")
                return
            self._watch(name, ws, app, frozenset(c.key for c in app_plan.changes))
            for change in app_plan.changes:
                if change.action is not Action.NOOP:
                    self.log.debug("plan-change", app=name, revision=revision, **change.to_json())
            changes = sum(1 for c in app_plan.changes if c.action is not Action.NOOP)
            current = state.current
            new_revision = current is None or current.revision != app_revision
            unfinished = current is not None and not new_revision and current.outcome.value == "in-progress"
            if not changes and not new_revision and not unfinished:
                self._record_status(name, engine.status_of(app, backend, state, app_plan))
                self.metrics.reconciles.labels(name, "synced").inc()
                with self._lock:
                    runtime.heals = 0
                    runtime.not_before = 0.0
                self._finish(name, revision, "synced", "", retry=False, started=started)
                return
            drift = not new_revision and not unfinished
            if drift:
                self.metrics.drift.labels(name).inc()
                self.log("drift", app=name, revision=revision, changes=changes)
                if not (runtime.result == "out-of-sync" and runtime.revision == revision):  # not told yet
                    self.notifier.emit(self._event("drift-detected", name, revision, f"{changes} change(s)"))
            if not app.sync.auto or (drift and not app.sync.self_heal):
                why = ("sync.auto is off" if not app.sync.auto else "self_heal is off")
                with self._lock:
                    runtime.sync = "OutOfSync"
                self._record_status(name, engine.status_of(app, backend, state, app_plan))
                self.metrics.reconciles.labels(name, "out-of-sync").inc()
                self._finish(name, revision, "out-of-sync", f"{changes} change(s) not applied: {why}", retry=False,
                             started=started)
                return
            waiting = engine.dependency_wait(ws, app, env=self.options.env, session=self.session)
            if waiting:
                # An app it depends on is not healthy at this revision yet: look again shortly.
                with self._lock:
                    runtime.sync = "OutOfSync"
                self._record_status(name, engine.status_of(app, backend, state, app_plan))
                self.metrics.reconciles.labels(name, "waiting").inc()
                self._finish(name, revision, "waiting", waiting, retry=False, started=started, delay=DEPENDENCY_POLL)
                return
            if not drift:
                with self._lock:
                    runtime.deploying = revision
                self.notifier.emit(self._event("sync-started", name, revision, f"{changes} change(s)"))
            apply_started = time.perf_counter()
            with self._lock:
                runtime.sync = "OutOfSync"  # until the apply and its rollout are done (the status page)
            cancel = self._cancel.get(name) or threading.Event()
            options = deploy.Options(holder=self.options.holder, lock_wait=self.options.lock_wait,
                                     stopping=lambda: self.stop.is_set() or cancel.is_set()
                                     or not self.leading.is_set(), clock=self.clock)
            [result] = engine.apply(ws, [name], options=options, env=self.options.env, session=self.session,
                                    keep_going=False, on_event=lambda e: self._on_event(name, e))
            self.metrics.apply_seconds.labels(name).observe(time.perf_counter() - apply_started)
        except StoppedError as exc:
            # Superseded by a newer revision, or the daemon is stopping: the next reconcile
            # completes (or supersedes) the release left in progress.
            self.metrics.reconciles.labels(name, "interrupted").inc()
            self._finish(name, revision, "interrupted", str(exc), retry=False, started=started, delay=0.0)
            return
        except GitopsError as exc:
            self.metrics.reconciles.labels(name, "failed").inc()
            if not runtime.failures:  # the first of a streak of retried failures
                self.notifier.emit(self._event("sync-failed", name, revision, str(exc), result="failed"))
            self._finish(name, revision, "failed", str(exc), retry=True, started=started)
            return
        outcome = result.outcome
        if outcome == "applied":
            self.metrics.syncs.labels(name).inc()
            if drift:
                self.metrics.self_heals.labels(name).inc()
        if outcome == "rolled-back":
            self.metrics.rollbacks.labels(name).inc()
        self.metrics.reconciles.labels(name, outcome).inc()
        self._observe(name, ws, outcome, result.error)
        if outcome == "applied" and drift:
            self.notifier.emit(self._event("drift-healed", name, revision, result="applied"))
        elif outcome in ("rolled-back", "failed") and not (outcome == "failed" and runtime.failures):
            trigger = "rolled-back" if outcome == "rolled-back" else "sync-failed"
            self.notifier.emit(self._event(trigger, name, revision, result.error, result=outcome))
        if outcome in ("rolled-back", "failed") and result.release is not None:
            self._hold(name, revision, f"revision {revision[:12]} {outcome}: {result.error}; waiting for a newer "
                       "commit", result=outcome)
            return
        heal_delay = None
        if drift:
            # Look again shortly; drift that keeps coming back (another controller owns the field)
            # is re-applied less and less often, never in a tight loop.
            with self._lock:
                runtime.heals += 1
                heal_delay = min(SELF_HEAL_DELAY * 2 ** (runtime.heals - 1), BACKOFF_MAX)
                runtime.not_before = self.clock.monotonic() + heal_delay
        self._finish(name, revision, outcome, result.error, retry=outcome == "failed", started=started,
                     delay=heal_delay)

    def _promoted(self, name: str, ws: engine.Workspace, app: config.App,
                  started: float) -> tuple[engine.Workspace, config.App] | None:
        """A promoted app reconciles at the newest revision its ``promote_from`` app ran
        successfully (a work tree of that revision); None when there is none yet: it waits."""
        try:
            there, defined, promoted = engine.promoted_workspace(ws, app, session=self.session, now=self.clock.now())
        except GitopsError as exc:
            self.metrics.reconciles.labels(name, "failed").inc()
            self._finish(name, ws.revision or "", "failed", str(exc), retry=True, started=started)
            return None
        assert promoted is not None
        with self._lock:
            runtime = self.apps.get(name)
            if runtime is not None:
                runtime.promotion = promoted.summary() if promoted.revision else ""
                runtime.recheck_in = promoted.recheck_in
        if promoted.revision is None:
            with self._lock:
                if runtime is not None:
                    runtime.sync = "OutOfSync"
            self.metrics.reconciles.labels(name, "waiting").inc()
            # A revision soaking in the source is promotable then; the source's own applies wake it sooner.
            soak = promoted.recheck_in
            delay = DEPENDENCY_POLL if soak is None else min(max(soak, 0.0) + DRIFT_DELAY, app.sync.interval_seconds)
            self._finish(name, ws.revision or "", "waiting", promoted.waiting, retry=False, started=started,
                         delay=delay)
            return None
        return there, defined

    def _roll_back(self, name: str, ws: engine.Workspace, to: str) -> None:
        revision = ws.revision or ""
        self.log("manual-rollback", app=name, to=to)
        options = deploy.Options(holder=self.options.holder, lock_wait=self.options.lock_wait,
                                 stopping=lambda: self.stop.is_set() or not self.leading.is_set())
        try:
            result = engine.rollback(ws, name, to_revision=to, options=options, session=self.session,
                                     on_event=lambda e: self._on_event(name, e))
        except GitopsError as exc:
            self._finish(name, revision, "failed", f"roll back to {to[:12]} failed: {exc}", retry=False)
            return
        self.metrics.rollbacks.labels(name).inc()
        self._observe(name, ws, result.outcome, result.error)
        self._hold(name, revision, f"rolled back by hand to revision {to[:12]} ({result.outcome}"
                   f"{': ' + result.error if result.error else ''}); revision {revision[:12]} is held until a "
                   "newer commit", result=result.outcome)

    def _lead(self) -> None:
        """Leader election: hold the lock of a pseudo-app named after the repository and the shard
        (a Lease on Kubernetes, the swarm's config lock otherwise) while acting; a standby retries.
        A leader that stops renewing (killed) loses it after ``leader_ttl``; SIGTERM releases it."""
        if self.options.leader_election == "off":
            self.leading.set()
            self.metrics.leader.set(1)
            self.log("leader", lease="off")
            return
        failures = 0
        while not self.stop.is_set():
            with self._lock:
                ws = self.workspace
            if ws is None:
                self.clock.wait(self.stop, 0.5)
                continue
            try:
                backend = engine.coordination_backend(ws, self.leader_name, self.session,
                                                      prefer=self.options.leader_election)
                with backend.lock(self.options.holder, self.options.leader_ttl, 1.0, stopping=self.stop.is_set,
                                  clock=self.clock) as lease:
                    self.leading.set()
                    self.metrics.leader.set(1)
                    self.log("leader", lease=self.leader_name, holder=self.options.holder)
                    self.wake.set()
                    while not self.stop.is_set() and not lease.lost:
                        self.clock.wait(self.stop, 0.5)
                    if lease.lost:
                        self.log("leader-lost", lease=self.leader_name)
                failures = 0
            except LockedError:
                failures = 0  # another daemon leads this shard
            except StoppedError:
                pass  # the daemon is stopping; the loop ends
            except GitopsError as exc:
                failures += 1
                self.log("leader-error", error=str(exc), retry_in=round(min(_backoff(failures), 30.0), 1))
            finally:
                if self.leading.is_set():
                    self.leading.clear()
                    self.metrics.leader.set(0)
            self.clock.wait(self.stop, min(_backoff(failures), 30.0) if failures else 1.0)

    def _watch(self, name: str, ws: engine.Workspace, app: config.App, keys: frozenset[ResourceKey]) -> None:
        """Keep one watch of the app's objects on its target (drift seen within seconds, not at
        the next poll); a new set of objects replaces the watch."""
        with self._lock:
            current = self._watchers.get(name)
            if current is not None and current[1] == keys:
                return
            if current is not None:
                current[0].set()
            stop = threading.Event()
            self._watchers[name] = (stop, keys)
            # A change between this reconcile's plan and the new watch's start is seen by no
            # watch: look once more when the reconcile ends.
            self._seen_running.add(name)
        backend = engine.backend_for(ws, app, self.session)
        threading.Thread(target=backend.watch, args=(keys, lambda key: self._changed(name, key), stop),
                         name=f"watch-{name}", daemon=True).start()

    def _changed(self, name: str, key: ResourceKey | None) -> None:
        """An object of the app changed on the target: reconcile soon (a self-heal still waits for
        its backoff). A change seen while the app reconciles is kept for when it ends (``key``
        None): it may be its own write, but a plan that finds nothing to do is cheap."""
        now = self.clock.monotonic()
        with self._lock:
            runtime = self.apps.get(name)
            if runtime is None:
                return
            if name in self._running:
                self._seen_running.add(name)
                return
            due = max(now + DRIFT_DELAY, runtime.not_before)
            if due >= runtime.next_due:
                return
            runtime.next_due, runtime.healing = due, True
        self.log("change-seen", app=name, object=str(key) if key else "(while reconciling)",
                 reconcile_in=round(due - now, 1))
        self.wake.set()

    def _on_event(self, app: str, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in ("apply", "failed", "rollback", "done", "resume", "no-op"):
            fields = {k: v for k, v in event.items() if k not in ("event", "app")}
            self.log(f"apply-{kind}", app=app, **fields)
        if kind == "failed":
            with self._lock:
                runtime = self.apps.get(app)
                if runtime is not None:
                    revision = str(event.get("revision", ""))[:12]
                    runtime.failing = f"rollout of revision {revision} failed: {event.get('why')}"

    def _observe(self, name: str, ws: engine.Workspace, result: str, message: str) -> None:
        """Sync and health as `gitops status` reports them, for the API and the gauges."""
        try:
            [status] = engine.status(ws, [name], env=self.options.env, session=self.session)
        except GitopsError as exc:
            with self._lock:
                runtime = self.apps[name]
                runtime.sync, runtime.health, runtime.problems = "Unknown", "Unknown", [str(exc)]
            return
        self._record_status(name, status)

    def _record_status(self, name: str, status: engine.AppStatus) -> None:
        with self._lock:
            runtime = self.apps[name]
            degraded = status.health == "Degraded" and runtime.health != "Degraded"
            runtime.sync, runtime.health = status.sync, status.health
            runtime.problems = [*(e for e in (self.config_error, self.signature_error) if e), *status.problems]
            runtime.status = status
            runtime.target = status.target
            runtime.applied = status.applied.revision if status.applied else ""
        self.metrics.synced.labels(name).set({"Synced": 1, "OutOfSync": 0}.get(status.sync, -1))
        self.metrics.healthy.labels(name).set(1 if status.health == "Healthy" else 0)
        if degraded:
            self.notifier.emit(self._event("health-degraded", name, status.revision or "", "; ".join(status.problems)))

    def _hold(self, name: str, revision: str, message: str, *, result: str = "held") -> None:
        self.log("held", app=name, revision=revision, message=message)
        self.metrics.reconciles.labels(name, "held").inc()
        if result == "held":
            self.notifier.emit(self._event("sync-failed", name, revision, message, result="held"))
        with self._lock:
            runtime = self.apps.get(name)
            if runtime is None:
                return
            runtime.held_revision = revision
            if result == "held":
                runtime.sync = "OutOfSync"
        self._finish(name, revision, result, message, retry=False)

    def _finish(self, name: str, revision: str, result: str, message: str, *, retry: bool,
                started: float | None = None, delay: float | None = None) -> None:
        with self._lock:
            runtime = self.apps.get(name)
            ws = self.workspace
            if runtime is None or ws is None:
                return
            interval = next((a.sync.interval_seconds for a in ws.settings.apps if a.name == name), 60.0)
            runtime.revision = revision
            runtime.result = result
            runtime.message = message
            runtime.failing = ""
            runtime.last_reconcile = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            runtime.reconciled_once = True
            if revision != runtime.held_revision:
                runtime.held_revision = ""
            if self._refused is not None and result == "synced":
                # In sync with the last verified revision; the newest one stays refused.
                runtime.held_revision, result, message = self._refused[0], "held", self._refused[1]
                runtime.result, runtime.message = result, message
            deployed = (result in ("applied", "synced") and runtime.deploying == revision and runtime.sync == "Synced"
                        and runtime.health == "Healthy")
            if deployed or revision != runtime.deploying or result in ("rolled-back", "held") or (
                    result == "failed" and not retry):
                runtime.deploying = ""  # announced once; or superseded, rolled back, held
            if retry:
                runtime.failures += 1
                delay = _backoff(runtime.failures)
            else:
                runtime.failures = 0
                if delay is None:
                    delay = interval + self._random.uniform(0, min(interval * 0.1, 60.0))
                    if runtime.recheck_in is not None:  # a newer revision is promotable then
                        delay = min(delay, max(runtime.recheck_in, 0.0) + DRIFT_DELAY)
            runtime.next_due = self.clock.monotonic() + delay
            if result in ("applied", "rolled-back", "failed"):
                # Its release history changed: the apps promoted from it look again soon.
                soon = self.clock.monotonic() + DRIFT_DELAY
                for other in ws.settings.apps:
                    follower = self.apps.get(other.name)
                    if other.promote_from == name and follower is not None and other.name not in self._running:
                        follower.next_due = min(follower.next_due, soon)
        if started is not None:
            self.metrics.reconcile_seconds.labels(name).observe(time.perf_counter() - started)
        self.log("reconciled", app=name, revision=revision, result=result, message=message or None,
                 next_in=round(delay, 1))
        if deployed:
            self.notifier.emit(self._event("deployed", name, revision, result=result))

    def _event(self, trigger: str, name: str, revision: str, message: str = "", *, result: str = "") -> Event:
        """A notification of the app as the daemon knows it now."""
        with self._lock:
            runtime = self.apps.get(name) or AppRuntime(name)
            return Event(trigger, name, revision, result or runtime.result, message, runtime.sync, runtime.health,
                         runtime.backend, runtime.target, self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"))


def leader_name(options: Options) -> str:
    """The name of the shard's leader lease: the same for every daemon following this repository
    (and branch) with this sharding, whatever machine it runs on."""
    where = hashlib.sha256(f"{engine.repository_identity(options.repo)}\0{options.ref or ''}".encode()).hexdigest()[:10]
    return f"daemon-{where}-{options.shard}of{options.shards}"


def in_shard(app: str, shard: int, shards: int) -> bool:
    """Apps are spread over shards by a stable hash of their name."""
    return shards <= 1 or int(hashlib.sha256(app.encode()).hexdigest(), 16) % shards == shard


def _backoff(failures: int) -> float:
    return float(min(BACKOFF_FIRST * 2 ** max(0, failures - 1), BACKOFF_MAX))

