"""Commit signature verification: is a revision's commit signed by an allowed signer?

The allowed signers never come from the revision they judge (a commit could change them): they
are given to the command that runs (``--verify-ssh FILE``, ``--verify-gpg FILE``, or
``GITOPS_VERIFY_SSH`` / ``GITOPS_VERIFY_GPG``), as Flux reads them from a Secret rather than from
the repository. Git itself checks the signature (``git log --format=%G?...``), with everything that
decides the outcome passed per command (``-c gpg.ssh.allowedSignersFile=...``, ``-c
gpg.program=gpg``, ...), never written to any git configuration:

* SSH (``gpg.format ssh``): git runs ``ssh-keygen -Y find-principals`` / ``-Y verify`` against the
  allowed-signers file; a good signature by a key that no line of the file names is ``U``.
* GPG: the allowed public keys are imported into a GNUPGHOME of its own (a temporary directory,
  removed after each verification; no gpg-agent is started), whose keyring holds only them, so
  any good signature it can check is by an allowed key (``trust-model always``); a key it does
  not hold is ``E`` with the key id.

Only ``G`` is accepted. X.509 (gpgsm) signatures are refused.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitops.errors import GitopsError, SignatureError
from gitops.source import SourceError, git_env, redact

__all__ = ["Signature", "Signers", "SignersError", "verify"]

GIT_TIMEOUT_SECONDS = 120
_FORMAT = "%G?%n%GK%n%GF%n%GS"
_WHY = {
    "B": "has a bad signature (the commit or the signature was altered)",
    "X": "has a signature that has expired",
    "Y": "is signed by a key that has expired",
    "R": "is signed by a key that is revoked",
}


class SignersError(GitopsError):
    """The allowed signers given to gitops cannot be read (a missing file, a key gpg refuses)."""


@dataclass(frozen=True)
class Signers:
    """Who may sign the revisions gitops applies: an SSH allowed-signers file (``ssh-keygen``'s
    ALLOWED SIGNERS format: ``principal [options] key``) and GPG public keys (armored or binary
    files, or directories of them). Empty: nothing is verified."""

    ssh: Path | None = None
    gpg: tuple[Path, ...] = ()

    @property
    def configured(self) -> bool:
        return self.ssh is not None or bool(self.gpg)

    def describe(self) -> str:
        parts = ([f"SSH allowed signers {self.ssh}"] if self.ssh else []) + [f"GPG keys {p}" for p in self.gpg]
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Signature:
    """A good signature by an allowed signer."""

    commit: str
    kind: str  # "ssh" or "gpg"
    key: str  # the SSH key's SHA256 fingerprint, or the GPG key's fingerprint
    signer: str  # the principal of the allowed-signers file, or the GPG key's user id

    def __str__(self) -> str:
        return f"commit {self.commit[:12]}: good {self.kind.upper()} signature by {self.signer} ({self.key})"


def verify(repo: Path, commit: str, signers: Signers) -> Signature:
    """The signature of ``commit`` in the git repository (or work tree) at ``repo``; raises
    :class:`SignatureError` naming the commit (and the key, when it is signed by another one)
    when it is unsigned or not signed by one of ``signers``, :class:`SignersError` when the
    signers cannot be read."""
    if not signers.configured:
        raise SignersError("no allowed signers were given: pass --verify-ssh FILE or --verify-gpg FILE")
    scratch = Path(tempfile.mkdtemp(prefix="gitops-verify-"))
    try:
        home = scratch / "gnupg"
        home.mkdir(mode=0o700)
        # No agent (nothing here needs a secret key), and the keyring holds only allowed keys.
        (home / "gpg.conf").write_text("no-autostart\ntrust-model always\n")
        env = {**git_env(), "GNUPGHOME": str(home)}
        key_files = _key_files(signers.gpg)
        if key_files:
            _import(key_files, env)
        empty = scratch / "none"
        empty.write_text("")
        allowed = signers.ssh if signers.ssh is not None else empty
        if signers.ssh is not None and not signers.ssh.is_file():
            raise SignersError(f"cannot read the SSH allowed signers file {signers.ssh}")
        overrides = {
            "gpg.ssh.allowedSignersFile": str(allowed.resolve()),
            "gpg.ssh.revocationFile": str(empty),
            "gpg.ssh.program": "ssh-keygen",
            "gpg.program": "gpg",
            "gpg.openpgp.program": "gpg",
            "gpg.x509.program": "false",  # X.509 signatures are not checked: refused
            "gpg.minTrustLevel": "undefined",  # the keyring's trust is ours (trust-model always)
        }
        config = [arg for name, value in overrides.items() for arg in ("-c", f"{name}={value}")]
        out = _git([*config, "log", "-1", "--no-show-signature", f"--format={_FORMAT}", commit, "--"], repo, env,
                   commit)
        kind = _kind(_git(["cat-file", "commit", commit], repo, env, commit))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    status, key_id, fingerprint, signer = [*out.split("\n"), "", "", ""][:4]
    key = fingerprint or key_id
    shown = commit[:12]
    if status == "G" and kind in ("ssh", "gpg"):
        return Signature(commit, kind, key, signer)
    if kind is None or status == "N":
        raise SignatureError(f"commit {shown} is not signed; only commits signed by an allowed signer "
                             f"({signers.describe()}) are applied; nothing was changed")
    described = f"{kind.upper() if kind != 'x509' else 'X.509'} key {key}" if key else f"a {kind} key"
    if kind == "x509":
        why = f"is signed with an X.509 certificate ({described}), which gitops does not accept"
    elif status in _WHY:
        why = f"{_WHY[status]} ({described})"
    else:  # U: a good SSH signature by a key no line of the file names; E: a GPG key not imported
        why = f"is signed by {described}, which is not an allowed signer"
    raise SignatureError(f"commit {shown} {why}; allowed: {signers.describe()}; nothing was changed")


def _kind(commit_object: str) -> str | None:
    """The kind of signature a commit object carries (its ``gpgsig`` header), or None."""
    for line in commit_object.split("\n"):
        if not line:
            break  # the end of the headers
        name, _, value = line.partition(" ")
        if name in ("gpgsig", "gpgsig-sha256"):
            if "SSH SIGNATURE" in value:
                return "ssh"
            if "PGP SIGNATURE" in value:
                return "gpg"
            return "x509"
    return None


def _key_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise SignersError(f"cannot read the GPG key {path}: no such file or directory")
    return files


def _import(keys: list[Path], env: dict[str, str]) -> None:
    """Import the allowed public keys (one gpg run for all of them)."""
    try:
        completed = subprocess.run(
            ["gpg", "--batch", "--quiet", "--no-tty", "--status-fd", "1", "--import", "--", *map(str, keys)],
            capture_output=True,
            text=True, timeout=GIT_TIMEOUT_SECONDS, check=False, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise SignersError("gpg is not installed (needed to verify GPG signatures: --verify-gpg)") from None
    except subprocess.TimeoutExpired:
        raise SignersError(f"gpg --import did not finish within {GIT_TIMEOUT_SECONDS}s") from None
    # gpg exits 2 on any error it logs, e.g. that it cannot reach an agent (whose socket path may be
    # too long under a deep TMPDIR) that a public key does not need: the import's own status decides.
    imported = [line for line in completed.stdout.splitlines() if line.startswith("[GNUPG:] IMPORT_OK ")]
    if not imported or any(f"[GNUPG:] {bad}" in completed.stdout for bad in ("IMPORT_PROBLEM", "NODATA")):
        shown = ", ".join(map(str, keys))
        raise SignersError(f"cannot import the GPG key(s) {shown}: {completed.stderr.strip() or 'gpg failed'}")


def _git(args: list[str], repo: Path, env: dict[str, str], commit: str) -> str:
    try:
        completed = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS,
            check=False, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise SourceError("git is not installed (needed to verify commit signatures)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"verifying commit {commit[:12]} did not finish within {GIT_TIMEOUT_SECONDS}s") from None
    if completed.returncode != 0:
        raise SourceError(f"cannot read commit {commit[:12]} in {repo}: {redact(completed.stderr.strip())}")
    return completed.stdout.rstrip("\n")
