"""`gitops daemon --verify-ssh FILE --verify-gpg FILE` on the real Swarm: a commit that is not
signed by an allowed signer is held like a bad revision (the app stays at its last verified
revision, says why in its result, message and the log, and waits for a newer commit, without
verifying that one again); a signed commit after it is applied."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from signing import Keys
from test_daemon import DaemonProcess, service_image, swarm_repo
from testsupport import wait_for


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[Keys]:
    made = Keys(tmp_path / "keys")
    yield made
    made.close()


@pytest.mark.swarm
def test_the_daemon_holds_unsigned_and_foreign_commits_and_applies_a_signed_one(
    swarm_cluster: Any, docker_api: Any, stack: str, tmp_path: Path, keys: Keys
) -> None:
    repo, app, _ = swarm_repo(tmp_path, stack, interval="1s")
    first = keys.commit(repo.root, "signed by alice", "alice")
    with DaemonProcess(repo, "--verify-ssh", str(keys.allowed_signers),
                       "--verify-gpg", str(keys.key_file("bob"))) as daemon:
        daemon.first_sync(app, timeout=120)
        assert daemon.app(app)["revision"] == first
        [adopted] = [e for e in daemon.events() if e["event"] == "revision"]
        assert (adopted["signed_by"], adopted["key"]) == ("alice@example.com", keys.ssh_fingerprint["alice"])

        repo.edit("swarm/demo.env", "APP_TAG=1", "APP_TAG=2")
        for signer, why in ((None, "is not signed"),
                            ("eve", f"is signed by GPG key {keys.gpg_fingerprint['eve'][-16:]}, which is not an "
                                    "allowed signer")):
            refused = keys.commit(repo.root, f"v2 signed by {signer}", signer)
            wait_for("the refused commit held", lambda r=refused: daemon.app(app).get("held_revision") == r,  # type: ignore[misc]
                     timeout=30)
            time.sleep(3)  # three polls, and reconciles of the verified revision: still held, not verified again
            detail = daemon.app(app)
            assert (detail["revision"], detail["result"], detail["held_revision"]) == (first, "held", refused)
            assert detail["message"].startswith(f"revision {refused[:12]} refused: commit {refused[:12]} {why}")
            assert detail["message"].endswith("waiting for a newer commit")
            assert json.loads(daemon.get("/api/v1/apps")[1])["signature_error"] == detail["message"]
            held = [e for e in daemon.events() if e["event"] == "held" and e.get("revision") == refused]
            assert len(held) == 1, held
            assert service_image(docker_api, stack) == "gitops-test/app:1"
            assert [r["outcome"] for r in detail["releases"]] == ["succeeded"]

        signed = keys.commit(repo.root, "v2 signed by bob", "bob")
        wait_for("the signed commit applied", lambda: daemon.app(app).get("revision") == signed
                 and daemon.app(app).get("result") == "applied", timeout=120)
        assert service_image(docker_api, stack) == "gitops-test/app:2"
        detail = daemon.app(app)
        assert detail["held_revision"] == "" and [r["outcome"] for r in detail["releases"]] == ["succeeded"] * 2
        assert json.loads(daemon.get("/api/v1/apps")[1])["signature_error"] is None
        assert daemon.stop() == 0
