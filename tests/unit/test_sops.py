"""SOPS decryption at render time, on files that the real ``sops`` binary encrypted (YAML, JSON,
dotenv and binary): a Kubernetes Secret, a compose secret file and an env file decrypt in memory;
a missing key names the file and its recipients; a tampered file is refused; a plain file never
starts sops; a release record holds no decrypted value."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sopstools
from sopstools import AgeKey, Tools

from gitops import config, deploy, engine
from gitops import render as render_stage
from gitops.backends.swarm import translate as tr
from gitops.errors import DecryptionKeyError, SopsNotFoundError, TamperedError
from gitops.model import Origin, Resource, ResourceKey, Severity
from gitops.model.releases import SOPS_KEY, pack_resources, unpack_resources
from gitops.render import sops as sops_files
from gitops.validate.compose_rules import SENSITIVE_COMPOSE_KEY

CANARY = "s0ps-c4n4ry-7f3a"
SECRET = f"""apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  password: {CANARY}
data:
  token: {base64.b64encode(CANARY.encode()).decode()}
""".encode()
REGEX = "^(data|stringData)$"


@pytest.fixture(scope="module")
def tools() -> Tools:
    return sopstools.tools()


@pytest.fixture
def key(tools: Tools, tmp_path: Path) -> AgeKey:
    return sopstools.age_key(tools, tmp_path / "age.key")


@pytest.fixture
def other_key(tools: Tools, tmp_path: Path) -> AgeKey:
    return sopstools.age_key(tools, tmp_path / "other.key")


def _sops(tools: Tools, key: AgeKey | None) -> sops_files.Sops:
    environ = {"PATH": "/usr/bin:/bin", "GITOPS_SOPS": str(tools.sops)}
    if key is not None:
        environ["SOPS_AGE_KEY_FILE"] = str(key.file)
    return sops_files.Sops.from_environ(environ)


def _render(root: Path, path: Path, sops: sops_files.Sops | None) -> render_stage.Rendered:
    renderer = render_stage.Renderer(root, env={}, sops=sops)
    renderer.add_path(path)
    return renderer.result


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_secret_encrypted_by_sops_decrypts_in_memory(tools: Tools, key: AgeKey, tmp_path: Path, fmt: str) -> None:
    plain = SECRET if fmt == "yaml" else json.dumps(_yaml(SECRET)).encode()
    path = sopstools.encrypt_to(tools, tmp_path / f"secret.{fmt}", plain, key.recipient, fmt, regex=REGEX)
    encrypted = path.read_bytes()
    assert CANARY.encode() not in encrypted and sops_files.format_of(encrypted) == fmt
    rendered = _render(tmp_path, path, _sops(tools, key))
    assert not rendered.diagnostics
    [manifest] = rendered.manifests
    assert manifest.body["stringData"] == {"password": CANARY}
    assert base64.b64decode(manifest.body["data"]["token"]).decode() == CANARY
    assert manifest.body["metadata"]["annotations"] == {SOPS_KEY: "decrypted"}
    assert "sops" not in manifest.body
    # What the renderer keeps of the file (for line lookups) is the encrypted text.
    assert rendered.sources[f"secret.{fmt}"][0] == encrypted
    assert not any(CANARY in repr(lines) for lines in rendered.lines.values())


def test_a_whole_secret_document_encrypted_decrypts(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "secret.yaml", SECRET, key.recipient, "yaml")
    rendered = _render(tmp_path, path, _sops(tools, key))
    assert not rendered.diagnostics
    assert rendered.manifests[0].body["stringData"]["password"] == CANARY


def test_a_missing_key_names_the_file_and_the_recipients(tools: Tools, key: AgeKey, other_key: AgeKey,
                                                         tmp_path: Path) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "secret.yaml", SECRET, key.recipient, "yaml", regex=REGEX)
    with pytest.raises(DecryptionKeyError) as caught:
        _sops(tools, other_key).decrypt(path.read_bytes(), "yaml", "k8s/secret.yaml")
    message = str(caught.value)
    assert "k8s/secret.yaml" in message and key.recipient in message and CANARY not in message
    # Through the renderer: an error diagnostic of its own code, naming the file; no manifest.
    rendered = _render(tmp_path, path, _sops(tools, None))
    [problem] = rendered.diagnostics
    assert (problem.severity, problem.code, problem.file) == (Severity.ERROR, "sops-no-key", "secret.yaml")
    assert key.recipient in problem.message and "SOPS_AGE_KEY_FILE" in problem.message
    assert not rendered.manifests


def test_a_tampered_file_is_refused(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "secret.yaml", SECRET, key.recipient, "yaml", regex=REGEX)
    path.write_bytes(path.read_bytes().replace(b"name: db", b"name: evil"))  # unencrypted, but under the MAC
    with pytest.raises(TamperedError, match=r"secret\.yaml: refused: this SOPS file does not match its MAC"):
        _sops(tools, key).decrypt(path.read_bytes(), "yaml", "secret.yaml")
    rendered = _render(tmp_path, path, _sops(tools, key))
    assert [d.code for d in rendered.diagnostics] == ["sops-mac-mismatch"] and not rendered.manifests


def test_no_sops_binary_says_how_to_install_it(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "secret.yaml", SECRET, key.recipient, "yaml", regex=REGEX)
    missing = sops_files.Sops.from_environ({"PATH": str(tmp_path / "empty")})
    assert missing.binary is None
    with pytest.raises(SopsNotFoundError, match=r"go install github\.com/getsops/sops/v3/cmd/sops@"):
        missing.decrypt(path.read_bytes(), "yaml", "secret.yaml")
    assert [d.code for d in _render(tmp_path, path, missing).diagnostics] == ["sops-not-found"]


def test_only_a_secret_may_be_encrypted(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    plain = SECRET.replace(b"kind: Secret", b"kind: ConfigMap")
    path = sopstools.encrypt_to(tools, tmp_path / "cm.yaml", plain, key.recipient, "yaml", regex=REGEX)
    [problem] = _render(tmp_path, path, _sops(tools, key)).diagnostics
    assert problem.code == "sops-not-secret" and "ConfigMap" in problem.message


def test_plain_files_never_start_sops(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {sops: x}\n")
    broken = sops_files.Sops(str(tmp_path / "no-such-sops"))  # would fail if it were called
    rendered = _render(tmp_path, tmp_path / "cm.yaml", broken)
    assert not rendered.diagnostics and rendered.manifests[0].body["data"] == {"sops": "x"}
    for plain in (b"A=1\nsops=2\n", b'{"data": "x", "sops": {"mac": 1}}', b"sops: {version: 3}\n", b"no marker"):
        assert sops_files.format_of(plain) is None


def test_a_binary_secret_file_decrypts_for_the_swarm_secret(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    raw = b"\x00\x01" + CANARY.encode() + b"\xff"
    path = sopstools.encrypt_to(tools, tmp_path / "cert.bin", raw, key.recipient, "binary")
    assert sops_files.format_of(path.read_bytes()) == "binary"
    assert sops_files.recipients(path.read_bytes(), "binary") == [key.recipient]
    compose = {"services": {"app": {"image": "app:1", "secrets": ["cert"]}},
               "secrets": {"cert": {"file": "./cert.bin"}}}
    result = tr.translate(compose, "shop", read_file=lambda p: (tmp_path / p).read_bytes(), file="compose.yaml",
                          decrypt=_sops(tools, key).decrypt)
    assert not result.diagnostics.errors
    [secret] = result.secrets.values()
    assert secret.data is not None and secret.data.reveal() == raw
    # A config may not be SOPS-encrypted: its content is shown in plans.
    as_config = {"services": {"app": {"image": "app:1", "configs": ["cert"]}},
                 "configs": {"cert": {"file": "cert.bin"}}}
    refused = tr.translate(as_config, "shop", read_file=lambda p: (tmp_path / p).read_bytes(), file="compose.yaml",
                           decrypt=_sops(tools, key).decrypt)
    assert any("SOPS-encrypted: only a secret may be" in d.message for d in refused.diagnostics.errors)


def test_a_swarm_secret_file_without_the_key_is_refused_naming_it(tools: Tools, key: AgeKey, other_key: AgeKey,
                                                                 tmp_path: Path) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "db.json", json.dumps({"pw": CANARY}).encode(), key.recipient,
                                "json")
    compose = {"services": {"app": {"image": "app:1", "secrets": ["db"]}}, "secrets": {"db": {"file": "db.json"}}}
    with pytest.raises(DecryptionKeyError, match=f"swarm/db.json: .*{key.recipient}"):
        tr.translate(compose, "shop", read_file=lambda p: path.read_bytes(), file="swarm/compose.yaml",
                     decrypt=_sops(tools, other_key).decrypt)


def _swarm_repo(tmp_path: Path, tools: Tools, key: AgeKey, compose: str) -> engine.Workspace:
    (tmp_path / "gitops.yaml").write_text(
        "version: 1\napps:\n  - name: demo\n    backend: swarm\n    paths: [compose.yaml]\n"
        f"    env_files: [secrets.env]\n    target: {{stack: demo}}\nsops: {{age_key_file: {key.file}}}\n")
    sopstools.encrypt_to(tools, tmp_path / "secrets.env", f"DB_PASS={CANARY}\nLEVEL=debug\n".encode(), key.recipient,
                         "dotenv")
    (tmp_path / "compose.yaml").write_text(compose)
    return engine.Workspace(tmp_path, None, config.load(tmp_path))


def test_a_dotenv_env_file_decrypts_and_marks_the_environment_values_it_fills(tools: Tools, key: AgeKey,
                                                                              tmp_path: Path) -> None:
    ws = _swarm_repo(tmp_path, tools, key, "services:\n  app:\n    image: app:1\n    environment:\n"
                     "      CONN: postgres://u:${DB_PASS}@db\n      LEVEL: $LEVEL\n  web:\n    image: app:1\n"
                     "    environment: [\"X=${DB_PASS}\", \"Y=1\"]\n")
    assert ws.settings.sops_age_key_file == str(key.file)
    # The key comes from gitops.yaml: the environment passed holds none.
    sops = engine.sops_tool(ws.settings, {"GITOPS_SOPS": str(tools.sops)})
    resources, _ = engine.render_app(ws, ws.settings.app("demo"), env={}, sops=sops)
    [compose] = resources
    services = compose.body["services"]
    assert services["app"]["environment"] == {"CONN": f"postgres://u:{CANARY}@db", "LEVEL": "debug"}
    assert services["app"][SENSITIVE_COMPOSE_KEY] == ["CONN", "LEVEL"]
    assert services["web"][SENSITIVE_COMPOSE_KEY] == ["X"]
    assert render_stage.SENSITIVE_COMPOSE_KEY == SENSITIVE_COMPOSE_KEY  # the renderer's copy of the name


def test_a_decrypted_value_outside_an_environment_value_is_refused(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    ws = _swarm_repo(tmp_path, tools, key, "services:\n  app:\n    image: app:1\n    command: [echo, $DB_PASS]\n"
                     "    labels: {level: $LEVEL}\n")
    with pytest.raises(engine.ValidationFailed) as caught:
        engine.render_app(ws, ws.settings.app("demo"), env={}, sops=engine.sops_tool(ws.settings,
                                                                                    {"GITOPS_SOPS": str(tools.sops)}))
    problems = [d for d in caught.value.diagnostics if d.code == "sops-value-use"]
    # LEVEL came from the SOPS file too: a label holding it is refused as well.
    assert [(d.file, d.pointer) for d in problems] == [("compose.yaml", "/services/app/command/1"),
                                                       ("compose.yaml", "/services/app/labels/level")]
    assert "DB_PASS" in problems[0].message and "secrets.env" in problems[0].message
    assert CANARY not in str(caught.value)


def test_a_relative_age_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gitops.yaml").write_text("version: 1\nsops: {age_key_file: keys/age.txt}\napps:\n  - name: a\n"
                                          "    backend: swarm\n    paths: [c.yaml]\n    target: {stack: a}\n")
    with pytest.raises(config.ConfigError, match=r"sops\.age_key_file must be an absolute path"):
        config.load(tmp_path)


def test_the_environment_of_sops_is_built_from_a_list() -> None:
    sops = sops_files.Sops.from_environ({"PATH": "/bin", "SOPS_AGE_KEY": "AGE-SECRET-KEY-1", "GITOPS_API_TOKEN": "t",
                                         "AWS_PROFILE": "p", "GITOPS_SOPS": "/x/sops"}, age_key_file="~/k.txt")
    assert sops.binary == "/x/sops"
    assert dict(sops.environ) == {"PATH": "/bin", "SOPS_AGE_KEY": "AGE-SECRET-KEY-1", "AWS_PROFILE": "p",
                                  "SOPS_AGE_KEY_FILE": str(Path("~/k.txt").expanduser())}
    kept = sops_files.Sops.from_environ({"SOPS_AGE_KEY_FILE": "/env.key"}, age_key_file="/config.key")
    assert kept.environ["SOPS_AGE_KEY_FILE"] == "/env.key"  # the environment wins over gitops.yaml


def _secret_resource(annotated: bool) -> Resource:
    annotations = {SOPS_KEY: "decrypted"} if annotated else {}
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "annotations": annotations},
            "stringData": {"password": CANARY}, "type": "Opaque"}
    return Resource(ResourceKey("", "Secret", "shop", "db"), "v1", body, Origin("secret.yaml", 1, 1))


def test_a_release_record_withholds_decrypted_values() -> None:
    packed = pack_resources([_secret_resource(True), _secret_resource(False)])
    withheld, plain = unpack_resources(packed)
    assert "stringData" not in withheld.body and withheld.body["type"] == "Opaque"
    assert plain.body["stringData"] == {"password": CANARY}  # a plain Secret of git is recorded as before


class _Live:
    """The one Backend method a rollback's restore uses: observe."""

    def __init__(self, live: dict[ResourceKey, dict[str, Any] | None]) -> None:
        self.live = live

    def observe(self, keys: Iterator[ResourceKey]) -> dict[ResourceKey, dict[str, Any] | None]:
        return {k: self.live.get(k) for k in keys}


