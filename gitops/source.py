"""Where manifests come from: a local directory, or a git URL + ref fetched into a cache.

Safety rules (DESIGN §4): URLs that make git run commands (``ext::`` and other ``<helper>::``
transports) or that look like options (``-oProxyCommand=...``) are refused; paths from the
repository stay inside it (no absolute paths, no ``..``, no symlink that leads out); credentials
in URLs are replaced by ``***`` in everything we print or log. Git runs as a subprocess with an
argument list (never a shell), no terminal prompts, and only the http(s), ssh, git and file
transports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from gitops.errors import GitopsError

__all__ = [
    "Checkout",
    "SourceError",
    "changed_files",
    "check_url",
    "current_branch",
    "default_cache_dir",
    "fetch",
    "git_env",
    "history",
    "identity",
    "local",
    "redact",
    "remote_revision",
    "resolve_inside",
    "show",
    "snapshot",
    "uncommitted",
]

GIT_TIMEOUT_SECONDS = 600
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_ALLOWED_SCHEMES = {"https", "http", "ssh", "git", "file", "git+ssh", "ssh+git"}


class SourceError(GitopsError):
    """The source cannot be read: a refused URL or path, or a git failure."""


@dataclass(frozen=True)
class Checkout:
    """A tree of files at a known revision."""

    root: Path
    revision: str | None = None  # the resolved commit SHA; None for a directory outside git
    url: str | None = None  # redacted
    ref: str | None = None


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str) -> str:
    """Hide credentials of every URL in a text: ``https://user:token@host`` -> ``https://***@host``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def _strip_credentials(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def identity(url: str) -> str:
    """The repository a URL names, without credentials (the same for every reader of it)."""
    return _strip_credentials(url)


def check_url(url: str) -> None:
    """Refuse URLs that could make git run a command or read an option."""
    shown = redact(url)
    if not url or url != url.strip() or any(ord(c) < 32 for c in url):
        raise SourceError(f"refusing repository URL {shown!r}: empty or contains control characters")
    if url.startswith("-"):
        raise SourceError(f"refusing repository URL {shown!r}: it looks like a command-line option")
    if "::" in url.split("/", 1)[0] or url.lower().startswith(("ext::", "fd::")):
        raise SourceError(f"refusing repository URL {shown!r}: remote-helper transports (ext::, fd::) can run commands")
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise SourceError(f"refusing repository URL {shown!r}: {exc}") from None
        if parts.scheme.lower() not in _ALLOWED_SCHEMES:
            raise SourceError(f"refusing repository URL {shown!r}: transport {parts.scheme!r} is not allowed")
        host = parts.hostname or ""
        if host.startswith("-") or parts.netloc.rsplit("@", 1)[-1].startswith("-"):
            raise SourceError(f"refusing repository URL {shown!r}: the host looks like a command-line option")
        if parts.path.startswith("-"):
            raise SourceError(f"refusing repository URL {shown!r}: the path looks like a command-line option")
        return
    # scp-like syntax: [user@]host:path, or a local path
    match = re.match(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.*)$", url)
    if match and (match.group("host").startswith("-") or match.group("path").startswith("-")):
        raise SourceError(f"refusing repository URL {shown!r}: it looks like a command-line option")


def resolve_inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing absolute paths, ``..`` and symlinks that lead out of ``root``."""
    if not relative or relative in (".", "./"):
        return root.resolve()
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"^[a-zA-Z]:", relative):
        raise SourceError(f"path {relative!r} is absolute; paths must be relative to the repository")
    if ".." in pure.parts:
        raise SourceError(f"path {relative!r} leaves the repository (..)")
    base = root.resolve()
    target = (base / pure).resolve()
    if target != base and base not in target.parents:
        raise SourceError(f"path {relative!r} points outside the repository through a symlink")
    return target


def local(path: Path) -> Checkout:
    """A directory on disk; its commit is reported when it is a git work tree."""
    root = path.resolve()
    if not root.is_dir():
        raise SourceError(f"{path} is not a directory")
    revision = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        completed = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=30, check=False, env=_git_env(),
        )  # fmt: skip
        if completed.returncode == 0 and _SHA.match(completed.stdout.strip()):
            revision = completed.stdout.strip()
    return Checkout(root, revision)


def dirty(root: Path, paths: Sequence[str] = (".",)) -> bool:
    """Whether a git work tree has uncommitted changes (tracked or new files) under ``paths``
    (relative to ``root``); False when it is not a work tree."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=normal", "--", *paths],
            capture_output=True, text=True, timeout=30, check=False, env=_git_env(),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0 and bool(completed.stdout.strip())


