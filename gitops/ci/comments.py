"""The sticky pull-request comment: ONE comment per marker, created the first time and updated
after, through the forge's REST endpoints: GitHub's issue comments (list, create, update) or
GitLab's merge-request notes (list, create, update).

The marker is an HTML comment (``<!-- gitops:diff -->``): invisible on the page, it is how the
comment is found again. The token is sent in a header and never appears in an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3

from gitops.errors import GitopsError

#: GitHub refuses a comment body longer than this.
BODY_LIMIT = 65_536
PER_PAGE = 100
MAX_PAGES = 50


class CommentError(GitopsError):
    """The comment could not be listed, created or updated."""


@dataclass(frozen=True)
class Target:
    api_url: str  # GITHUB_API_URL (https://api.github.com) or CI_API_V4_URL (https://gitlab.com/api/v4)
    repository: str  # GitHub: owner/name; GitLab: the project id or its full path
    number: int  # the pull request (an issue number for GitHub's comments API), or the merge request iid
    forge: str = "github"  # or "gitlab"


def marker(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.:/" else "-" for c in name)
    return f"<!-- gitops:{safe} -->"


def body_with_marker(name: str, markdown: str) -> str:
    """The comment body: the marker, then the Markdown, cut to the comment limit."""
    head = marker(name) + "\n"
    text = head + markdown
    if len(text) <= BODY_LIMIT:
        return text
    note = "\n\n_(cut to the 65,536-character comment limit)_"
    return text[: BODY_LIMIT - len(note)].rsplit("\n", 1)[0] + note


class Client:
    def __init__(self, target: Target, token: str, *, timeout: float = 30.0,
                 pool: urllib3.PoolManager | None = None) -> None:
        if not token:
            raise CommentError("no token to comment with: set GITHUB_TOKEN (GitHub) or GITLAB_TOKEN (GitLab)")
        self.target = target
        self._token = token
        self._pool = pool or urllib3.PoolManager(retries=urllib3.Retry(total=3, backoff_factor=0.5,
                                                                       status_forcelist=(502, 503, 504),
                                                                       allowed_methods=None),
                                                 timeout=urllib3.Timeout(total=timeout))

    def _url(self, path: str) -> str:
        base = self.target.api_url.rstrip("/")
        if self.target.forge == "gitlab":
            return f"{base}/projects/{quote(self.target.repository, safe='')}{path}"
        owner, _, name = self.target.repository.partition("/")
        return f"{base}/repos/{quote(owner, safe='')}/{quote(name, safe='')}{path}"

    def _paths(self) -> tuple[str, str, str]:
        """Where the comments are listed and created, and the prefix of one comment's path."""
        n = self.target.number
        if self.target.forge == "gitlab":
            return f"/merge_requests/{n}/notes", f"/merge_requests/{n}/notes", f"/merge_requests/{n}/notes/"
        return f"/issues/{n}/comments", f"/issues/{n}/comments", "/issues/comments/"

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "User-Agent": "gitops-ci"}
        if self.target.forge == "github":
            headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._pool.request(method, self._url(path), body=data, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise CommentError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status >= 300:
            text = response.data.decode("utf-8", "replace")[:300].replace(self._token, "***")
            raise CommentError(f"{method} {path}: HTTP {response.status}: {text}")
        return json.loads(response.data) if response.data else None

    def find(self, mark: str) -> dict[str, Any] | None:
        """The first comment on the pull request whose body holds ``mark``."""
        for page in range(1, MAX_PAGES + 1):
            items = self._request("GET", f"{self._paths()[0]}?per_page={PER_PAGE}&page={page}")
            if not isinstance(items, list):
                raise CommentError("listing comments: the answer is not a list")
            for item in items:
                if mark in str(item.get("body") or ""):
                    return dict(item)
            if len(items) < PER_PAGE:
                return None
        return None

    def upsert(self, name: str, markdown: str) -> tuple[str, int]:
        """Create the comment, or update the one that holds the marker: ("created"|"updated", id)."""
        body = body_with_marker(name, markdown)
        found = self.find(marker(name))
        _, create, one = self._paths()
        if found is None:
            made = self._request("POST", create, {"body": body})
            return "created", int(made["id"])
        self._request("PUT" if self.target.forge == "gitlab" else "PATCH", f"{one}{int(found['id'])}", {"body": body})
        return "updated", int(found["id"])
