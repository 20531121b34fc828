"""The real sops and age binaries for the SOPS tests (built by the harness from their Go modules,
cached by version), an age key pair, and files encrypted by sops itself."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import build
from testsupport import unavailable


@dataclass(frozen=True)
class Tools:
    sops: Path
    age_keygen: Path


def tools() -> Tools:
    """sops and age-keygen, built once per pinned version; skips (fails with CI=true) when they cannot be built."""
    try:
        found = build.sops_tools()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
        unavailable(f"sops and age could not be built: {err}")
    return Tools(found["sops"], found["age-keygen"])


@dataclass(frozen=True)
class AgeKey:
    file: Path  # the identity file (SOPS_AGE_KEY_FILE)
    recipient: str  # age1...


def age_key(tools: Tools, path: Path) -> AgeKey:
    subprocess.run([str(tools.age_keygen), "-o", str(path)], check=True, capture_output=True)
    recipient = next(line.split(": ", 1)[1] for line in path.read_text().splitlines() if "public key:" in line)
    return AgeKey(path, recipient.strip())


def encrypt(tools: Tools, plain: Path, recipient: str, fmt: str, *, regex: str | None = None) -> bytes:
    """What ``sops encrypt --age RECIPIENT`` writes for ``plain`` (read as ``fmt``)."""
    args = [str(tools.sops), "encrypt", "--age", recipient, "--input-type", fmt, "--output-type", fmt]
    if regex:
        args += ["--encrypted-regex", regex]
    result = subprocess.run([*args, str(plain)], capture_output=True, check=False, cwd=plain.parent)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def encrypt_to(tools: Tools, target: Path, plain: bytes, recipient: str, fmt: str, *, regex: str | None = None) -> Path:
    """Write ``plain`` encrypted to ``target`` (the plain text passes through a sibling file that is removed)."""
    scratch = target.with_name(f".{target.name}.plain")
    scratch.write_bytes(plain)
    try:
        target.write_bytes(encrypt(tools, scratch, recipient, fmt, regex=regex))
    finally:
        scratch.unlink()
    return target
