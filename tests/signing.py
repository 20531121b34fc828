"""Real signing keys for the tests of signed commits: SSH keys made with ``ssh-keygen`` (git's
``gpg.format ssh``) and GPG keys in a GNUPGHOME of the test's own (never ``~/.gnupg``), and
commits signed with them by git itself.

``alice`` (SSH) and ``bob`` (GPG) are the allowed signers (``allowed_signers``, ``bob.asc``);
``mallory`` (SSH) and ``eve`` (GPG) are other keys. ``close()`` stops the gpg-agent that key
generation and signing started in that GNUPGHOME (by its home directory) and removes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testsupport import unavailable

SSH_SIGNERS = ("alice", "mallory")
GPG_SIGNERS = ("bob", "eve")


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=60).stdout


class Keys:
    def __init__(self, root: Path) -> None:
        for tool in ("git", "ssh-keygen", "gpg", "gpgconf"):
            if shutil.which(tool) is None:
                unavailable(f"{tool} is not installed (needed to sign commits)")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # A short path: gpg-agent's sockets live in the home directory (a socket path has ~100 bytes).
        self.gnupg = Path(tempfile.mkdtemp(prefix="gk-"))
        self.gnupg.chmod(0o700)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "GNUPGHOME": str(self.gnupg),
                    "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "LANG": "C"}
        self.ssh_fingerprint: dict[str, str] = {}
        for name in SSH_SIGNERS:
            key = root / name
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], self.env)
            self.ssh_fingerprint[name] = _run(["ssh-keygen", "-lf", f"{key}.pub"], self.env).split()[1]
        self.allowed_signers = root / "allowed_signers"
        self.allowed_signers.write_text(f'alice@example.com namespaces="git" {(root / "alice.pub").read_text()}')
        self.gpg_fingerprint: dict[str, str] = {}
        for name in GPG_SIGNERS:
            _run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                  f"{name.title()} <{name}@example.com>", "ed25519", "sign", "never"], self.env)
            colons = _run(["gpg", "--batch", "--with-colons", "--list-keys", f"{name}@example.com"], self.env)
            self.gpg_fingerprint[name] = next(line.split(":")[9] for line in colons.splitlines()
                                              if line.startswith("fpr:"))
            (root / f"{name}.asc").write_text(_run(["gpg", "--batch", "--armor", "--export", f"{name}@example.com"],
                                                   self.env))

    def key_file(self, name: str) -> Path:
        """A GPG public key file (``bob.asc``)."""
        return self.root / f"{name}.asc"

    def commit(self, repo: Path, message: str, signer: str | None = None) -> str:
        """Commit everything in ``repo``, signed by ``signer`` (an SSH or GPG name, or None for an
        unsigned commit); its commit id."""
        _run(["git", "add", "-A"], self.env, repo)
        if signer in SSH_SIGNERS:
            signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.root / signer}"]
        elif signer in GPG_SIGNERS:
            signing = ["-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "-c",
                       f"user.signingkey={self.gpg_fingerprint[signer]}"]
        else:
            signing = ["-c", "commit.gpgsign=false"]
        _run(["git", *signing, "commit", "-q", "--allow-empty", *(["-S"] if signer else []), "-m", message],
             self.env, repo)
        return _run(["git", "rev-parse", "HEAD"], self.env, repo).strip()

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.gnupg), "--kill", "all"], env=self.env, check=False,
                       capture_output=True, timeout=30)
        shutil.rmtree(self.gnupg, ignore_errors=True)
