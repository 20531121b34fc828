"""Signed commits: the verification function (real git, ssh-keygen and gpg, in temporary
directories), the ``verify:`` setting of gitops.yaml, the engine's workspaces under verification,
the exit code, and the daemon holding a refused revision (an in-memory backend)."""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from signing import Keys

from gitops import config, engine, signatures
from gitops.cli import EXIT_UNSIGNED, exit_code
from gitops.daemon.log import Log
from gitops.errors import GitopsError, SignatureError

GITOPS_YAML = "version: 1\napps:\n  - {name: web, backend: kubernetes, paths: [k8s], target: {namespace: web}}\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    made = Keys(tmp_path_factory.mktemp("keys"))
    yield made
    made.close()


@pytest.fixture
def repo(tmp_path: Path, keys: Keys) -> Path:
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    (root / "gitops.yaml").write_text(GITOPS_YAML)
    (root / "k8s" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '1'}\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, capture_output=True)
    return root


def signers(keys: Keys, ssh: bool = True, gpg: bool = True) -> signatures.Signers:
    return signatures.Signers(ssh=keys.allowed_signers if ssh else None, gpg=(keys.key_file("bob"),) if gpg else ())


# -- the verification ---------------------------------------------------------------------------


def test_a_commit_signed_by_an_allowed_key_is_verified_over_ssh_and_gpg(repo: Path, keys: Keys) -> None:
    by_alice = keys.commit(repo, "alice", "alice")
    signature = signatures.verify(repo, by_alice, signers(keys))
    assert (signature.kind, signature.signer, signature.key) == ("ssh", "alice@example.com",
                                                                 keys.ssh_fingerprint["alice"])
    assert str(signature).startswith(f"commit {by_alice[:12]}: good SSH signature by alice@example.com")
    by_bob = keys.commit(repo, "bob", "bob")
    signature = signatures.verify(repo, by_bob, signers(keys))
    assert (signature.kind, signature.key) == ("gpg", keys.gpg_fingerprint["bob"])
    assert "bob@example.com" in signature.signer
    # A directory of keys (a mounted Secret) holds the allowed ones too.
    keys_dir = repo.parent / "keys.d"
    keys_dir.mkdir()
    (keys_dir / "bob.asc").write_text(keys.key_file("bob").read_text())
    assert signatures.verify(repo, by_bob, signatures.Signers(gpg=(keys_dir,))).kind == "gpg"


def test_an_unsigned_commit_is_refused_naming_the_commit(repo: Path, keys: Keys) -> None:
    unsigned = keys.commit(repo, "unsigned")
    with pytest.raises(SignatureError) as caught:
        signatures.verify(repo, unsigned, signers(keys))
    assert str(caught.value).startswith(f"commit {unsigned[:12]} is not signed;")
    assert str(keys.allowed_signers) in str(caught.value) and "nothing was changed" in str(caught.value)


@pytest.mark.parametrize(("signer", "allowed"), [("mallory", "both"), ("eve", "both"), ("bob", "ssh"),
                                                 ("alice", "gpg")])
def test_a_commit_signed_by_another_key_is_refused_naming_the_commit_and_the_key(
    repo: Path, keys: Keys, signer: str, allowed: str
) -> None:
    commit = keys.commit(repo, signer, signer)
    given = signers(keys, ssh=allowed in ("both", "ssh"), gpg=allowed in ("both", "gpg"))
    with pytest.raises(SignatureError) as caught:
        signatures.verify(repo, commit, given)
    message = str(caught.value)
    if signer in keys.ssh_fingerprint:
        key = f"SSH key {keys.ssh_fingerprint[signer]}"
    else:
        key = f"GPG key {keys.gpg_fingerprint[signer][-16:]}"  # gpg names a missing key by its long id
    assert message.startswith(f"commit {commit[:12]} is signed by {key}, which is not an allowed signer"), message


def test_a_tampered_signature_is_refused(repo: Path, keys: Keys) -> None:
    """The signed commit object rewritten (its message changed, the signature kept): bad."""
    signed = keys.commit(repo, "original", "alice")
    body = subprocess.run(["git", "cat-file", "commit", signed], cwd=repo, capture_output=True, check=True).stdout
    forged = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo, check=True,
                            input=body.replace(b"original", b"forged!!"), capture_output=True).stdout.decode().strip()
    with pytest.raises(SignatureError) as caught:
        signatures.verify(repo, forged, signers(keys))
    assert str(caught.value).startswith(f"commit {forged[:12]} has a bad signature"), caught.value


