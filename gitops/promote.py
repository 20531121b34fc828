"""Promotion: the revision an app with ``promote_from`` may be applied at.

An app promoted from another (``web-prod`` from ``web-staging``) is applied only at a revision the
other app recorded as succeeded in its own target, and ran for at least ``promote_after`` there:
the newest such commit of the branch's history, not the git head. A revision the other app marked
bad (its rollout failed and it was rolled back), whose newest release failed, or that it was
rolled back from by hand, is never promoted.

A commit the other app has no release of, because its own files did not change (only the
production overlay did, say), is judged as the older commit whose release it still runs: the
caller says whether the other app's files differ between two commits (``unchanged``).

This module is pure: it judges a release history (:class:`~gitops.model.releases.AppState`) and
a list of commits at a given time; the engine reads them (``engine.promotion``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gitops.model.releases import AppState, Outcome, Release

SHOWN = 5  # commits ahead of the promoted one named in the message
COVER_CHECKS = 50  # commits without a release of their own looked up through an older one, at most

Unchanged = Callable[[str, str], bool]  # (older, newer): the source app's files are the same at both


@dataclass(frozen=True)
class Step:
    """A commit newer than the promoted one, and why it is not promoted."""

    revision: str
    verdict: str


@dataclass(frozen=True)
class Promotion:
    app: str
    source: str  # the app it is promoted from
    revision: str | None  # the newest promotable commit; None: none (the app waits)
    age_seconds: float = 0.0  # how long it has run (or ran) successfully in the source app
    ahead: tuple[Step, ...] = ()  # newer commits of git, newest first (at most SHOWN)
    ahead_count: int = 0
    recheck_in: float | None = None  # a newer commit is promotable after this many seconds (soaking)
    via: str = ""  # the older commit whose release in the source covers ``revision`` (files unchanged)

    @property
    def waiting(self) -> str:
        """Why the app waits ("waiting for a revision of `web-staging` to succeed ..."), or ""."""
        if self.revision is not None:
            return ""
        newest = f" (newest: {self.ahead[0].revision[:7]} {self.ahead[0].verdict})" if self.ahead else ""
        return f"waiting for a revision of `{self.source}` to succeed{newest}"

    def summary(self) -> str:
        """One line for plan, status and the daemon: what is promoted and how far behind git it is."""
        if self.revision is None:
            return self.waiting
        via = f" as {self.via[:7]}; only {self.app}'s files changed since" if self.via else ""
        text = f"promoting {self.revision[:7]} from {self.source} (succeeded {ago(self.age_seconds)} ago{via})"
        if not self.ahead_count:
            return text + "; it is the newest commit"
        steps = ", ".join(f"{s.revision[:7]} ({s.verdict})" for s in self.ahead)
        more = ", ..." if self.ahead_count > len(self.ahead) else ""
        commits = "commit" if self.ahead_count == 1 else "commits"
        return f"{text}; git is {self.ahead_count} {commits} ahead: {steps}{more}"


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class _Record:
    """What the source app's history says of one revision."""

    state: str = ""  # good | failed | in-progress | rolled-back-from
    message: str = ""
    ran: float = 0.0  # the longest successful run, seconds
    running: bool = False  # that run goes on (the revision is the source's current release)


def _records(state: AppState, now: datetime) -> dict[str, _Record]:
    records: dict[str, _Record] = {}
    releases: Sequence[Release] = state.releases
    for index, release in enumerate(releases):
        record = records.setdefault(release.revision, _Record())
        if release.outcome in (Outcome.SUCCEEDED, Outcome.ROLLED_BACK):
            if release.outcome is Outcome.ROLLED_BACK and index > 0:
                previous = releases[index - 1]
                before = records.get(previous.revision)
                if previous.revision != release.revision and before is not None and before.state == "good":
                    before.state, before.message = "rolled-back-from", ""
            record.state, record.message = "good", ""
            began = _time(release.finished)
            following = releases[index + 1] if index + 1 < len(releases) else None
            ended = _time(following.started) if following is not None else now
            if began is not None and ended is not None:
                record.ran = max(record.ran, (ended - began).total_seconds())
            record.running = following is None
        elif release.outcome is Outcome.FAILED:
            record.state, record.message, record.running = "failed", release.message, False
        else:
            record.state, record.running = "in-progress", False
    for revision in state.bad_revisions:
        record = records.setdefault(revision, _Record())
        if record.state != "failed":
            record.state, record.message = "failed", "marked bad"
    return records


def choose(app: str, source: str, state: AppState, commits: Sequence[str], *, promote_after: float,
           now: datetime, unchanged: Unchanged | None = None) -> Promotion:
    """The newest of ``commits`` (the branch's history, newest first) that ``source`` ran
    successfully for at least ``promote_after`` seconds (``state``: its release history)."""
    records = _records(state, now)
    ahead: list[Step] = []
    soonest: float | None = None
    checks = 0
    for position, commit in enumerate(commits):
        via = ""
        record = records.get(commit)
        if record is None and unchanged is not None and checks < COVER_CHECKS:
            older = next((c for c in commits[position + 1:] if c in records), None)
            checks += 1
            if older is not None and unchanged(older, commit):
                record, via = records[older], older
        verdict = _verdict(record, source, promote_after)
        if verdict is None and record is not None:
            return Promotion(app, source, commit, record.ran, tuple(ahead[:SHOWN]), len(ahead), soonest, via)
        if record is not None and record.state == "good" and record.running:
            wait = promote_after - record.ran
            soonest = wait if soonest is None else min(soonest, wait)
        ahead.append(Step(commit, (verdict or "") + (f", as {via[:7]}" if via else "")))
    return Promotion(app, source, None, 0.0, tuple(ahead[:SHOWN]), len(ahead), soonest)


def _verdict(record: _Record | None, source: str, promote_after: float) -> str | None:
    """Why a revision is not promoted; None when it is."""
    if record is None:
        return f"not applied in {source}"
    if record.state == "failed":
        return f"failed in {source}" + (f": {record.message[:80]}" if record.message else "")
    if record.state == "in-progress":
        return f"being applied in {source}"
    if record.state == "rolled-back-from":
        return f"rolled back in {source}"
    if record.ran >= promote_after:
        return None
    if record.running:
        return f"succeeded in {source} {ago(record.ran)} ago, promoted after {ago(promote_after)}"
    return f"ran {ago(record.ran)} in {source} before it was replaced, less than {ago(promote_after)}"
