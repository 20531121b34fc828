"""The daemon's status pages as plain server-side HTML: the list of apps (``/``) and one app
(``/apps/NAME``). Pure functions from what the daemon knows to bytes; every value from a user
(app names, messages, diffs) goes through :func:`html.escape`. The plan is shown with the one plan
rendering of `gitops plan` (:func:`gitops.views.plans.app_plan_text`), secrets masked by it.

The pages are usable without JavaScript; ``/static/status.js`` only refreshes the list from the
JSON API and shows times as "12 s ago".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

from gitops.model import Health, ResourceKey
from gitops.model.plans import AppPlan
from gitops.model.releases import AppState, Outcome
from gitops.views.plans import app_plan_text

#: Result words of the daemon that mean the last reconcile did not do what the repository asks.
BAD_RESULTS = frozenset({"failed", "error", "rolled-back", "held", "interrupted"})
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class Access:
    """What the viewer may do: ``writes`` (a token is set) and ``signed_in`` (a valid session),
    with the CSRF token that the forms of this session carry."""

    writes: bool = False
    signed_in: bool = False
    csrf: str = ""


# -- forge links ------------------------------------------------------------------------------------


def _forge(host: str) -> str | None:
    host = host.lower()
    known = {"github.com": "github", "gitlab.com": "gitlab", "codeberg.org": "gitea", "gitea.com": "gitea",
             "bitbucket.org": "bitbucket"}
    if host in known:
        return known[host]
    first = host.split(".", 1)[0]
    return {"github": "github", "gitlab": "gitlab", "gitea": "gitea", "forgejo": "gitea"}.get(first)


def commit_url(repo: str, revision: str) -> str | None:
    """The web page of ``revision`` when ``repo`` is on a known forge (GitHub, GitLab, Gitea,
    Forgejo/Codeberg, Bitbucket; ``github.*``/``gitlab.*``/``gitea.*`` hosts count as their own
    forge); None for a local path or an unknown host. Credentials in the URL are left out."""
    sha = revision.split("+", 1)[0]
    if not _SHA.match(sha):
        return None
    scp = re.match(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$", repo)  # git@github.com:owner/repo.git
    if scp and "/" in scp.group(2) and not repo.startswith("/"):
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(repo)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    forge = _forge(host)
    path = path.strip("/").removesuffix(".git")
    if forge is None or path.count("/") < 1:
        return None
    base = f"https://{host.lower()}/{quote(path)}"
    return {"github": f"{base}/commit/{sha}", "gitlab": f"{base}/-/commit/{sha}",
            "gitea": f"{base}/commit/{sha}", "bitbucket": f"{base}/commits/{sha}"}[forge]


# -- building blocks --------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _badge(value: str, field: str = "") -> str:
    attr = f' data-field="{_e(field)}"' if field else ""
    return f'<span class="badge b-{_e(value.lower() or "unknown")}"{attr}>{_e(value or "Unknown")}</span>'


def _revision(repo: str, revision: str, field: str = "") -> str:
    if not revision:
        return '<span class="muted">-</span>'
    attr = f' data-field="{_e(field)}"' if field else ""
    url = commit_url(repo, revision)
    short = _e(revision[:12])
    if url is None:
        return f'<code title="{_e(revision)}"{attr}>{short}</code>'
    return f'<a href="{_e(url)}" title="{_e(revision)}"{attr}><code>{short}</code></a>'


def _page(title: str, body: str, *, refresh: str = "") -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="stylesheet" href="/static/status.css">'
        f'<script src="/static/status.js" defer></script>{refresh}</head>'
        f"<body>{body}</body></html>\n"
    ).encode()


def _header(repo: str, access: Access, here: str) -> str:
    if not access.writes:
        who = '<span class="muted">read-only</span>'
    elif access.signed_in:
        who = (f'<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" '
               f'value="{_e(access.csrf)}"><button class="link">sign out</button></form>')
    else:
        who = f'<a href="/login?next={_e(quote(here, safe="/"))}">sign in</a>'
    return (f'<header><a href="/" class="home">gitops</a><span class="repo" title="{_e(repo)}">{_e(repo)}</span>'
            f'<span class="who">{who}</span></header>')


def _form(action: str, label: str, access: Access, fields: Mapping[str, str] | None = None,
          css: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">'
                     for k, v in {"csrf": access.csrf, **(fields or {})}.items())
    return (f'<form method="post" action="{_e(action)}" class="inline">{hidden}'
            f'<button class="{_e(css or "act")}">{_e(label)}</button></form>')


def _when(iso: str, field: str = "") -> str:
    attr = f' data-field="{_e(field)}"' if field else ""
    if not iso:
        return f'<time{attr}>never</time>'
    return f'<time datetime="{_e(iso)}"{attr}>{_e(iso)}</time>'


def _banner(repository_error: str | None, config_error: str | None, signature_error: str | None = None) -> str:
    out = []
    if repository_error:
        out.append(f'<p class="alert" data-field="repository_error">repository: {_e(repository_error)}</p>')
    if config_error:
        out.append(f'<p class="alert" data-field="config_error">{_e(config_error)}</p>')
    if signature_error:
        out.append(f'<p class="alert" data-field="signature_error">{_e(signature_error)}</p>')
    return "".join(out)


def _notes(app: Mapping[str, Any]) -> list[str]:
    notes = []
    if app.get("result") in BAD_RESULTS and app.get("message"):
        notes.append(str(app["message"]))
    if app.get("waiting"):  # an app it depends on is not healthy yet, or no revision to promote yet
        notes.append(str(app["waiting"]))
    notes.extend(str(p) for p in (app.get("problems") or [])[:5])
    return notes


def api_app(app: Mapping[str, Any], repo: str) -> dict[str, Any]:
    """An app of the JSON API with what the page shows of it: the commit's web page (or None) and
    the lines that say what went wrong (``notes``)."""
    return {**app, "revision_url": commit_url(repo, str(app.get("revision", ""))), "notes": _notes(app)}


# -- the list of apps -------------------------------------------------------------------------------


def index_html(apps: Sequence[Mapping[str, Any]], *, repo: str, access: Access,
               repository_error: str | None = None, config_error: str | None = None,
               signature_error: str | None = None) -> bytes:
    """``/``: one row per app (the objects of ``GET /api/v1/apps``)."""
    rows = []
    for app in apps:
        name = str(app.get("app", ""))
        href = f"/apps/{quote(name, safe='')}"
        notes = _notes(app)
        error = "".join(f"<li>{_e(n)}</li>" for n in notes)
        next_in = float(app.get("next_in_seconds") or 0)
        rows.append(
            f'<tr data-app="{_e(name)}">'
            f'<td data-label="app"><a href="{_e(href)}">{_e(name)}</a></td>'
            f'<td data-label="backend" data-field="backend">{_e(app.get("backend", ""))}</td>'
            f'<td data-label="target" data-field="target" class="target">{_e(app.get("target", ""))}</td>'
            f'<td data-label="revision" data-field="revision">{_revision(repo, str(app.get("revision", "")))}</td>'
            f'<td data-label="sync">{_badge(str(app.get("sync", "")), "sync")}</td>'
            f'<td data-label="health">{_badge(str(app.get("health", "")), "health")}</td>'
            f'<td data-label="last result"><span data-field="result">{_e(app.get("result") or "-")}</span> '
            f'{_when(str(app.get("last_reconcile", "")), "last_reconcile")}</td>'
            f'<td data-label="next poll" data-field="next_in_seconds" data-seconds="{next_in:.0f}">'
            f"in {next_in:.0f} s</td></tr>"
            f'<tr class="notes" data-notes="{_e(name)}"{"" if notes else " hidden"}>'
            f'<td colspan="8"><ul class="errors" data-field="notes">{error}</ul></td></tr>'
        )
    table = (
        '<table class="apps"><thead><tr><th>app</th><th>backend</th><th>target</th><th>revision</th>'
        "<th>sync</th><th>health</th><th>last result</th><th>next poll</th></tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table>'
        if rows else '<p class="muted">no apps yet: the daemon has not read gitops.yaml (or it declares none)</p>'
    )
    counts = {s: sum(1 for a in apps if a.get("sync") == s) for s in ("Synced", "OutOfSync")}
    healthy = sum(1 for a in apps if a.get("health") == "Healthy")
    summary = (f'<p class="summary">{len(apps)} app(s): <span data-count="sync=Synced">{counts["Synced"]}</span> '
               f'synced, <span data-count="sync=OutOfSync">{counts["OutOfSync"]}</span> out of sync, '
               f'<span data-count="health=Healthy">{healthy}</span> healthy</p>')
    noscript = '<noscript><p class="muted">reload the page for fresh figures</p></noscript>'
    banner = _banner(repository_error, config_error, signature_error)
    body = (f"{_header(repo, access, '/')}<main data-poll=\"/api/v1/apps\"><h1>Apps</h1>"
            f'<div class="banner">{banner}</div>{summary}{table}{noscript}</main>')
    return _page("gitops: apps", body, refresh='<noscript><meta http-equiv="refresh" content="10"></noscript>')


# -- one app ----------------------------------------------------------------------------------------


def _objects(objects: Mapping[ResourceKey, Health]) -> str:
    if not objects:
        return '<p class="muted">no objects known yet (the app was not reconciled)</p>'
    rows = []
    for key in sorted(objects, key=lambda k: (k.kind, k.namespace, k.name)):
        health = objects[key]
        reasons = [health.message] if health.message else []
        reasons.extend(str(f) for f in health.failures[:5] if str(f) != health.message)
        name = f"{key.namespace}/{key.name}" if key.namespace else key.name
        reason = "<br>".join(_e(r) for r in reasons) if health.status.value != "Healthy" else ""
        rows.append(f'<tr><td data-label="kind">{_e(key.kind)}</td><td data-label="name">{_e(name)}</td>'
                    f'<td data-label="health">{_badge(health.status.value)}</td>'
                    f'<td data-label="reason">{reason}</td></tr>')
    return ('<table class="objects"><thead><tr><th>kind</th><th>name</th><th>health</th><th>reason</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _plan(plan: AppPlan | None) -> str:
    if plan is None:
        return '<p class="muted">no plan yet</p>'
    lines = []
    for line in app_plan_text(plan).splitlines():
        stripped = line.lstrip()
        css = {"+": "add", "-": "del", "~": "chg", "-/+": "chg", "=": "kept"}.get(stripped.split(" ", 1)[0], "")
        if stripped.startswith("REFUSED"):
            css = "del"
        lines.append(f'<span class="{css}">{_e(line)}</span>' if css else _e(line))
    return f'<pre class="plan">{chr(10).join(lines)}</pre>'


def _history(name: str, state: AppState | None, repo: str, access: Access, current: str) -> str:
    if state is None:
        return '<p class="muted">history not available</p>'
    if not state.releases:
        return '<p class="muted">no releases recorded</p>'
    bad = set(state.bad_revisions)
    rows = []
    for release in reversed(state.releases):
        marks = ' <span class="badge b-degraded">bad</span>' if release.revision in bad else ""
        action = ""
        if (access.signed_in and release.manifests and release.revision != current
                and release.outcome in (Outcome.SUCCEEDED, Outcome.ROLLED_BACK)):
            action = _form(f"/apps/{quote(name, safe='')}/rollback", "roll back to this", access,
                           {"revision": release.revision}, "act small")
        rows.append(
            f'<tr><td data-label="release">{release.number}</td>'
            f'<td data-label="revision">{_revision(repo, release.revision)}{marks}</td>'
            f'<td data-label="outcome">{_badge(release.outcome.value)}</td>'
            f'<td data-label="started">{_when(release.started)}</td>'
            f'<td data-label="finished">{_when(release.finished)}</td>'
            f'<td data-label="message" class="msg">{_e(release.message)}</td>'
            f'<td data-label="">{action}</td></tr>')
    table = ('<table class="history"><thead><tr><th>release</th><th>revision</th><th>outcome</th><th>started</th>'
             f'<th>finished</th><th>message</th><th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    if bad:
        table += ('<p class="muted">bad revisions (not applied again automatically): '
                  + ", ".join(f"<code>{_e(b[:12])}</code>" for b in sorted(bad)) + "</p>")
    return table


def app_html(app: Mapping[str, Any], *, repo: str, access: Access, objects: Mapping[ResourceKey, Health],
             plan: AppPlan | None, history: AppState | None, notes: Sequence[str] = ()) -> bytes:
    """``/apps/NAME``: the app's status (``GET /api/v1/apps/NAME``), its objects and their health,
    the plan of the last reconcile, and the release history. ``notes`` say what is stale."""
    name = str(app.get("app", ""))
    quoted = quote(name, safe="")
    actions = _form(f"/apps/{quoted}/sync", "sync now", access) if access.signed_in else ""
    errors = "".join(f"<li>{_e(n)}</li>" for n in _notes(app))
    held = (f'<p class="muted">waiting for a commit newer than <code>{_e(str(app["held_revision"])[:12])}</code></p>'
            if app.get("held_revision") else "")
    facts = (
        '<dl class="facts">'
        f'<dt>backend</dt><dd>{_e(app.get("backend", ""))}</dd>'
        f'<dt>target</dt><dd class="target">{_e(app.get("target", ""))}</dd>'
        f'<dt>revision</dt><dd>{_revision(repo, str(app.get("revision", "")))}</dd>'
        f'<dt>applied</dt><dd>{_revision(repo, str(app.get("applied", "")))}</dd>'
        f'<dt>sync</dt><dd>{_badge(str(app.get("sync", "")))}</dd>'
        f'<dt>health</dt><dd>{_badge(str(app.get("health", "")))}</dd>'
        f'<dt>last result</dt><dd>{_e(app.get("result") or "-")} {_when(str(app.get("last_reconcile", "")))}</dd>'
        + (f'<dt>promotion</dt><dd data-field="promotion">{_e(app["promotion"])}</dd>' if app.get("promotion") else "")
        +
        f'<dt>next poll</dt><dd>in {float(app.get("next_in_seconds") or 0):.0f} s</dd>'
        "</dl>"
    )
    stale = "".join(f'<p class="muted">{_e(n)}</p>' for n in notes)
    body = (
        f"{_header(repo, access, '/apps/' + quoted)}<main>"
        f'<h1>{_e(name)} <span class="actions">{actions}</span></h1>{facts}'
        f'{f"<ul class=errors>{errors}</ul>" if errors else ""}{held}{stale}'
        f'<h2 id="objects">Objects</h2>{_objects(objects)}'
        f'<h2 id="plan">Plan</h2>{_plan(plan)}'
        f'<h2 id="releases">Releases</h2>'
        f"{_history(name, history, repo, access, str(app.get('applied', '')))}"
        '<p><a href="/">all apps</a></p></main>'
    )
    return _page(f"gitops: {name}", body)


def login_html(*, repo: str, next_path: str, message: str = "") -> bytes:
    error = f'<p class="alert">{_e(message)}</p>' if message else ""
    body = (f"{_header(repo, Access(), next_path)}<main><h1>Sign in</h1>{error}"
            '<p>Write actions (sync now, roll back) need the daemon\'s API token (<code>GITOPS_API_TOKEN</code>).</p>'
            '<form method="post" action="/login" class="login">'
            f'<input type="hidden" name="next" value="{_e(next_path)}">'
            '<label>token <input type="password" name="token" autocomplete="current-password" required></label>'
            '<button class="act">sign in</button></form></main>')
    return _page("gitops: sign in", body)


def message_html(title: str, message: str, *, repo: str, back: str = "/") -> bytes:
    body = (f"{_header(repo, Access(), back)}<main><h1>{_e(title)}</h1><p>{_e(message)}</p>"
            f'<p><a href="{_e(back)}">back</a></p></main>')
    return _page(f"gitops: {title}", body)