def test_verification_keeps_nothing_behind_and_starts_no_agent(repo: Path, keys: Keys,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = repo.parent / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    commit = keys.commit(repo, "bob", "bob")
    for _ in range(3):
        signatures.verify(repo, commit, signers(keys))
        with pytest.raises(SignatureError):
            signatures.verify(repo, keys.commit(repo, "eve", "eve"), signers(keys))
    assert list(scratch.iterdir()) == []  # every temporary GNUPGHOME removed
    agents = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).find(str(scratch)) >= 0]
    assert agents == [], "a gpg-agent was started for the verification keyring"


def _cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_signers_that_cannot_be_read_are_an_error_of_their_own(repo: Path, keys: Keys) -> None:
    commit = keys.commit(repo, "alice", "alice")
    with pytest.raises(signatures.SignersError, match=r"allowed signers file .*/nope"):
        signatures.verify(repo, commit, signatures.Signers(ssh=repo / "nope"))
    with pytest.raises(signatures.SignersError, match=r"cannot read the GPG key .*/nope\.asc"):
        signatures.verify(repo, commit, signatures.Signers(gpg=(repo / "nope.asc",)))
    junk = repo.parent / "junk.asc"
    junk.write_text("not a key\n")
    with pytest.raises(signatures.SignersError, match="cannot import the GPG key"):
        signatures.verify(repo, commit, signatures.Signers(gpg=(junk,)))
    assert not isinstance(signatures.SignersError("x"), SignatureError)  # bad input (exit 1), not a refusal


def test_a_refused_revision_exits_4_and_outranks_every_outcome() -> None:
    assert exit_code(error=SignatureError("commit abc is not signed")) == EXIT_UNSIGNED == 4
    assert exit_code(error=GitopsError("other")) == 1


# -- gitops.yaml: verify ------------------------------------------------------------------------


def test_verify_required_is_read_and_signers_are_refused_from_the_repository() -> None:
    assert config.parse(GITOPS_YAML).verify_required is False
    assert config.parse(GITOPS_YAML + "verify: {required: true}\n").verify_required is True
    with pytest.raises(config.ConfigError) as caught:
        config.parse(GITOPS_YAML + "verify:\n  signers: {ssh: allowed_signers}\n")
    [problem] = caught.value.diagnostics
    assert problem.message.startswith("verify.signers: the allowed signers cannot come from the repository")
    assert "--verify-ssh FILE" in problem.message and (problem.file, problem.line) == ("gitops.yaml", 5)
    with pytest.raises(config.ConfigError) as caught:
        config.parse(GITOPS_YAML + "verify: {required: yes please}\n")
    assert caught.value.diagnostics[0].message.startswith("verify.required: 'yes please' is not of type 'boolean'")
    with pytest.raises(config.ConfigError) as caught:
        config.parse(GITOPS_YAML + "verify: {mode: HEAD}\n")
    assert caught.value.diagnostics[0].message == "verify: unknown field 'mode'"


# -- the engine's workspaces --------------------------------------------------------------------


def test_a_signed_work_tree_is_read_at_its_commit_and_uncommitted_changes_are_refused(
    repo: Path, keys: Keys, tmp_path: Path
) -> None:
    signed = keys.commit(repo, "signed", "alice")
    ws = engine.open_workspace(cwd=repo, signers=signers(keys), cache_dir=tmp_path / "cache")
    assert ws.revision == signed and ws.signature is not None and ws.signature.signer == "alice@example.com"
    assert ws.root != repo.resolve() and not ws.local  # a snapshot of the signed commit, not the files on disk
    (repo / "plan.json").write_text("{}")  # an untracked file is in no commit: not read, not refused
    engine.open_workspace(cwd=repo, signers=signers(keys), cache_dir=tmp_path / "cache")
    (repo / "k8s" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: '2'}\n")
    with pytest.raises(SignatureError) as caught:
        engine.open_workspace(cwd=repo, signers=signers(keys), cache_dir=tmp_path / "cache")
    assert f"has uncommitted changes (k8s/cm.yaml): with signed commits only the signed commit {signed[:12]}" \
        in str(caught.value)
    unsigned = keys.commit(repo, "unsigned")
    with pytest.raises(SignatureError, match=f"commit {unsigned[:12]} is not signed"):
        engine.open_workspace(cwd=repo, signers=signers(keys), cache_dir=tmp_path / "cache")
    # Without signers nothing is verified, and the work tree is read as it is.
    assert engine.open_workspace(cwd=repo).root == repo.resolve()


