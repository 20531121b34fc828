"""The project's own error types. SDK exceptions are translated into these at the backend edge."""

from __future__ import annotations


class GitopsError(Exception):
    """Base of every error the tool reports to a user (exit code 1)."""


class NotImplementedYet(GitopsError):
    """A planned command that is not built yet."""


class BackendError(GitopsError):
    """A request to a target failed. Message: ``Kind/namespace/name: verb failed: why``."""


class StalePlanError(GitopsError):
    """The target's state moved since the plan was made; plan again."""


class LockedError(GitopsError):
    """Another runner holds the app's lock."""
