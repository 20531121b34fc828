"""The project's own error types, one per kind of failure.

SDK and HTTP errors are translated into these once, at each client's edge
(``gitops/backends/kubernetes/client.py``, ``gitops/backends/swarm/client.py``); everything above
tells failures apart by type, never by message text. The CLI turns a type into an exit code in one
place (``gitops.cli.exit_code``).

    GitopsError                 anything the tool reports to a user (exit code 1)
    ├── NotImplementedYet       a planned command that is not built yet
    ├── StalePlanError          the plan's base state moved
    ├── LockedError             another runner holds the app's lock
    ├── LockLostError           our lock was taken over (or expired) while we held it
    ├── SignatureError          the revision's commit is unsigned or not signed by an allowed signer (exit code 4)
    ├── DecryptionError         a SOPS-encrypted file could not be decrypted (sops failed otherwise)
    │   ├── SopsNotFoundError   no sops binary (the message says how to install one)
    │   ├── DecryptionKeyError  no key for the file's recipients is held (the message names them)
    │   └── TamperedError       the file does not match its MAC: changed after encryption, refused
    └── BackendError            a request to a target failed
        ├── UnreachableError    connection refused, timeout, DNS: the target did not answer
        ├── NotFoundError       the object does not exist
        ├── AlreadyExistsError  an object of that name exists (a create lost a race)
        ├── ConflictError       another field manager owns the fields (--force-conflicts)
        ├── ImmutableFieldError a field that cannot change in place was changed (replace it)
        └── StateConflictError  an optimistic write at a stale version lost (state, version index)
"""

from __future__ import annotations


class GitopsError(Exception):
    """Base of every error the tool reports to a user (exit code 1)."""


class NotImplementedYet(GitopsError):
    """A planned command that is not built yet."""


class StalePlanError(GitopsError):
    """The target's state moved since the plan was made; plan again."""


class LockedError(GitopsError):
    """Another runner holds the app's lock."""


class LockLostError(GitopsError):
    """The app's lock was taken by another runner, or expired unrenewed, while this runner held
    it: the writer must stop (raised before the next write)."""


class SignatureError(GitopsError):
    """The revision's commit is not signed, or not by an allowed signer (or, with verification
    on, what would be applied is not that commit: uncommitted changes): nothing is planned,
    applied or written. The message names the commit, and the key when another one signed it."""


class DecryptionError(GitopsError):
    """A SOPS-encrypted file could not be decrypted. The message names the file, never a value."""

    code = "sops-failed"


class SopsNotFoundError(DecryptionError):
    """An encrypted file was met and no sops binary is at hand; the message says how to install it."""

    code = "sops-not-found"


class DecryptionKeyError(DecryptionError):
    """No key for any recipient of the file is held; the message names the file's recipients."""

    code = "sops-no-key"


class TamperedError(DecryptionError):
    """The file does not match its MAC (changed after it was encrypted): refused."""

    code = "sops-mac-mismatch"


class BackendError(GitopsError):
    """A request to a target failed. Message: ``Kind/namespace/name: verb failed: why``."""


class UnreachableError(BackendError):
    """The target did not answer: connection refused, timeout, name resolution failed."""


class NotFoundError(BackendError):
    """The object does not exist."""


class AlreadyExistsError(BackendError):
    """An object of that name already exists."""


class ConflictError(BackendError):
    """Another field manager owns fields this apply sets (Kubernetes server-side apply)."""


class ImmutableFieldError(BackendError):
    """A field that cannot change in place was changed: the object must be replaced."""


class StateConflictError(BackendError):
    """An optimistic write lost: the object (or the app's state) changed since it was read."""


class StoppedError(GitopsError):
    """The run was asked to stop (SIGTERM, or a newer revision superseded it) before its next
    write or poll. The release stays in progress; the next run completes it."""
