"""Human views of plans and deploy results (Terraform-like), and line-oriented progress events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gitops.model.plans import MASK, Action, AppPlan, FieldChange, Plan

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
    shown = [c for c in plan.changes if c.action is not Action.NOOP or verbose]
    if not shown:
        lines.append("  no changes: the target matches the repository")
    for change in shown:
        symbol = change.action.symbol
        head = f"  {symbol:>3} {change.key}"
        detail = change.action.value + (f" ({change.reason})" if change.reason else "")
        lines.append(style(head, COLORS.get(change.action, "")) + f"  {detail}")
        if change.action in (Action.UPDATE, Action.REPLACE):
            lines.extend(f"        {field_line(f)}" for f in change.fields)
    counts = plan.counts()
    lines.append("")
    lines.append(
        f"Plan: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.REPLACE]} to replace, {counts[Action.DELETE]} to delete, "
        f"{counts[Action.NOOP]} unchanged."
    )
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
    if kind == "failed":
        return f"{app}: FAILED at revision {str(event.get('revision', ''))[:12]}: {event.get('why')}"
    if kind == "rollback":
        return f"{app}: rolling back to revision {str(event.get('to', ''))[:12]}"
    if kind == "done":
        return f"{app}: {event.get('outcome')}"
    if kind == "no-op":
        return f"{app}: no changes"
    return None