def test_verify_required_fails_closed_without_signers_and_a_fetched_revision_is_verified(
    repo: Path, keys: Keys, tmp_path: Path
) -> None:
    (repo / "gitops.yaml").write_text(GITOPS_YAML + "verify: {required: true}\n")
    unsigned = keys.commit(repo, "unsigned")
    with pytest.raises(SignatureError) as caught:
        engine.open_workspace(cwd=repo, signers=signatures.Signers())
    assert str(caught.value).startswith(f"revision {unsigned[:12]}: gitops.yaml requires signed commits "
                                        "(verify.required), but no allowed signers were given")
    engine.open_workspace(cwd=repo)  # status, history: nothing verified, nothing required
    cache = tmp_path / "cache"
    with pytest.raises(SignatureError, match=f"commit {unsigned[:12]} is not signed"):
        engine.open_workspace(repo=str(repo), ref="main", signers=signers(keys), cache_dir=cache)
    with pytest.raises(SignatureError, match=f"commit {unsigned[:12]} is not signed"):
        engine.open_revision(str(repo), unsigned, cache, signers=signers(keys))
    signed = keys.commit(repo, "signed", "bob")
    ws = engine.open_workspace(repo=str(repo), ref="main", signers=signers(keys), cache_dir=cache)
    assert ws.revision == signed and ws.signature is not None and ws.signature.kind == "gpg"
    assert engine.open_revision(str(repo), signed, cache, signers=signers(keys)).signature == ws.signature


# -- the daemon holds a refused revision ---------------------------------------------------------


def test_the_daemon_holds_a_refused_revision_keeps_the_last_verified_one_and_applies_a_signed_commit(
    repo: Path, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes import FakeBackend, res

    from gitops.daemon.loop import Daemon, Options

    fake = FakeBackend(app="web")
    values: dict[str, str] = {}

    def render(ws: engine.Workspace, app: config.App, *_: object, **__: object) -> tuple[list[object], list[object]]:
        values[ws.revision or ""] = (ws.root / "k8s" / "cm.yaml").read_text().split("a: '")[1][0]
        return [res("ConfigMap", "web", image=f"v{values[ws.revision or '']}")], []

    monkeypatch.setattr(engine, "render_app", render)
    monkeypatch.setattr(engine, "backend_for", lambda *_a, **_k: fake)
    monkeypatch.setattr(engine, "revision_of", lambda ws, *_a: ws.revision)
    out = io.StringIO()
    daemon = Daemon(Options(repo=str(repo), ref="main", leader_election="off", cache_dir=tmp_path / "cache",
                            signers=signers(keys)), log=Log("json", out))
    daemon.leading.set()

    def poll_and_reconcile() -> dict[str, object]:
        daemon._check_repository(0.0)
        assert daemon.workspace is not None
        daemon._reconcile("web", daemon.workspace)
        return daemon.snapshot()[0]

    def live() -> object:
        return fake.objects[res("ConfigMap", "web").key]["image"]

    first = keys.commit(repo, "v1", "alice")
    app = poll_and_reconcile()
    assert (app["revision"], app["result"], live()) == (first, "applied", "v1")

    def edit(value: str) -> None:
        (repo / "k8s" / "cm.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\n"
                                              f"data: {{a: '{value}'}}\n")

    for value, signer, why in (("2", None, "is not signed"),
                               ("3", "mallory", f"is signed by SSH key {keys.ssh_fingerprint['mallory']}")):
        edit(value)
        refused = keys.commit(repo, f"v{value}", signer)
        for _ in range(2):  # held: the apps stay at the verified revision, and it is not fetched again
            app = poll_and_reconcile()
            assert daemon.workspace is not None and daemon.workspace.revision == first
            assert (app["revision"], app["result"], app["held_revision"]) == (first, "held", refused)
            assert str(app["message"]).startswith(f"revision {refused[:12]} refused: commit {refused[:12]} {why}")
            assert str(app["message"]).endswith("waiting for a newer commit") and app["problems"]
            assert live() == "v1" and refused not in values
        assert daemon.signature_error == app["message"]
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        assert len([e for e in events if e["event"] == "held" and e.get("revision") == refused]) == 1

    edit("4")
    fixed = keys.commit(repo, "v4", "bob")
    app = poll_and_reconcile()
    assert (app["revision"], app["result"], app["held_revision"], live()) == (fixed, "applied", "", "v4")
    assert daemon.signature_error == "" and app["problems"] == []
    [adopted] = [e for e in map(json.loads, out.getvalue().splitlines())
                 if e["event"] == "revision" and e["revision"] == fixed]
    assert adopted["key"] == keys.gpg_fingerprint["bob"]
