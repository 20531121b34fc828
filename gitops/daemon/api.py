"""A client of the daemon's JSON API, for `gitops status --server URL`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from gitops.errors import GitopsError, NotFoundError, UnreachableError


def apps(server: str, names: Sequence[str] = (), *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The status of every app the daemon at ``server`` serves (or of the named ones)."""
    base = server.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise GitopsError(f"--server takes an http(s) URL, not {server!r}")
    if not names:
        return list(_get(f"{base}/api/v1/apps", timeout).get("apps", []))
    return [_get(f"{base}/api/v1/apps/{quote(name, safe='')}", timeout) for name in names]


def _get(url: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise NotFoundError(f"{url}: no such app on the daemon") from None
        raise GitopsError(f"{url}: the daemon answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise UnreachableError(f"{url}: cannot reach the daemon: {err}") from None
