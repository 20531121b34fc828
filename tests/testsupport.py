"""Helpers shared by the test layers (importable because tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

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