def uncommitted(root: Path) -> list[str]:
    """The tracked files under ``root`` (a git work tree) that differ from its HEAD commit, staged
    or not, as git names them (relative to the repository's top)."""
    out = _git(["-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "."])
    return sorted({line[3:].split(" -> ")[-1] for line in out.splitlines() if len(line) > 3})


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's cache directory of gitops: ``$GITOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/gitops``,
    else ``~/.cache/gitops`` (of ``env``, the process environment by default)."""
    environ = os.environ if env is None else env
    configured = environ.get("GITOPS_CACHE_DIR")
    if configured:
        return Path(configured)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops"


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSH_AUTH_SOCK", "TMPDIR")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_PROTOCOL_FROM_USER="0",
        GIT_ALLOW_PROTOCOL="http:https:ssh:git:file",
    )
    return env


def git_env() -> dict[str, str]:
    """The environment git runs in (no prompts, no system config, the allowed transports only)."""
    return _git_env()


def _git(args: list[str], cwd: Path | None = None) -> str:
    command = ["git", "-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never", *args]
    try:
        completed = subprocess.run(
            command, cwd=str(cwd) if cwd else None, capture_output=True, text=True,
            timeout=GIT_TIMEOUT_SECONDS, check=False, env=_git_env(), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise SourceError("git is not installed (needed to fetch --repo)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} did not finish within {GIT_TIMEOUT_SECONDS}s") from None
    if completed.returncode != 0:
        reason = redact(completed.stderr.strip() or completed.stdout.strip())
        raise SourceError(f"git {args[0]} failed: {reason}")
    return completed.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(url: str, ref: str | None = None, cache_dir: Path | None = None) -> Checkout:
    """Fetch ``ref`` (branch, tag or commit; default HEAD) of ``url`` and check out that commit."""
    check_url(url)
    _check_ref(ref)
    cache = cache_dir or default_cache_dir()
    clean_url = _strip_credentials(url)
    key = hashlib.sha256(clean_url.encode()).hexdigest()[:24]
    repo = cache / "repos" / key
    with _locked(cache / "repos" / f"{key}.lock"):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            _git(["init", "--quiet", str(repo)])
        wanted = ref or "HEAD"
        try:
            if ref and _SHA.match(ref) and _has_commit(repo, ref):
                revision = ref  # a commit id names the same tree forever: the cached clone has it
            else:
                _git(["fetch", "--quiet", "--no-tags", "--force", "--", url, wanted], cwd=repo)
                revision = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], cwd=repo).strip()
        except SourceError:
            if not (ref and _SHA.match(ref)):
                raise
            # Some servers refuse fetching a commit by id: fetch branches and tags, then look it up.
            _git(["fetch", "--quiet", "--force", "--", url, "+refs/heads/*:refs/remotes/origin/*",
                  "+refs/tags/*:refs/tags/*"], cwd=repo)  # fmt: skip
            revision = _git(["rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=repo).strip()
        _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", revision], cwd=repo)
        _git(["clean", "-ffdxq"], cwd=repo)
    return Checkout(repo, revision, redact(url), ref)


def _has_commit(repo: Path, revision: str) -> bool:
    try:
        _git(["cat-file", "-e", f"{revision}^{{commit}}"], cwd=repo)
    except SourceError:
        return False
    return True


def _full_commit(revision: str) -> None:
    if not _SHA.match(revision):
        raise SourceError(f"refusing revision {revision!r}: a full commit id is needed")


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name or password (``https://user:token@host/...``)."""
    return _strip_credentials(url) != url


def _check_ref(ref: str | None) -> None:
    if ref is not None and (ref.startswith("-") or not ref or any(ord(c) < 32 for c in ref) or ".." in ref):
        raise SourceError(f"refusing ref {ref!r}")


def remote_revision(url: str, ref: str | None = None) -> str:
    """The commit ``ref`` (a branch, a tag, or HEAD) points at on the remote, without fetching:
    one `git ls-remote`, the cheap check a poller makes before deciding to fetch."""
    check_url(url)
    _check_ref(ref)
    if ref and _SHA.match(ref):
        return ref
    patterns = [ref, f"refs/heads/{ref}", f"refs/tags/{ref}"] if ref else ["HEAD"]
    out = _git(["ls-remote", "--", url, *patterns])
    found: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        found[name.strip()] = sha.strip()
    for name in ([f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", ref] if ref else ["HEAD"]):
        if name in found and _SHA.match(found[name]):
            return found[name]
    raise SourceError(f"ref {ref or 'HEAD'} not found in {redact(url)}")


def snapshot(url: str, revision: str, cache_dir: Path | None = None, *, keep: int = 8) -> Checkout:
    """A work tree of exactly ``revision`` of ``url`` that no later fetch moves: each revision gets
    its own directory (a git worktree of the cached clone), so a long-running process can render
    one revision while it fetches the next. The ``keep`` newest trees are kept; older ones are
    removed."""
    _full_commit(revision)
    check_url(url)
    cache = cache_dir or default_cache_dir()
    key = hashlib.sha256(_strip_credentials(url).encode()).hexdigest()[:24]
    repo = cache / "repos" / f"{key}.git"
    trees = cache / "trees" / key
    tree = trees / revision
    with _locked(cache / "repos" / f"{key}.git.lock"):
        if not (repo / "HEAD").is_file():
            repo.mkdir(parents=True, exist_ok=True)
            _git(["init", "--quiet", "--bare", str(repo)])
        if not (tree / ".git").exists():
            if not _has_commit(repo, revision):
                _git(["fetch", "--quiet", "--no-tags", "--force", "--", url,
                      "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], cwd=repo)  # fmt: skip
                if not _has_commit(repo, revision):
                    # on no branch or tag (a pull request's merge commit, a remote-tracking ref)
                    _git(["fetch", "--quiet", "--no-tags", "--", url, revision], cwd=repo)
            _git(["worktree", "prune"], cwd=repo)
            trees.mkdir(parents=True, exist_ok=True)
            _git(["-c", "advice.detachedHead=false", "worktree", "add", "--quiet", "--force", "--detach",
                  str(tree), revision], cwd=repo)  # fmt: skip
        os.utime(tree)
        old = sorted((p for p in trees.iterdir() if p.is_dir() and p != tree), key=lambda p: p.stat().st_mtime)
        for stale in old[: max(0, len(old) - (keep - 1))]:
            with contextlib.suppress(SourceError):
                _git(["worktree", "remove", "--force", str(stale)], cwd=repo)
    return Checkout(tree, revision, redact(url), None)


def resolve(path: Path, ref: str) -> str:
    """The commit ``ref`` (a branch, tag, commit, ``HEAD~1``, ``origin/main``) names in the git
    repository at ``path``."""
    _check_ref(ref)
    try:
        return _git(["-C", str(path), "rev-parse", "--verify", "--quiet", "--end-of-options",
                     f"{ref}^{{commit}}"]).strip()  # fmt: skip
    except SourceError:
        shallow = (Path(_git(["-C", str(path), "rev-parse", "--git-dir"]).strip()) / "shallow")
        hint = "; this is a shallow clone: fetch the history (actions/checkout with fetch-depth: 0, GIT_DEPTH: 0)" \
            if (path / shallow).is_file() else ""
        raise SourceError(f"{ref!r} names no commit in {path}{hint}") from None


def history(path: Path, revision: str, limit: int = 200) -> list[str]:
    """The commits of ``revision``'s history in the repository at ``path``, newest first
    (``revision`` itself first), at most ``limit``; first parents only (what the branch was)."""
    _full_commit(revision)
    out = _git(["-C", str(path), "rev-list", "--first-parent", f"--max-count={limit}", revision, "--"])
    return [line.strip() for line in out.splitlines() if line.strip()]


def changed_files(path: Path, older: str, newer: str) -> list[str]:
    """The files that differ between two commits, relative to ``path`` (only those below it)."""
    _full_commit(older)
    _full_commit(newer)
    out = _git(["-C", str(path), "diff", "--name-only", "--relative", "--no-renames", older, newer, "--"])
    return [line for line in out.splitlines() if line]


def tree_entries(path: Path, revision: str, paths: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every file at ``paths`` (files or directories, relative to ``path``; missing ones give
    nothing) in commit ``revision``: (mode, object id, path relative to ``path``), recursively."""
    _full_commit(revision)
    out = _git(["--literal-pathspecs", "-C", str(path), "ls-tree", "-r", "-z", revision, "--", *paths])
    entries = []
    for record in out.split("\0"):
        if record:
            meta, _, name = record.partition("\t")
            mode, _, rest = meta.partition(" ")
            entries.append((mode, rest.partition(" ")[2], name))
    return entries


def show(path: Path, revision: str, file: str) -> str:
    """The text of ``file`` (relative to ``path``) at commit ``revision``."""
    _full_commit(revision)
    resolve_inside(path, file)  # no absolute path, no ..
    return _git(["-C", str(path), "show", f"{revision}:./{file}"])


def toplevel(path: Path) -> Path:
    """The root of the git work tree ``path`` lies in."""
    return Path(_git(["-C", str(path), "rev-parse", "--show-toplevel"]).strip()).resolve()


def current_branch(path: Path) -> str:
    """The branch a local clone has checked out (what the daemon follows with ``-C DIR``)."""
    name = _git(["-C", str(path), "symbolic-ref", "--quiet", "--short", "HEAD"]).strip()
    if not name:
        raise SourceError(f"{path} has no branch checked out")
    return name
