"""Sources: URL safety, credential redaction, paths inside the repo, fetching a git ref."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gitops import engine, source


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "-oProxyCommand=touch /tmp/pwned",
        "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
        "-u/x:y",
        "host:-oProxyCommand=x",
        "gopher://example.com/repo",
        "https://example.com/repo\n",
    ],
)
def test_dangerous_urls_are_refused(url: str) -> None:
    with pytest.raises(source.SourceError, match="refusing"):
        source.check_url(url)


@pytest.mark.parametrize(
    "url", ["https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@host:22/o/r", "file:///srv/repo"]
)
def test_ordinary_urls_are_accepted(url: str) -> None:
    source.check_url(url)


def test_credentials_are_redacted() -> None:
    assert source.redact("fatal: https://user:tok3n@host/r.git not found") == "fatal: https://***@host/r.git not found"
    with pytest.raises(source.SourceError) as caught:
        source.check_url("ext::https://user:tok3n@host/")
    assert "tok3n" not in str(caught.value)


def test_paths_must_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert source.resolve_inside(tmp_path, "a") == (tmp_path / "a").resolve()
    for bad in ("/etc", "../x", "a/../../x", "C:/x"):
        with pytest.raises(source.SourceError):
            source.resolve_inside(tmp_path, bad)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(source.SourceError, match="symlink"):
        source.resolve_inside(tmp_path, "link")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1")
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: 1}\n")
    git(repo, "commit", "-q", "-am", "two")
    return repo


def test_fetch_branch_tag_and_commit(origin: Path, tmp_path: Path) -> None:
    url = origin.as_uri()
    cache = tmp_path / "cache"
    head = source.fetch(url, "main", cache)
    assert head.revision == git(origin, "rev-parse", "HEAD")
    assert "k: 1" in (head.root / "cm.yaml").read_text()
    tagged = source.fetch(url, "v1", cache)
    assert tagged.revision == git(origin, "rev-parse", "v1^{commit}")
    assert "k: v" in (tagged.root / "cm.yaml").read_text()
    by_sha = source.fetch(url, head.revision, cache)
    assert by_sha.revision == head.revision
    with pytest.raises(source.SourceError, match="git fetch failed"):
        source.fetch(url, "no-such-branch", cache)
    with pytest.raises(source.SourceError, match="refusing ref"):
        source.fetch(url, "--upload-pack=x", cache)


def test_a_commit_the_cache_holds_is_checked_out_without_asking_the_remote(origin: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = source.fetch(origin.as_uri(), "main", cache)
    moved = tmp_path / "gone"
    origin.rename(moved)  # the remote is unreachable (as a URL whose credentials were left out would be)
    again = source.fetch(origin.as_uri(), first.revision, cache)
    assert again.revision == first.revision and "k: 1" in (again.root / "cm.yaml").read_text()
    with pytest.raises(source.SourceError, match="git fetch failed"):
        source.fetch(origin.as_uri(), "main", cache)  # a branch still asks the remote


def test_credentials_in_a_url_are_told() -> None:
    assert source.has_credentials("https://bot:t0ken@git.example.com/r.git")
    assert source.has_credentials("https://t0ken@git.example.com/r.git")
    assert not source.has_credentials("https://git.example.com/r.git")
    assert not source.has_credentials("git@github.com:o/r.git") and not source.has_credentials("/srv/r")


def test_validate_remote_reports_the_commit(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    report = engine.validate(["cm.yaml"], repo=origin.as_uri(), ref="main", env={})
    assert report.revision == git(origin, "rev-parse", "HEAD")
    assert [e.pointer for e in report.errors] == ["/data/k"]
    assert report.errors[0].line == 4
    escaped = engine.validate(["../x"], repo=origin.as_uri(), ref="v1", env={})
    assert [e.code for e in escaped.errors] == ["path-escape"]
