"""Webhook signatures of every forge, on payloads shaped like the ones each one documents."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from gitops.daemon.webhook import MAX_BODY_BYTES, WebhookEvent, WebhookRejected, parse

SECRET = b"It's a Secret to Everybody"
SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"

GITHUB_PUSH = {
    "ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "after": SHA,
    "repository": {"id": 1296269, "full_name": "octocat/Hello-World",
                   "clone_url": "https://github.com/octocat/Hello-World.git"},
    "pusher": {"name": "octocat"}, "head_commit": {"id": SHA, "message": "Update README.md"},
}
GITLAB_PUSH = {
    "object_kind": "push", "event_name": "push", "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "after": SHA, "ref": "refs/heads/main", "checkout_sha": SHA, "user_name": "John Smith",
    "project": {"id": 15, "path_with_namespace": "mike/diaspora"}, "total_commits_count": 1,
}
GITEA_PUSH = {
    "ref": "refs/heads/main", "before": "28e1879d029cb852e4844d9c718537df08844e03", "after": SHA,
    "compare_url": "http://localhost:3000/gitea/webhooks/compare/28e1879d...bffeb7", "commits": [],
    "repository": {"id": 140, "full_name": "gitea/webhooks"}, "pusher": {"login": "gitea"},
}
BITBUCKET_PUSH = {
    "actor": {"display_name": "Emma"}, "repository": {"full_name": "team/repo"},
    "push": {"changes": [{
        "old": {"type": "branch", "name": "main", "target": {"hash": "1e65c05c1d5171631d92438a13901ca7dae9618c"}},
        "new": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": SHA}},
        "created": False, "forced": False, "closed": False,
    }]},
}


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def hex_hmac(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_github_signature_of_the_documented_example() -> None:
    """GitHub's docs: secret "It's a Secret to Everybody", payload "Hello, World!"."""
    assert hex_hmac(b"Hello, World!") == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_push_and_ping() -> None:
    body = body_of(GITHUB_PUSH)
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(body),
               "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    assert parse(headers, body, SECRET) == WebhookEvent("github", "push", "refs/heads/main", SHA)
    ping = body_of({"zen": "Keep it logically awesome.", "hook_id": 1})
    assert parse({"x-github-event": "ping", "x-hub-signature-256": "sha256=" + hex_hmac(ping)}, ping,
                 SECRET).kind == "ping"


def test_gitlab_push_and_tag_push_by_token() -> None:
    body = body_of(GITLAB_PUSH)
    event = parse({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()}, body, SECRET)
    assert event == WebhookEvent("gitlab", "push", "refs/heads/main", SHA)
    tag = body_of({**GITLAB_PUSH, "object_kind": "tag_push", "ref": "refs/tags/v1.0.0"})
    assert parse({"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": SECRET.decode()}, tag, SECRET).ref == \
        "refs/tags/v1.0.0"
    with pytest.raises(WebhookRejected) as err:
        parse({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, body, SECRET)
    assert err.value.status == 401


def test_gitea_sends_github_and_gogs_headers_too_and_is_checked_as_gitea() -> None:
    body = body_of(GITEA_PUSH)
    headers = {"X-GitHub-Event": "push", "X-Gogs-Event": "push", "X-Gitea-Event": "push",
               "X-Gitea-Signature": hex_hmac(body), "X-Gogs-Signature": hex_hmac(body)}
    assert parse(headers, body, SECRET) == WebhookEvent("gitea", "push", "refs/heads/main", SHA)
    forgejo = {"X-Forgejo-Event": "push", "X-Forgejo-Signature": hex_hmac(body)}
    assert parse(forgejo, body, SECRET).provider == "gitea"
    gogs = {"X-Gogs-Event": "push", "X-Gogs-Signature": hex_hmac(body)}
    assert parse(gogs, body, SECRET) == WebhookEvent("gogs", "push", "refs/heads/main", SHA)


def test_bitbucket_cloud_push() -> None:
    body = body_of(BITBUCKET_PUSH)
    headers = {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + hex_hmac(body),
               "X-Request-UUID": "afe2a5a2-2f3b-4d1c-8a36-2a3d0b2d0b3b"}
    assert parse(headers, body, SECRET) == WebhookEvent("bitbucket", "push", "refs/heads/main", SHA)
    other = body_of({"repository": {}})
    assert parse({"X-Event-Key": "repo:fork", "X-Hub-Signature": "sha256=" + hex_hmac(other)}, other,
                 SECRET).kind == "other"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-GitHub-Event": "push"}, 401),  # unsigned
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}, 401),
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha1=abc"}, 401),
        ({"X-Gitea-Event": "push", "X-Gitea-Signature": "f" * 64}, 401),
        ({"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + "1" * 64}, 401),
        ({"Content-Type": "application/json"}, 400),  # no forge's event header
    ],
)
def test_bad_or_missing_signatures_are_refused(headers: dict[str, str], status: int) -> None:
    with pytest.raises(WebhookRejected) as err:
        parse(headers, body_of(GITHUB_PUSH), SECRET)
    assert err.value.status == status
    assert SECRET.decode() not in err.value.reason


def test_signature_with_another_secret_is_refused_and_nothing_leaks() -> None:
    body = body_of(GITHUB_PUSH)
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(body, b"other")}
    with pytest.raises(WebhookRejected) as err:
        parse(headers, body, SECRET)
    assert err.value.status == 401 and "refs/heads" not in err.value.reason


def test_malformed_json_is_400_only_after_the_signature_checks() -> None:
    body = b"{not json"
    with pytest.raises(WebhookRejected) as unsigned:
        parse({"X-GitHub-Event": "push"}, body, SECRET)
    assert unsigned.value.status == 401
    with pytest.raises(WebhookRejected) as signed:
        parse({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(body)}, body, SECRET)
    assert signed.value.status == 400
    array = b"[1, 2]"
    with pytest.raises(WebhookRejected) as not_object:
        parse({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(array)}, array, SECRET)
    assert not_object.value.status == 400


def test_oversize_body_and_missing_secret() -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(WebhookRejected) as err:
        parse({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(big)}, big, SECRET)
    assert err.value.status == 413
    body = body_of(GITHUB_PUSH)
    with pytest.raises(WebhookRejected) as none:
        parse({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(body, b"")}, body, b"")
    assert none.value.status == 401
