"""SOPS-encrypted secrets in git, deployed through the CLI on both real backends.

The files are encrypted by the real ``sops`` binary (built by the harness) for an age key of the
test. The running objects hold the decrypted values (a Kubernetes Secret read back through the API,
a Swarm secret printed by the service into its log), while the plan (text and JSON), the plan
file, the apply output and the recorded state hold none of them (nor their base64 or hex). A
tampered file and a missing key are refused with messages naming the file, and nothing is written.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import sopstools
from repos import Repo, git
from sopstools import AgeKey, Tools
from testsupport import wait_for

REGEX = "^(data|stringData)$"


def _canary(tag: str) -> str:
    return f"sops-{tag}-{uuid.uuid4().hex[:12]}"


def _forms(*canaries: str) -> list[str]:
    """Each canary as it could leak: itself, its base64 and its hex."""
    return [form for c in canaries for form in (c, base64.b64encode(c.encode()).decode(), c.encode().hex())]


def _assert_clean(where: str, text: str, canaries: list[str]) -> None:
    leaked = [form for form in canaries if form in text]
    assert not leaked, f"{where} holds a decrypted value ({leaked})"


@pytest.fixture(scope="module")
def tools() -> Tools:
    return sopstools.tools()


def _repo(root: Path, files: dict[str, str | bytes], env: dict[str, str]) -> Repo:
    root.mkdir(parents=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(root, "init", "-q", "-b", "main")
    repo = Repo(root, env)
    repo.commit("init")
    return repo


def _encrypted(tools: Tools, key: AgeKey, tmp: Path, plain: str | bytes, fmt: str, regex: str | None = None) -> bytes:
    data = plain.encode() if isinstance(plain, str) else plain
    return sopstools.encrypt_to(tools, tmp / f"scratch-{uuid.uuid4().hex[:6]}", data, key.recipient, fmt,
                                regex=regex).read_bytes()


def _env(tools: Tools, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SOPS_")}
    return {**env, "GITOPS_SOPS": str(tools.sops), **extra}


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    return output


@pytest.mark.kube
def test_sops_secrets_on_kubernetes(kube_cluster: Any, namespace: str, tools: Tools, tmp_path: Path) -> None:
    from gitops.backends.kubernetes.backend import KubernetesBackend
    from gitops.backends.kubernetes.client import KubeClient

    key, other = sopstools.age_key(tools, tmp_path / "age.key"), sopstools.age_key(tools, tmp_path / "other.key")
    password, token, whole = _canary("pw"), _canary("token"), _canary("whole")
    canaries = _forms(password, token, whole)
    app = f"sops-{namespace[-6:]}"
    secret = (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {namespace}\n"
              f"stringData:\n  password: {password}\ndata:\n  token: {base64.b64encode(token.encode()).decode()}\n")
    whole_secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\n  namespace: {namespace}\n" \
                   f"stringData:\n  key: {whole}\n"
    config_map = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {namespace}\n" \
                 "data:\n  LEVEL: info\n"
    deployment = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 1
  progressDeadlineSeconds: 30
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: app
          image: gitops-test/app:1
          envFrom: [{{secretRef: {{name: db}}}}]
"""
    env = _env(tools, KUBECONFIG=str(kube_cluster.kubeconfig), SOPS_AGE_KEY_FILE=str(key.file))
    repo = _repo(tmp_path / "repo", {
        "gitops.yaml": f"version: 1\napps:\n  - name: {app}\n    backend: kubernetes\n    paths: [k8s]\n"
                       f"    target: {{namespace: {namespace}}}\n",
        "k8s/secret.yaml": _encrypted(tools, key, tmp_path, secret, "yaml", REGEX),
        "k8s/api.json": _encrypted(tools, key, tmp_path, json.dumps(_load(whole_secret)), "json"),
        "k8s/settings.yaml": config_map,
        "k8s/web.yaml": deployment,
    }, env)
    assert password.encode() not in (repo.root / "k8s/secret.yaml").read_bytes()

    plan = repo.gitops("plan", app, "--out", "plan.json", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"+ Secret/{namespace}/db" in plan.stdout and f"+ Secret/{namespace}/api" in plan.stdout
    plan_json = repo.gitops("plan", app, "--output", "json")
    assert plan_json.returncode == 0, plan_json.stderr
    applied = repo.gitops("apply", "plan.json", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for where, text in [("plan", plan.stdout + plan.stderr), ("plan --output json", plan_json.stdout),
                        ("the plan file", (repo.root / "plan.json").read_text()),
                        ("apply --output json", applied.stdout + applied.stderr)]:
        _assert_clean(where, text, canaries)

    client = KubeClient(str(kube_cluster.kubeconfig))
    secret_type, cm_type = client.resource_type("v1", "Secret"), client.resource_type("v1", "ConfigMap")
    assert secret_type is not None and cm_type is not None
    live = client.get(secret_type, namespace, "db")
    assert live is not None
    assert base64.b64decode(live["data"]["password"]).decode() == password
    assert base64.b64decode(live["data"]["token"]).decode() == token
    api_secret = client.get(secret_type, namespace, "api")
    assert api_secret is not None and base64.b64decode(api_secret["data"]["key"]).decode() == whole
    state = KubernetesBackend(client, app, namespace=namespace).load_state()
    recorded = json.dumps(state.to_json()) + json.dumps([r.body for rel in state.releases for r in rel.resources()])
    _assert_clean("the release record", recorded, canaries)
    assert any(r.key.name == "db" for r in state.releases[-1].resources())  # recorded, without its values
    raw_state = client.get(secret_type, "gitops-system", f"gitops-state-{app}")
    _assert_clean("the state Secret", json.dumps(raw_state), canaries)

    # A tampered file (its Secret renamed under the MAC), with a ConfigMap change in the same commit.
    good = (repo.root / "k8s/secret.yaml").read_bytes()
    (repo.root / "k8s/secret.yaml").write_bytes(good.replace(b"name: db", b"name: stolen"))
    repo.edit("k8s/settings.yaml", "LEVEL: info", "LEVEL: debug")
    repo.commit("tampered")
    tampered = repo.gitops("apply", app, "--auto-approve")
    _refused(tampered, "k8s/secret.yaml", "does not match its MAC", "nothing was changed")
    _assert_clean("the refusal", tampered.stdout + tampered.stderr, canaries)

    # The right file again, but only another key at hand: refused, naming the file and recipient.
    (repo.root / "k8s/secret.yaml").write_bytes(good)
    repo.commit("restored")
    repo.env = {**env, "SOPS_AGE_KEY_FILE": str(other.file)}
    no_key = repo.gitops("apply", app, "--auto-approve")
    _refused(no_key, "k8s/secret.yaml", key.recipient, "nothing was changed")
    repo.env = {name: value for name, value in env.items() if name != "SOPS_AGE_KEY_FILE"}
    _refused(repo.gitops("plan", app), "k8s/secret.yaml", key.recipient, "no age key was given")

    # Nothing of those revisions was written.
    settings = client.get(cm_type, namespace, "settings")
    assert settings is not None and settings["data"] == {"LEVEL": "info"}
    assert client.get(secret_type, namespace, "stolen") is None
    assert len(KubernetesBackend(client, app, namespace=namespace).load_state().releases) == 1

    # With the key again it applies; a Secret changed in git is shown as changed, never by value.
    repo.env = env
    rotated = _canary("rotated")
    (repo.root / "k8s/secret.yaml").write_bytes(
        _encrypted(tools, key, tmp_path, secret.replace(password, rotated), "yaml", REGEX))
    repo.commit("rotate")
    changed = repo.gitops("plan", app, "--detailed-exitcode")
    assert changed.returncode == 2 and f"~ Secret/{namespace}/db" in changed.stdout
    _assert_clean("the rotation plan", changed.stdout + changed.stderr, [*canaries, *_forms(rotated)])
    assert repo.gitops("apply", app, "--auto-approve").returncode == 0
    live = client.get(secret_type, namespace, "db")
    assert live is not None and base64.b64decode(live["data"]["password"]).decode() == rotated

    # A crashing revision is rolled back to the release before, whose record holds the Secret
    # without its values: the rollback applies it with the live values, which stay.
    repo.edit("k8s/web.yaml", "gitops-test/app:1", "gitops-test/crash:1")
    repo.commit("crashing")
    failed = repo.gitops("apply", app, "--auto-approve")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    every = [*canaries, *_forms(rotated)]
    _assert_clean("the rolled-back apply", failed.stdout + failed.stderr, every)
    deployment_type = client.resource_type("apps/v1", "Deployment")
    assert deployment_type is not None
    web = client.get(deployment_type, namespace, "web")
    assert web is not None and web["spec"]["template"]["spec"]["containers"][0]["image"] == "gitops-test/app:1"
    live = client.get(secret_type, namespace, "db")
    assert live is not None and base64.b64decode(live["data"]["password"]).decode() == rotated
    assert base64.b64decode(live["data"]["token"]).decode() == token
    state = KubernetesBackend(client, app, namespace=namespace).load_state()
    assert [r.outcome.value for r in state.releases][-2:] == ["failed", "rolled-back"]
    recorded = json.dumps(state.to_json()) + json.dumps([r.body for rel in state.releases for r in rel.resources()])
    _assert_clean("the release records after the rollback", recorded, every)


def _service_log(docker_api: Any, service: str, wanted: str, timeout: float = 90) -> str:
    def read() -> str:
        chunks = docker_api.service_logs(service, stdout=True, stderr=True, tail="all")
        text = b"".join(chunks).decode("utf-8", "replace")
        return text if wanted in text else ""

    return str(wait_for(f"{wanted!r} in the log of {service}", read, timeout=timeout, poll=1.0))


@pytest.mark.swarm
def test_sops_secrets_on_swarm(swarm_cluster: Any, docker_api: Any, stack: str, tools: Tools,
                               tmp_path: Path) -> None:
    from gitops.backends.swarm.backend import SwarmBackend
    from gitops.backends.swarm.client import SwarmClient

    key, other = sopstools.age_key(tools, tmp_path / "age.key"), sopstools.age_key(tools, tmp_path / "other.key")
    file_secret, json_secret, dotenv_value = _canary("file"), _canary("json"), _canary("dotenv")
    canaries = _forms(file_secret, json_secret, dotenv_value)
    app = f"sops-{stack[-6:]}"
    compose = """services:
  app:
    image: gitops-test/app:1
    command: ["sh", "-c", "cat /run/secrets/db; echo; cat /run/secrets/conf; echo; echo conn=$$CONN; sleep 3600"]
    environment:
      CONN: "postgres://app:${DB_PASSWORD_VALUE}@db/app"
      LEVEL: "${LEVEL}"
    secrets: [db, conf]
    deploy:
      update_config: {delay: 1s, monitor: 1s, order: start-first}
secrets:
  db:
    file: ./db.secret
  conf:
    file: ./conf.json
"""
    env = _env(tools)  # the key comes from gitops.yaml's sops.age_key_file here
    repo = _repo(tmp_path / "repo", {
        "gitops.yaml": f"version: 1\nsops: {{age_key_file: {key.file}}}\napps:\n  - name: {app}\n"
                       f"    backend: swarm\n    paths: [swarm/compose.yaml]\n    env_files: [swarm/app.env]\n"
                       f"    target: {{stack: {stack}}}\n",
        "swarm/compose.yaml": compose,
        "swarm/db.secret": _encrypted(tools, key, tmp_path, file_secret.encode(), "binary"),
        "swarm/conf.json": _encrypted(tools, key, tmp_path, json.dumps({"password": json_secret}), "json"),
        "swarm/app.env": _encrypted(tools, key, tmp_path, f"DB_PASSWORD_VALUE={dotenv_value}\nLEVEL=info\n", "dotenv"),
    }, env)

    # (No saved plan before the first apply: its secret names are provisional until then.)
    plan = repo.gitops("plan", app, "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"+ Service/{stack}/{stack}_app" in plan.stdout
    plan_json = repo.gitops("plan", app, "--output", "json")
    assert plan_json.returncode == 0, plan_json.stderr
    applied = repo.gitops("apply", app, "--auto-approve", "--output", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for where, text in [("plan", plan.stdout + plan.stderr), ("plan --output json", plan_json.stdout),
                        ("apply --output json", applied.stdout + applied.stderr)]:
        _assert_clean(where, text, canaries)

    service = f"{stack}_app"
    log = _service_log(docker_api, service, "conn=")
    assert file_secret in log and json_secret in log and f"conn=postgres://app:{dotenv_value}@db/app" in log
    inspected = docker_api.inspect_service(service)
    assert inspected["Spec"]["Labels"].get("gitops.dev/sensitive-env") == "CONN,LEVEL"
    version = inspected["Version"]["Index"]
    client = SwarmClient(api=docker_api)
    state = SwarmBackend(client, app, stack=stack).load_state()
    recorded = json.dumps(state.to_json()) + json.dumps([r.body for rel in state.releases for r in rel.resources()])
    _assert_clean("the release record", recorded, canaries)
    state_configs = [docker_api.inspect_config(c["ID"]) for c in docker_api.configs()
                     if c["Spec"]["Name"].startswith(f"gitops-state-{app}-")]
    assert state_configs
    _assert_clean("the state configs", json.dumps(state_configs) + "".join(
        base64.b64decode(c["Spec"].get("Data", "")).decode("utf-8", "replace") for c in state_configs), canaries)

    # A change of the env file's value is masked in the plan (the service marks CONN sensitive).
    rotated = _canary("rotated")
    (repo.root / "swarm/app.env").write_bytes(
        _encrypted(tools, key, tmp_path, f"DB_PASSWORD_VALUE={rotated}\nLEVEL=info\n", "dotenv"))
    repo.commit("rotate")
    changed = repo.gitops("plan", app, "--out", "plan.json", "--detailed-exitcode")
    assert changed.returncode == 2 and "(sensitive value" in changed.stdout, changed.stdout
    _assert_clean("the rotation plan", changed.stdout + changed.stderr, [*canaries, *_forms(rotated)])
    _assert_clean("the plan file", (repo.root / "plan.json").read_text(), [*canaries, *_forms(rotated)])

    # A tampered secret file (its ciphertext changed), with a LEVEL change: refused, nothing written.
    good = (repo.root / "swarm/conf.json").read_bytes()
    tampered_doc = json.loads(good)
    tampered_doc["password"] = tampered_doc["password"].replace("data:", "data:AAAA", 1)
    (repo.root / "swarm/conf.json").write_text(json.dumps(tampered_doc))
    tampered = repo.gitops("apply", app, "--auto-approve")
    _refused(tampered, "swarm/conf.json", "does not match its MAC")
    _assert_clean("the refusal", tampered.stdout + tampered.stderr, [*canaries, *_forms(rotated)])
    (repo.root / "swarm/conf.json").write_bytes(good)

    # The env file with another key only: refused naming the file and its recipient.
    repo.env = {**env, "SOPS_AGE_KEY_FILE": str(other.file)}  # the environment's key file wins over gitops.yaml
    no_key = repo.gitops("apply", app, "--auto-approve")
    _refused(no_key, "swarm/app.env", key.recipient, "nothing was changed")
    _assert_clean("the refusal", no_key.stdout + no_key.stderr, [*canaries, *_forms(rotated)])

    assert docker_api.inspect_service(service)["Version"]["Index"] == version
    assert len(SwarmBackend(client, app, stack=stack).load_state().releases) == 1

    # A failing revision (with the rotated value) is rolled back to release 1, whose record holds
    # CONN without its value: the rollback takes it from the live service.
    repo.env = env
    repo.edit("swarm/compose.yaml", "sleep 3600", "exit 1")
    repo.commit("failing")
    failed = repo.gitops("apply", app, "--auto-approve")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    _assert_clean("the rolled-back apply", failed.stdout + failed.stderr, [*canaries, *_forms(rotated)])
    spec = docker_api.inspect_service(service)["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert "sleep 3600" in " ".join(container.get("Args") or container.get("Command") or [])
    assert f"CONN=postgres://app:{rotated}@db/app" in container["Env"]
    state = SwarmBackend(client, app, stack=stack).load_state()
    assert [r.outcome.value for r in state.releases] == ["succeeded", "failed", "rolled-back"]
    recorded = json.dumps(state.to_json()) + json.dumps([r.body for rel in state.releases for r in rel.resources()])
    _assert_clean("the release records after the rollback", recorded, [*canaries, *_forms(rotated)])


def _load(text: str) -> Any:
    from gitops.render.yaml import Dialect, load

    return load(text.encode(), "x", Dialect.KUBERNETES).documents[0].data
