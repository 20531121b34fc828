"""Human views of plans and deploy results (Terraform-like), and line-oriented progress events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from gitops.model.plans import MASK, Action, AppPlan, FieldChange, Plan, user_wave

Style = Callable[[str, str], str]

COLORS = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red"}
MAX_VALUE = 120


def plain(text: str, _color: str) -> str:
    return text


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def field_line(change: FieldChange) -> str:
    if change.sensitive:
        if change.absent_before:
            return f"+ {change.path}: {MASK}"
        if change.absent_after:
            return f"- {change.path}: {MASK}"
        return f"~ {change.path}: {MASK} changed"
    if change.absent_before:
        return f"+ {change.path}: {_value(change.after)}"
    if change.absent_after:
        return f"- {change.path}: {_value(change.before)}"
    return f"~ {change.path}: {_value(change.before)} → {_value(change.after)}"


def app_plan_text(plan: AppPlan, style: Style = plain, *, verbose: bool = False) -> str:
    lines = [style(f"app {plan.app}", "bold") + f" ({plan.target}) at revision {plan.revision[:12] or '-'}"]
    if plan.promotion:
        lines.append(f"  {plan.promotion}")
    shown = [c for c in plan.changes if c.action is not Action.NOOP or verbose]
    if not shown:
        lines.append("  no changes: the target matches the repository")
    waves = {user_wave(c.wave) for c in shown}
    current_wave: int | None = None
    for change in shown:
        if len(waves) > 1 and user_wave(change.wave) != current_wave and change.action is not Action.DELETE:
            current_wave = user_wave(change.wave)
            lines.append(style(f"  wave {current_wave}:", "bold") + " (applied and healthy before the next)")
        elif len(waves) > 1 and change.action is Action.DELETE and current_wave is not None:
            current_wave = None
            lines.append(style("  prune:", "bold") + " (later waves first)")
        symbol = change.action.symbol
        head = f"  {symbol:>3} {change.key}"
        detail = change.action.value + (f" ({change.reason})" if change.reason else "")
        if change.origin and change.action is not Action.DELETE:
            detail += f"  [{change.origin}]"
        lines.append(style(head, COLORS.get(change.action, "")) + f"  {detail}")
        if change.action in (Action.UPDATE, Action.REPLACE):
            lines.extend(f"        {field_line(f)}" for f in change.fields)
        if change.cascade:
            lines.append(style(f"        also deletes {len(change.cascade)} object(s) with it:", "red"))
            lines.extend(f"          - {k}" for k in change.cascade)
    for kept in plan.kept:
        detail = f": {kept.detail}" if kept.detail else ""
        lines.append(style(f"    = {kept.key}", "cyan") + f"  kept ({kept.reason.value}){detail}")
    counts = plan.counts()
    lines.append("")
    lines.append(
        f"Plan: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.REPLACE]} to replace, {counts[Action.DELETE]} to delete, "
        f"{counts[Action.NOOP]} unchanged" + (f", {len(plan.kept)} kept." if plan.kept else ".")
    )
    if plan.overrides:
        lines.append("Prune guards lifted for this run: " + ", ".join(g.value for g in plan.overrides)
                     + " (recorded in the release)")
    if plan.blocked:
        lines.append(style(f"REFUSED: app {plan.app} will not be applied:", "red"))
        for block in plan.blocked:
            lines.append(f"  - {block.message}")
            if block.reason.value != "cascade" and block.objects:
                lines.extend(f"      - {k}" for k in block.objects[:20])
                if len(block.objects) > 20:
                    lines.append(f"      ... and {len(block.objects) - 20} more")
    return "\n".join(lines)


def plan_text(plan: Plan, style: Style = plain, *, verbose: bool = False) -> str:
    return "\n\n".join(app_plan_text(p, style, verbose=verbose) for p in plan.apps)


def event_text(event: dict[str, Any]) -> str | None:
    """One progress line for a terminal or a CI log; None for events not worth a line."""
    kind = event.get("event")
    app = event.get("app", "")
    if kind == "lock":
        return f"{app}: waiting for the lock" if event.get("waiting") else None
    if kind == "apply":
        return f"{app}: applying revision {str(event.get('revision', ''))[:12]} (release {event.get('release')})"
    if kind == "change":
        return f"{app}:   {event.get('action')} {event.get('object')}"
    if kind == "rollout":
        return f"{app}: watching the rollout of {event.get('objects')} object(s)"
    if kind == "progress":
        pending = event.get("pending") or []
        return f"{app}:   waiting for {', '.join(pending[:5])}{' ...' if len(pending) > 5 else ''}" if pending else None
    if kind == "hook-deleted":
        return f"{app}:   deleted {event.get('object')} (hook-{event.get('policy')})"
    if kind == "hook-delete-failed":
        return f"{app}:   could not delete {event.get('object')}: {event.get('why')}"
    if kind == "failed":
        return f"{app}: FAILED at revision {str(event.get('revision', ''))[:12]}: {event.get('why')}"
    if kind == "rollback":
        return f"{app}: rolling back to revision {str(event.get('to', ''))[:12]}"
    if kind == "done":
        return f"{app}: {event.get('outcome')}"
    return None


def result_text(result: Any) -> str:
    """The closing report of an apply or rollback (a gitops.deploy.Result)."""
    lines = []
    changes = result.changeset
    if result.outcome == "no-op":
        return f"{result.app}: no changes; revision {result.plan.revision[:12]} is applied"
    if changes is not None:
        lines.append(f"{result.app}: {len(changes.created)} created, {len(changes.configured)} updated, "
                     f"{len(changes.replaced)} replaced, {len(changes.deleted)} deleted")
        if changes.failed_deletes:
            lines.append(f"{result.app}: could not delete (kept in the inventory, retried next time): "
                         + ", ".join(str(k) for k in changes.failed_deletes))
    if result.rollout is not None and result.rollout.ok:
        lines.append(f"{result.app}: {result.rollout.summary()}")
    if result.outcome in ("failed", "rolled-back") and result.error:
        lines.append(f"{result.app}: rollout of revision {result.plan.revision[:12]} failed: {result.error}")
    if result.rollback is not None:
        back = result.rollback
        if back.outcome == "rolled-back" and back.plan.revision == "(none)":
            lines.append(f"{result.app}: removed what the failed first release created (there was no good release "
                         f"to return to); revision {result.plan.revision[:12]} is marked bad")
        elif back.outcome == "rolled-back":
            lines.append(f"{result.app}: rolled back to revision {back.plan.revision[:12]}: every object restored "
                         f"and healthy; revision {result.plan.revision[:12]} is marked bad")
        else:
            lines.append(f"{result.app}: ROLLBACK FAILED: {back.error}")
    lines.append(f"{result.app}: {_verdict(result)}")
    return "\n".join(lines)


def _verdict(result: Any) -> str:
    """The last line: after a rollback, both releases as `gitops history` lists them (the failed
    one, and the one that returned the app to a good revision)."""
    failed, back = result.release, result.rollback.release if result.rollback is not None else None
    if result.outcome == "rolled-back" and failed is not None and back is not None:
        return (f"rolled back: release {failed.number} (revision {failed.revision[:12]}) failed; "
                f"release {back.number} restored revision {back.revision[:12]}")
    outcome = str(result.outcome)
    verdict = {"applied": "applied", "rolled-back": "rolled back", "failed": "FAILED"}.get(outcome, outcome)
    if result.outcome == "failed" and failed is not None and back is not None:
        return f"FAILED: release {failed.number} failed; rollback release {back.number} failed too"
    return verdict + (f" (release {failed.number})" if failed is not None else "")


def status_text(statuses: list[Any]) -> str:
    rows = [("APP", "BACKEND", "SYNC", "HEALTH", "REVISION", "LAST RESULT")]
    notes: list[str] = []
    for st in statuses:
        last = st.applied
        when = "" if last is None else last.finished or last.started
        result = "-" if last is None else f"{last.outcome.value} (release {last.number}, {when})"
        applied = "-" if last is None else last.revision[:12]
        sync = st.sync + (f" ({st.changes} change(s))" if st.changes else "")
        rows.append((st.app, st.backend, sync, st.health, applied, result))
        notes.extend(f"  {st.app}: {p}" for p in st.problems[:10])
        notes.extend(f"  {st.app}: orphaned: {o}" for o in st.orphaned[:20])
        notes.extend(f"  {st.app}: next revision refused: {b}" for b in st.blocked[:5])
        if st.waiting:
            notes.append(f"  {st.app}: {st.waiting}")
        if st.promotion:
            notes.append(f"  {st.app}: {st.promotion}")
    text = _table(rows)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def daemon_status_text(apps: list[dict[str, Any]]) -> str:
    """`gitops status --server URL`: what the daemon knows of each app."""
    rows = [("APP", "BACKEND", "SYNC", "HEALTH", "REVISION", "LAST RESULT", "NEXT")]
    notes: list[str] = []
    for app in apps:
        when = app.get("last_reconcile") or "-"
        rows.append((str(app.get("app", "")), str(app.get("backend", "")), str(app.get("sync", "")),
                     str(app.get("health", "")), str(app.get("revision", ""))[:12] or "-",
                     f"{app.get('result') or '-'} ({when})", f"{app.get('next_in_seconds', 0):.0f}s"))
        if app.get("message"):
            notes.append(f"  {app.get('app')}: {app['message']}")
        if app.get("promotion"):
            notes.append(f"  {app.get('app')}: {app['promotion']}")
        notes.extend(f"  {app.get('app')}: {p}" for p in (app.get("problems") or [])[:10])
    text = _table(rows)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def history_text(state: Any) -> str:
    if not state.releases:
        return f"app {state.app}: no releases recorded"
    rows = [("RELEASE", "REVISION", "OUTCOME", "STARTED", "FINISHED", "OBJECTS", "KEPT", "OVERRIDES", "MESSAGE")]
    for r in reversed(state.releases):
        rows.append((str(r.number), r.revision[:20], r.outcome.value, r.started, r.finished or "-",
                     str(len(r.inventory)), str(len(r.kept)), ",".join(r.overrides) or "-",
                     (r.message[:60] + "...") if len(r.message) > 60 else r.message))
    text = _table(rows)
    if state.bad_revisions:
        text += "\n\nbad revisions (not applied again automatically): " + ", ".join(
            b[:12] for b in state.bad_revisions)
    return text


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
