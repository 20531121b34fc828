"""The project's own error types. SDK exceptions are translated into these at the backend edge."""

from __future__ import annotations


class GitopsError(Exception):
    """Base of every error the tool reports to a user (exit code 1)."""


class NotImplementedYet(GitopsError):
    """A planned command that is not built yet."""
