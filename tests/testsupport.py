"""Helpers shared by the test layers (importable because tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CORPORA = REPO.parent / "shared" / "corpora"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, so a broken harness or a missing corpus never passes silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: these tests may not skip)", pytrace=False)
    pytest.skip(reason)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, poll: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@dataclass(frozen=True)
class LongLived:
    """The Deployment that tests/integration/conftest.py creates when a session starts."""

    namespace: str
    name: str
    started: float  # time.monotonic() when it was created
    started_at: datetime
    kcm_log_offset: int  # size of the controller manager's log then


#: examples/repo's gitops.yaml: the apps of each section run from its mark to the next mark.
PROMOTION_MARK = "  # Promotion:"  # shop-staging, shop-production (and the files under shop/)
EXTRAS_MARK = "  # Helm and compose overrides:"  # catalog (a Helm chart) and api (a base + override stack)
_SECTION_FILES = {PROMOTION_MARK: ("shop",), EXTRAS_MARK: ("charts", "catalog", "api")}


def trim_example(root: Path, *, promotion: bool = False, extras: bool = False) -> None:
    """A copy of examples/repo at ``root`` without the sections of gitops.yaml (and their files)
    that are not wanted: the promotion apps unless ``promotion``, the Helm app and the override
    stack unless ``extras``."""
    import shutil

    config = root / "gitops.yaml"
    text = config.read_text()
    for mark, keep in ((PROMOTION_MARK, promotion), (EXTRAS_MARK, extras)):
        if keep or mark not in text:
            continue
        start = text.index(mark)
        later = [text.index(m, start + 1) for m in _SECTION_FILES if m != mark and m in text[start + 1:]]
        text = text[:start] + (text[min(later):] if later else "")
        for name in _SECTION_FILES[mark]:
            shutil.rmtree(root / name, ignore_errors=True)
    config.write_text(text)
