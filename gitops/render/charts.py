"""The chart cache: a chart of a chart repository is downloaded once per (repository, name, version).

An entry is the chart archive and what it was fetched as (``meta.json``: repository, name, version,
the archive's sha256 digest, from the repository's ``index.yaml`` when the index gives one, else
of the archive as downloaded). Every use checks the archive against that digest; an archive that
does not match (tampered with, cut short) is dropped and fetched again, and a download that does
not match the index's digest is refused. So a render of a cached chart needs no network, and a
chart repository that serves other bytes for a pinned version is caught.

The cache is bounded (``max_charts`` entries and ``max_bytes`` in all; the least recently used
go first). Its directory is given by the caller (the CLI puts it under the user's cache
directory); nothing here reads the environment. OCI charts and charts without a pinned version
are left to helm (``helm template --repo``), uncached.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.render.yaml import Dialect, Limits, load

__all__ = ["ChartCache", "ChartError"]

MAX_INDEX_BYTES = 32 * 1024 * 1024
MAX_CHART_BYTES = 64 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 60
ARCHIVE, META = "chart.tgz", "meta.json"


class ChartError(Exception):
    """A chart that cannot be had: the repository, its index or the archive (the message says which)."""


@dataclass(frozen=True)
class ChartCache:
    directory: Path
    max_charts: int = 100
    max_bytes: int = 1024 * 1024 * 1024

    @staticmethod
    def cacheable(repo: str, version: str | None) -> bool:
        """Whether a chart is cached: an HTTP(S) chart repository and a pinned version."""
        return bool(version) and repo.startswith(("http://", "https://"))

    def _entry(self, repo: str, name: str, version: str) -> Path:
        key = hashlib.sha256("\0".join((repo.rstrip("/"), name, version)).encode()).hexdigest()[:32]
        return self.directory / key

    def archive(self, repo: str, name: str, version: str) -> Path:
        """The chart archive: from the cache when it is there and matches its digest, else
        downloaded (and kept). Raises ChartError."""
        entry = self._entry(repo, name, version)
        found = _verified(entry)
        if found is not None:
            os.utime(entry)  # recently used: evicted last
            return found
        shutil.rmtree(entry, ignore_errors=True)  # absent, or no longer what was fetched
        data, digest, url = _download(repo, name, version)
        self.directory.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self.directory))
        try:
            (scratch / ARCHIVE).write_bytes(data)
            (scratch / META).write_text(json.dumps({"repo": repo, "name": name, "version": version, "url": url,
                                                    "digest": digest}), "utf-8")
            with contextlib.suppress(OSError):  # another render stored it meanwhile
                scratch.rename(entry)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._evict(keep=entry)
        found = _verified(entry)
        if found is None:
            raise ChartError(f"chart {name} {version} of {_safe(repo)}: the cached archive does not match its digest")
        return found

    def _evict(self, keep: Path) -> None:
        """Drop the least recently used entries beyond ``max_charts`` or ``max_bytes``."""
        entries: list[tuple[float, int, Path]] = []
        for path in self.directory.iterdir():
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                entries.append((path.stat().st_mtime, (path / ARCHIVE).stat().st_size, path))
            except OSError:
                continue
        entries.sort(reverse=True)  # newest first
        total = 0
        for count, (_, size, path) in enumerate(entries, start=1):
            total += size
            if path != keep and (count > self.max_charts or total > self.max_bytes):
                shutil.rmtree(path, ignore_errors=True)


def _verified(entry: Path) -> Path | None:
    archive = entry / ARCHIVE
    try:
        meta = json.loads((entry / META).read_text("utf-8"))
        data = archive.read_bytes()
    except (OSError, ValueError):
        return None
    return archive if isinstance(meta, dict) and hashlib.sha256(data).hexdigest() == meta.get("digest") else None


def _safe(url: str) -> str:
    """A URL without its credentials, for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    return parts._replace(netloc=host if parts.port is None else f"{host}:{parts.port}").geturl()


def _get(url: str, limit: int) -> bytes:
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "gitops"}
    if parts.username is not None:  # user:password@host, as helm takes it
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        url = _safe(url)
    if not url.startswith(("http://", "https://")):
        raise ChartError(f"{_safe(url)}: not an http(s) URL")
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) only, checked above)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise ChartError(f"GET {_safe(url)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ChartError(f"GET {_safe(url)}: {getattr(exc, 'reason', exc)}") from None
    if len(data) > limit:
        raise ChartError(f"GET {_safe(url)}: over the limit of {limit} bytes")
    return data


def _download(repo: str, name: str, version: str) -> tuple[bytes, str, str]:
    """(the archive, its sha256 digest, its URL) of ``name`` at ``version`` in the repository."""
    base = repo.rstrip("/") + "/"
    text = _get(urllib.parse.urljoin(base, "index.yaml"), MAX_INDEX_BYTES)
    loaded = load(text, "index.yaml", Dialect.KUBERNETES, Limits(max_file_bytes=MAX_INDEX_BYTES))
    index: Any = next((d.data for d in loaded.documents if d.data is not None), None)
    entries = index.get("entries") if isinstance(index, dict) else None
    if not isinstance(entries, dict):
        raise ChartError(f"{_safe(repo)}: index.yaml is not a chart repository index")
    versions = [e for e in entries.get(name) or [] if isinstance(e, dict)]
    if not versions:
        raise ChartError(f"{_safe(repo)} has no chart named {name}")
    entry = next((e for e in versions if str(e.get("version", "")).removeprefix("v") == version.removeprefix("v")),
                 None)
    if entry is None:
        known = ", ".join(str(e.get("version")) for e in versions[:5])
        raise ChartError(f"{_safe(repo)} has no version {version} of chart {name} (it has {known}"
                         f"{', ...' if len(versions) > 5 else ''})")
    urls = entry.get("urls") or []
    if not urls or not isinstance(urls[0], str):
        raise ChartError(f"{_safe(repo)}: index.yaml gives no URL for chart {name} {version}")
    url = urllib.parse.urljoin(base, urls[0])
    if not url.startswith(("http://", "https://")):
        raise ChartError(f"{_safe(repo)}: chart {name} {version} is at {_safe(url)}, not an http(s) URL")
    if urllib.parse.urlsplit(url).hostname == urllib.parse.urlsplit(repo).hostname and "@" not in url:
        parts = urllib.parse.urlsplit(repo)
        if parts.username is not None:  # the repository's credentials go to its own host only
            url = urllib.parse.urlsplit(url)._replace(netloc=parts.netloc).geturl()
    data = _get(url, MAX_CHART_BYTES)
    actual = hashlib.sha256(data).hexdigest()
    expected = str(entry.get("digest") or "").lower().removeprefix("sha256:")
    if expected and expected != actual:
        raise ChartError(f"chart {name} {version} from {_safe(url)}: sha256 {actual} is not the digest "
                         f"{expected} the repository's index gives; refusing it")
    return data, actual, _safe(url)