def test_a_rollback_takes_withheld_values_from_the_live_secret() -> None:
    [recorded] = unpack_resources(pack_resources([_secret_resource(True)]))
    live = {"metadata": {"name": "db"}, "data": {"password": base64.b64encode(b"live").decode()}}
    [restored] = deploy._restore_withheld(_Live({recorded.key: live}), [recorded], "a" * 40)  # type: ignore[arg-type]
    assert restored.body["data"] == live["data"]
    with pytest.raises(Exception, match="its values came from a SOPS file and are never recorded"):
        deploy._restore_withheld(_Live({}), [recorded], "a" * 40)  # type: ignore[arg-type]


def _yaml(data: bytes) -> Any:
    from gitops.render.yaml import Dialect, load

    return load(data, "x", Dialect.KUBERNETES).documents[0].data


def test_a_swarm_service_record_withholds_env_values_from_a_sops_env_file() -> None:
    body = {"Name": "s_app", "Labels": {SOPS_KEY: "CONN"},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1", "Env": [f"CONN=pg://{CANARY}", "LEVEL=info"]}}}
    service = Resource(ResourceKey("swarm", "Service", "s", "s_app"), "swarm/v1", body, Origin("compose.yaml"))
    [recorded] = unpack_resources(pack_resources([service]))
    assert recorded.body["TaskTemplate"]["ContainerSpec"]["Env"] == ["CONN", "LEVEL=info"]
    assert CANARY not in json.dumps(recorded.body)
    live = {"Spec": {"TaskTemplate": {"ContainerSpec": {"Env": ["CONN=pg://live", "LEVEL=debug"]}}}}
    [restored] = deploy._restore_withheld(_Live({service.key: live}), [recorded], "b" * 40)  # type: ignore[arg-type]
    assert restored.body["TaskTemplate"]["ContainerSpec"]["Env"] == ["CONN=pg://live", "LEVEL=info"]
    assert restored.body["TaskTemplate"]["ContainerSpec"]["Image"] == "app:1"
    gone = {"Spec": {"TaskTemplate": {"ContainerSpec": {"Env": ["LEVEL=debug"]}}}}
    with pytest.raises(Exception, match="cannot roll back"):
        deploy._restore_withheld(_Live({service.key: gone}), [recorded], "b" * 40)  # type: ignore[arg-type]


def test_the_translator_labels_the_variables_from_sops() -> None:
    compose = {"services": {"app": {"image": "app:1", "environment": {"CONN": "x"}, SENSITIVE_COMPOSE_KEY: ["CONN"],
                                    render_stage.SOPS_COMPOSE_KEY: ["CONN"]}}}
    result = tr.translate(compose, "shop", file="compose.yaml")
    assert not result.diagnostics.errors
    [service] = result.services.values()
    assert service.spec["Labels"][SOPS_KEY] == "CONN"


def test_an_encrypted_document_out_of_kustomize_or_helm_is_an_error(tools: Tools, key: AgeKey, tmp_path: Path) -> None:
    from gitops.render.yaml import Dialect, load

    path = sopstools.encrypt_to(tools, tmp_path / "secret.yaml", SECRET, key.recipient, "yaml", regex=REGEX)
    renderer = render_stage.Renderer(tmp_path, env={}, sops=_sops(tools, key))
    documents = load(path.read_bytes(), "k", Dialect.KUBERNETES).documents
    assert renderer._encrypted_inside(documents, "k/kustomization.yaml", "a kustomization")
    assert [d.code for d in renderer.result.diagnostics] == ["sops-not-here"]
    assert not renderer._encrypted_inside(load(SECRET, "k", Dialect.KUBERNETES).documents, "k", "a kustomization")


@pytest.fixture
def gnupg() -> Iterator[dict[str, str]]:
    """A GNUPGHOME of the test's own (a short path: gpg-agent's sockets live in it) with a key that
    can encrypt (gpg's default algorithms: an ed25519 primary key and a cv25519 subkey)."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg is not installed: PGP is used only where it is")
    home = Path(tempfile.mkdtemp(prefix="sg-"))
    home.chmod(0o700)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "GNUPGHOME": str(home)}
    try:
        subprocess.run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
                        "--quick-gen-key", "Sops Test <sops@example.com>", "default", "default", "never"],
                       env=env, check=True, capture_output=True, timeout=60)
        colons = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", "sops@example.com"], env=env,
                                check=True, capture_output=True, text=True).stdout
        env["FINGERPRINT"] = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
        yield env
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], env=env, check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_pgp_encrypted_secret_decrypts_with_gpg_and_names_the_fingerprint_without_it(
        tools: Tools, gnupg: dict[str, str], tmp_path: Path) -> None:
    import subprocess

    plain = tmp_path / "secret.yaml"
    plain.write_bytes(SECRET)
    result = subprocess.run([str(tools.sops), "encrypt", "--pgp", gnupg["FINGERPRINT"], "--encrypted-regex", REGEX,
                             str(plain)], env={k: v for k, v in gnupg.items() if k != "FINGERPRINT"},
                            capture_output=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    encrypted = result.stdout
    with_gpg = sops_files.Sops.from_environ({**gnupg, "GITOPS_SOPS": str(tools.sops)})
    assert b"password: " + CANARY.encode() in with_gpg.decrypt(encrypted, "yaml", "secret.yaml")
    assert sops_files.recipients(encrypted, "yaml") == [f"pgp {gnupg['FINGERPRINT']}"]
    elsewhere = tmp_path / "empty-gnupg"
    elsewhere.mkdir(mode=0o700)
    without = sops_files.Sops.from_environ({"PATH": "/usr/bin:/bin", "HOME": str(elsewhere),
                                            "GNUPGHOME": str(elsewhere), "GITOPS_SOPS": str(tools.sops)})
    try:
        with pytest.raises(DecryptionKeyError, match=gnupg["FINGERPRINT"]):
            without.decrypt(encrypted, "yaml", "secret.yaml")
    finally:
        subprocess.run(["gpgconf", "--homedir", str(elsewhere), "--kill", "all"], check=False, capture_output=True)


@pytest.mark.parametrize(("fmt", "plain", "expected"), [
    ("yaml", f"password: {CANARY}\n", f"password: {CANARY}\n"),
    ("dotenv", f"PASSWORD={CANARY}\n", f"PASSWORD={CANARY}\n"),
    ("json", json.dumps({"password": CANARY}), json.dumps({"password": CANARY}, indent="\t")),
])
def test_a_secret_file_in_each_format_sops_writes_decrypts(tools: Tools, key: AgeKey, tmp_path: Path, fmt: str,
                                                            plain: str, expected: str) -> None:
    path = sopstools.encrypt_to(tools, tmp_path / "db.secret", plain.encode(), key.recipient, fmt)
    assert sops_files.format_of(path.read_bytes()) == fmt
    compose = {"services": {"app": {"image": "app:1", "secrets": ["db"]}}, "secrets": {"db": {"file": "db.secret"}}}
    result = tr.translate(compose, "shop", read_file=lambda p: path.read_bytes(), file="compose.yaml",
                          decrypt=_sops(tools, key).decrypt)
    [secret] = result.secrets.values()
    assert secret.data is not None
    assert secret.data.reveal().decode().strip() == expected.strip()  # what `sops decrypt` prints


def test_a_schema_error_in_a_decrypted_secret_does_not_quote_the_value(tools: Tools, key: AgeKey,
                                                                       tmp_path: Path) -> None:
    plain = b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\nstringData:\n  pin: 480317\n"
    sopstools.encrypt_to(tools, tmp_path / "s.yaml", plain, key.recipient, "yaml", regex=REGEX)
    report = engine.validate(["s.yaml"], cwd=tmp_path, env={"GITOPS_SOPS": str(tools.sops),
                                                            "SOPS_AGE_KEY_FILE": str(key.file)})
    [problem] = report.diagnostics
    assert problem.pointer == "/stringData/pin" and problem.line == 7  # its line in the encrypted file
    assert "480317" not in problem.message and "got integer (the value is not shown" in problem.message
