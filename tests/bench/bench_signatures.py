"""Benchmark: what verifying a revision's commit signature costs (once per revision, before its
gitops.yaml is read).

    python tests/bench/bench_signatures.py [--runs 20] [--gpg-keys 20]

Real keys (``tests/signing.py``: ssh-keygen, gpg in a GNUPGHOME of its own) and a git repository
in a temporary directory. Times ``gitops.signatures.verify`` for a commit signed over SSH (an
allowed-signers file of one key), over GPG with one allowed key and with ``--gpg-keys`` keys (each
verification imports them into a fresh GNUPGHOME), and for a refused unsigned commit; the same
SSH check through ``git verify-commit`` alone for comparison. Prints p50/p95 and writes
tests/bench/results/bench_signatures.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
RESULTS = HERE / "results"

from signing import Keys  # noqa: E402

from gitops import signatures  # noqa: E402
from gitops.errors import SignatureError  # noqa: E402


def timed(runs: int, work: Callable[[], object]) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return {"p50_ms": round(statistics.median(seconds) * 1000, 1),
            "p95_ms": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] * 1000, 1)}


def refused(work: Callable[[], object]) -> Callable[[], object]:
    def run() -> None:
        try:
            work()
        except SignatureError:
            return
        raise AssertionError("the commit was not refused")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--gpg-keys", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sig-") as tmp:
        root = Path(tmp)
        keys = Keys(root / "keys")
        try:
            repo = root / "repo"
            subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
            ssh_commit = keys.commit(repo, "ssh", "alice")
            gpg_commit = keys.commit(repo, "gpg", "bob")
            unsigned = keys.commit(repo, "unsigned")
            many = root / "many"
            many.mkdir()
            (many / "bob.asc").write_text(keys.key_file("bob").read_text())
            for index in range(args.gpg_keys - 1):  # the others: exports of fresh keys
                name = f"k{index}@example.com"
                subprocess.run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
                                "--quick-gen-key", name, "ed25519", "sign", "never"], env=keys.env, check=True)
                exported = subprocess.run(["gpg", "--batch", "--armor", "--export", name], env=keys.env,
                                          check=True, capture_output=True).stdout
                (many / f"{index}.asc").write_bytes(exported)
            ssh = signatures.Signers(ssh=keys.allowed_signers)
            gpg = signatures.Signers(gpg=(keys.key_file("bob"),))
            results = {
                "ssh": timed(args.runs, lambda: signatures.verify(repo, ssh_commit, ssh)),
                "gpg_1_key": timed(args.runs, lambda: signatures.verify(repo, gpg_commit, gpg)),
                f"gpg_{args.gpg_keys}_keys": timed(args.runs, lambda: signatures.verify(
                    repo, gpg_commit, signatures.Signers(gpg=(many,)))),
                "unsigned_refused": timed(args.runs, refused(lambda: signatures.verify(repo, unsigned, ssh))),
                "git_verify_commit_ssh_alone": timed(args.runs, lambda: subprocess.run(
                    ["git", "-c", f"gpg.ssh.allowedSignersFile={keys.allowed_signers}", "verify-commit", ssh_commit],
                    cwd=repo, check=True, capture_output=True, env={**os.environ, "GNUPGHOME": str(keys.gnupg)})),
            }
        finally:
            keys.close()
    for name, figures in results.items():
        print(f"{name:32} p50 {figures['p50_ms']:7.1f} ms   p95 {figures['p95_ms']:7.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_signatures.json").write_text(json.dumps({"runs": args.runs, "results": results}, indent=2)
                                                   + "\n")


if __name__ == "__main__":
    main()
