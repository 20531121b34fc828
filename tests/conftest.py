"""Shared pytest setup: makes tests/ importable (harness, testsupport) and provides the corpora."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testsupport import CORPORA, unavailable


@pytest.fixture(scope="session")
def corpora() -> Path:
    """../shared/corpora beside the checkout: skipped in a user's clone, required in CI."""
    if not CORPORA.is_dir():
        unavailable(f"test corpora not found at {CORPORA}")
    return CORPORA
