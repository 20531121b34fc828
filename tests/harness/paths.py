"""Where the harness keeps built binaries, logs and cluster state (outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("GITOPS_TEST_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gitops-test"


def bin_dir() -> Path:
    return cache_root() / "bin"


def run_dir(name: str) -> Path:
    path = cache_root() / "run" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
