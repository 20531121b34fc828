"""SOPS-encrypted files, decrypted at render time by the ``sops`` binary (the maintained implementation).

* Detection is by content, never by name: a YAML or JSON document whose top level holds a ``sops``
  mapping with a ``mac`` and a key-group list (``age``, ``pgp``, ``kms``, ..., ``key_groups``), a
  dotenv file with a ``sops_mac=`` line, a binary-format file (JSON holding only ``data`` and
  ``sops``). A plain file costs one substring test and never starts sops.
* The ``sops`` process gets an environment built here from an explicit list of names (its keys:
  ``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, ``GNUPGHOME`` for PGP, ...), reads the encrypted file
  on stdin and writes the plain text on stdout: nothing decrypted is ever written to disk.
* Failures are typed (:mod:`gitops.errors`): no sops binary, no key for the file's recipients
  (named from the file's own metadata), a MAC mismatch (tampered). Their messages name the file
  and never hold sops' own output, which may carry a digest of the plain text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops.errors import DecryptionError, DecryptionKeyError, SopsNotFoundError, TamperedError

__all__ = ["FORMATS", "Sops", "format_of", "is_metadata", "not_found", "recipients"]

FORMATS = ("yaml", "json", "dotenv", "binary")
SOPS_VERSION = "v3.13.3"  # what the tests build and the install hint names
INSTALL_HINT = (f"install sops (`go install github.com/getsops/sops/v3/cmd/sops@{SOPS_VERSION}`, or a release from "
                "the getsops/sops project) and put it on PATH, or set GITOPS_SOPS to its path")

#: Where sops keeps recipients, in a key group or at the top of its metadata, and the field naming each.
_KEY_SOURCES = {"age": ("recipient",), "pgp": ("fp",), "kms": ("arn",), "gcp_kms": ("resource_id",),
                "azure_kv": ("vault_url", "name"), "hc_vault": ("vault_address", "engine_path", "key_name")}
#: Environment names handed to the sops process (its keys and what gpg and the KMS clients read).
_PASSED = ("PATH", "HOME", "XDG_CONFIG_HOME", "GNUPGHOME", "SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD",
           "SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_GPG_EXEC", "TMPDIR", "LANG", "LC_ALL")
_PASSED_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "VAULT_")
_DOTENV_MAC = re.compile(rb"^sops_mac=", re.MULTILINE)
_DOTENV_RECIPIENT = re.compile(r"^sops_(?:key_groups__list_\d+__map_)?(age|pgp|kms|gcp_kms|azure_kv|hc_vault)__list_"
                               r"\d+__map_(recipient|fp|arn|resource_id|vault_url|vault_address)=(.*)$", re.MULTILINE)
_HEX = re.compile(r"[0-9A-Fa-f]{32,}")
_TAMPERED_CODES = {24, 25, 51}  # ErrorDecryptingMac, ErrorDecryptingTree, MacMismatch
_NO_KEY_CODES = {128}  # CouldNotRetrieveKey


def is_metadata(value: Any) -> bool:
    """A SOPS metadata mapping: a ``mac`` and at least one key-group list."""
    return (isinstance(value, dict) and isinstance(value.get("mac"), str)
            and any(isinstance(value.get(name), list) and value.get(name) for name in (*_KEY_SOURCES, "key_groups")))


def is_encrypted_document(data: Any) -> bool:
    """A loaded YAML/JSON document that sops encrypted (its top level holds the metadata)."""
    return isinstance(data, dict) and is_metadata(data.get("sops"))


def format_of(data: bytes) -> str | None:
    """The SOPS format of a file's content ("yaml", "json", "dotenv", "binary"), or None when plain."""
    if b"sops" not in data:
        return None
    if _DOTENV_MAC.search(data):
        return "dotenv"
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            loaded = json.loads(data)
        except ValueError:
            return None
        if not is_encrypted_document(loaded):
            return None
        return "binary" if set(loaded) == {"data", "sops"} and isinstance(loaded["data"], str) else "json"
    from gitops.render.yaml import Dialect, load

    loaded_yaml = load(data, "(sops check)", Dialect.KUBERNETES)
    if any(is_encrypted_document(d.data) for d in loaded_yaml.documents):
        return "yaml"
    return None


