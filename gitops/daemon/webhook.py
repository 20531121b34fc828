"""Push webhooks from git forges: who sent it, is it signed with our secret, which ref moved.

Every provider signs (or authenticates) differently; this module is the one place that knows how:

| provider | event header | proof |
|---|---|---|
| GitHub | ``X-GitHub-Event`` | ``X-Hub-Signature-256: sha256=<HMAC-SHA256(secret, body)>`` |
| Gitea, Forgejo | ``X-Gitea-Event``, ``X-Forgejo-Event`` | ``X-Gitea-Signature`` (``X-Forgejo-…``): HMAC hex |
| Gogs | ``X-Gogs-Event`` | ``X-Gogs-Signature``: HMAC-SHA256 hex |
| GitLab | ``X-Gitlab-Event`` | ``X-Gitlab-Token``: the secret itself (compared in constant time) |
| Bitbucket Cloud | ``X-Event-Key`` | ``X-Hub-Signature: sha256=<HMAC-SHA256(secret, body)>`` |

Gitea also sends GitHub's and Gogs' headers for compatibility, so it is recognised first.
:func:`parse` checks the proof before it reads the body as JSON, and never puts the body or the
secret into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 1024 * 1024


class WebhookRejected(Exception):
    """The request is refused with this HTTP status; ``reason`` is safe to show and log."""

    def __init__(self, status: int, reason: str, provider: str = "unknown") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.provider = provider  # who it claims to come from, when the headers say


@dataclass(frozen=True)
class WebhookEvent:
    provider: str  # github | gitea | gogs | gitlab | bitbucket
    kind: str  # push | ping | other
    ref: str = ""  # refs/heads/<branch> or refs/tags/<tag> for a push
    revision: str = ""  # the commit the ref points at now, when the payload says


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value.strip()
    return ""


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _check_hmac(given: str, secret: bytes, body: bytes, *, prefix: str, header: str) -> None:
    if not given:
        raise WebhookRejected(401, f"missing signature header {header}")
    if prefix:
        if not given.startswith(prefix):
            raise WebhookRejected(401, f"signature header {header} is not {prefix}<hex>")
        given = given[len(prefix):]
    if not hmac.compare_digest(given.lower().encode(), _hmac_hex(secret, body).encode()):
        raise WebhookRejected(401, f"bad signature in {header}")


def _provider(headers: Mapping[str, str]) -> str:
    if _header(headers, "X-Gitea-Event") or _header(headers, "X-Forgejo-Event"):
        return "gitea"
    if _header(headers, "X-Gogs-Event"):
        return "gogs"
    if _header(headers, "X-GitHub-Event"):
        return "github"
    if _header(headers, "X-Gitlab-Event"):
        return "gitlab"
    if _header(headers, "X-Event-Key"):
        return "bitbucket"
    raise WebhookRejected(400, "unknown webhook sender: no GitHub, GitLab, Gitea, Gogs or Bitbucket event header")


def _authenticate(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> None:
    if provider == "github":
        _check_hmac(_header(headers, "X-Hub-Signature-256"), secret, body, prefix="sha256=",
                    header="X-Hub-Signature-256")
    elif provider == "gitea":
        header = "X-Gitea-Signature" if _header(headers, "X-Gitea-Signature") else "X-Forgejo-Signature"
        _check_hmac(_header(headers, header), secret, body, prefix="", header=header)
    elif provider == "gogs":
        _check_hmac(_header(headers, "X-Gogs-Signature"), secret, body, prefix="", header="X-Gogs-Signature")
    elif provider == "gitlab":
        token = _header(headers, "X-Gitlab-Token")
        if not token:
            raise WebhookRejected(401, "missing X-Gitlab-Token")
        if not hmac.compare_digest(token.encode(), secret):
            raise WebhookRejected(401, "bad X-Gitlab-Token")
    else:
        _check_hmac(_header(headers, "X-Hub-Signature"), secret, body, prefix="sha256=", header="X-Hub-Signature")


def _event_name(provider: str, headers: Mapping[str, str]) -> str:
    names = {
        "github": "X-GitHub-Event", "gogs": "X-Gogs-Event", "gitlab": "X-Gitlab-Event", "bitbucket": "X-Event-Key",
    }
    if provider == "gitea":
        return _header(headers, "X-Gitea-Event") or _header(headers, "X-Forgejo-Event")
    return _header(headers, names[provider])


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse(headers: Mapping[str, str], body: bytes, secret: bytes) -> WebhookEvent:
    """The push (or ping) a forge sent, once its signature proved it knows ``secret``.

    Raises :class:`WebhookRejected`: 400 for an unknown sender or a body that is not a JSON
    object, 401 for a missing or wrong signature, 413 for a body over :data:`MAX_BODY_BYTES`.
    """
    if not secret:
        raise WebhookRejected(401, "no webhook secret is configured: every webhook is refused")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
    provider = _provider(headers)
    try:
        _authenticate(provider, headers, body, secret)
    except WebhookRejected as rejected:
        raise WebhookRejected(rejected.status, rejected.reason, provider) from None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON", provider) from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "the body is not a JSON object", provider)
    event = _event_name(provider, headers).lower()
    if provider == "github" and event == "ping":
        return WebhookEvent(provider, "ping")
    if provider == "bitbucket":
        if event != "repo:push":
            return WebhookEvent(provider, "other")
        changes = payload.get("push", {}).get("changes", []) if isinstance(payload.get("push"), dict) else []
        for change in changes if isinstance(changes, list) else []:
            new = change.get("new") if isinstance(change, dict) else None
            if isinstance(new, dict) and _str(new.get("name")):
                prefix = "refs/tags/" if new.get("type") == "tag" else "refs/heads/"
                target = new.get("target")
                revision = _str(target.get("hash")) if isinstance(target, dict) else ""
                return WebhookEvent(provider, "push", prefix + _str(new.get("name")), revision)
        return WebhookEvent(provider, "push")
    if event in ("push", "push hook", "tag push hook"):
        revision = _str(payload.get("checkout_sha")) or _str(payload.get("after"))
        return WebhookEvent(provider, "push", _str(payload.get("ref")), revision)
    return WebhookEvent(provider, "other")