def recipients(data: bytes, fmt: str) -> list[str]:
    """Who the file is encrypted for, from its own metadata: ``age1...``, PGP fingerprints, KMS keys."""
    found: list[str] = []
    if fmt == "dotenv":
        for match in _DOTENV_RECIPIENT.finditer(data.decode("utf-8", "replace")):
            found.append(_label(match.group(1), match.group(3).strip()))
        return list(dict.fromkeys(found))
    if fmt in ("json", "binary"):
        documents = [json.loads(data)]
    else:
        from gitops.render.yaml import Dialect, load

        documents = [d.data for d in load(data, "(sops recipients)", Dialect.KUBERNETES).documents]
    for document in documents:
        metadata = document.get("sops") if isinstance(document, dict) else None
        if not is_metadata(metadata):
            continue
        assert isinstance(metadata, dict)
        groups = [metadata, *(g for g in metadata.get("key_groups") or [] if isinstance(g, dict))]
        for group in groups:
            for source, fields in _KEY_SOURCES.items():
                for entry in group.get(source) or []:
                    if isinstance(entry, dict):
                        value = "/".join(str(entry[f]) for f in fields if entry.get(f))
                        if value:
                            found.append(_label(source, value))
    return list(dict.fromkeys(found))


def not_found(display: str, binary: str | None = None) -> SopsNotFoundError:
    """The error for an encrypted file met without a sops binary (``binary``: one given that does not exist)."""
    missing = f"the sops binary {binary} does not exist" if binary else "no sops binary was found"
    return SopsNotFoundError(f"{display}: encrypted with SOPS, but {missing}: {INSTALL_HINT}")


def _label(source: str, value: str) -> str:
    return value if source == "age" else f"{source.replace('_', ' ')} {value}"


@dataclass(frozen=True)
class Sops:
    """The sops binary and the environment its process gets (see :meth:`from_environ`)."""

    binary: str | None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, binary: str | None = None,
                     age_key_file: str | None = None) -> Sops:
        """The binary: ``binary``, else ``GITOPS_SOPS``, else ``sops`` on the PATH of ``environ``.
        Keys: the environment's ``SOPS_AGE_KEY_FILE`` / ``SOPS_AGE_KEY`` (and gpg's keyring for
        PGP); ``age_key_file`` (gitops.yaml's ``sops.age_key_file``) when no key file is set there."""
        found = binary or environ.get("GITOPS_SOPS") or shutil.which("sops", path=environ.get("PATH"))
        env = {name: value for name, value in environ.items()
               if name in _PASSED or name.startswith(_PASSED_PREFIXES)}
        if age_key_file and not env.get("SOPS_AGE_KEY_FILE"):
            env["SOPS_AGE_KEY_FILE"] = os.path.expanduser(age_key_file)
        return cls(found, env)

    def decrypt(self, data: bytes, fmt: str, display: str) -> bytes:
        """The plain text of an encrypted file's content (``fmt`` from :func:`format_of`)."""
        if not self.binary:
            raise not_found(display)
        try:
            result = subprocess.run(
                [self.binary, "decrypt", "--input-type", fmt, "--output-type", fmt],
                input=data, capture_output=True, env=dict(self.environ), timeout=self.timeout, cwd="/", check=False,
            )
        except FileNotFoundError:
            raise not_found(display, self.binary) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DecryptionError(f"{display}: sops decrypt failed: {exc}") from None
        if result.returncode == 0:
            return result.stdout
        if result.returncode in _NO_KEY_CODES:
            held = ("SOPS_AGE_KEY_FILE" in self.environ or "SOPS_AGE_KEY" in self.environ)
            where = "none of the keys given (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, sops.age_key_file, gpg's keyring) is " \
                "one of them" if held else "no age key was given (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or " \
                "sops.age_key_file in gitops.yaml)"
            named = ", ".join(recipients(data, fmt)) or "(none named in the file)"
            raise DecryptionKeyError(f"{display}: cannot decrypt this SOPS file: it is encrypted for {named}, and "
                                     f"{where}; nothing was changed")
        if result.returncode in _TAMPERED_CODES:
            raise TamperedError(f"{display}: refused: this SOPS file does not match its MAC (it was changed after it "
                                "was encrypted, or is corrupted); re-encrypt it with sops; nothing was changed")
        return self._failed(result, display)

    @staticmethod
    def _failed(result: subprocess.CompletedProcess[bytes], display: str) -> bytes:
        lines = [line for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        why = _HEX.sub("...", lines[0].strip())[:200] if lines else "no message"
        raise DecryptionError(f"{display}: sops decrypt failed (exit code {result.returncode}): {why}")
