"""The canary: a unique string in every place a secret can come from, and every command and output
format run over it; the test fails if the string, its base64 or its hex shows anywhere a user, a
log collector or a PR comment could read it.

One repository holds a Kubernetes app and a Swarm app. Each secret source gets a canary of its own
(so a failure says which source leaked where):

* Kubernetes: a Secret's ``data`` (base64 in git) and ``stringData``; a container's env value
  whose name is a built-in sensitive pattern, and one marked by the object's annotation.
* Swarm: a compose secret file; a service ``env_file``; an interpolation env file feeding an
  environment value; a value marked by ``x-gitops-sensitive``.
* The repository URL's password (served by a real git smart-HTTP server that asks for it).
* The daemon's webhook secret and API token, and a notification provider's token.

Every value is rotated by a second commit, so the "changed" paths of every view are taken too.
What is read: stdout and stderr of validate (every format), plan (text, JSON, Markdown, -v, the
plan file), apply (text and JSON events), status, history, diff (text, JSON, Markdown, -v, HTML),
and a daemon's log (JSON), its API, metrics and status pages. The source cache, the plan file and
the state objects are read too, for the values that git does not hold in plain text (the
credentials, tokens and sensitive values do not reach them; a plain Secret in git is in git).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from git_http import serving
from receiver import serving as receiving
from repos import EXAMPLE, Repo, free_port, git, make_repo, swarm_example
from testsupport import wait_for

TOKEN_USER = "deploy-bot"


def _canaries() -> dict[str, str]:
    run = uuid.uuid4().hex[:10]
    names = ["k8s-data", "k8s-string-data", "k8s-pattern-env", "k8s-marked-env", "swarm-secret-file",
             "swarm-env-file", "swarm-interpolated", "swarm-marked-env", "git-password", "webhook-secret",
             "api-token", "notify-token"]
    return {name: f"cnry{run}{name.replace('-', '')}" for name in names}


@dataclass
class Leaks:
    """What was read, and where: every text is searched for every canary in every encoding."""
    canaries: dict[str, str]
    read: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str | bytes) -> None:
        self.read.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def add_run(self, where: str, done: subprocess.CompletedProcess[str]) -> None:
        self.add(f"{where} (stdout)", done.stdout)
        self.add(f"{where} (stderr)", done.stderr)

    def forms(self, value: str) -> dict[str, str]:
        raw = value.encode()
        return {
            "plain": value,
            "base64": base64.b64encode(raw).decode().rstrip("="),
            "base64 of a line": base64.b64encode(raw + b"\n").decode().rstrip("="),
            "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "hex": binascii.hexlify(raw).decode(),
        }

    def found(self, only: set[str] | None = None) -> list[str]:
        hits = []
        for name, value in self.canaries.items():
            if only is not None and name not in only:
                continue
            for form, text in self.forms(value).items():
                for where, read in self.read:
                    if text in read or text.upper() in read:
                        hits.append(f"{name} ({form}) in {where}")
        return hits


def _repo(tmp_path: Path, namespace: str, stack: str, port: int, c: dict[str, str], env: dict[str, str],
          notify_url: str) -> tuple[Repo, str, str]:
    kube_app, swarm_app = f"web-{namespace[-6:]}", f"demo-{stack[-6:]}"
    repo = make_repo(tmp_path, [
        *((f"k8s/{f.name}", r"namespace: web$", f"namespace: {namespace}") for f in (EXAMPLE / "k8s").iterdir()),
        ("k8s/00-namespace.yaml", r"name: web$", f"name: {namespace}"),
        *swarm_example(port),
    ], env)
    _write_secrets(repo, c)
    (repo.root / "gitops.yaml").write_text(f"""version: 1
kubernetes_version: "1.35"
apps:
  - name: {kube_app}
    backend: kubernetes
    paths: [k8s]
    target: {{namespace: {namespace}}}
    sync: {{prune: true, self_heal: true, interval: 1h}}
    rollout: {{timeout: 2m}}
  - name: {swarm_app}
    backend: swarm
    paths: [swarm/compose.yaml]
    env_files: [swarm/demo.env]
    target: {{stack: {stack}}}
    sync: {{prune: true, self_heal: true, interval: 1h}}
    rollout: {{timeout: 2m}}
notifications:
  providers:
    - name: audit
      type: webhook
      url: {notify_url}
      headers: {{Authorization: {{env: GITOPS_NOTIFY_AUDIT_AUTH}}}}
  subscriptions:
    - provider: audit
""")
    repo.commit("secrets everywhere")
    return repo, kube_app, swarm_app


def _write_secrets(repo: Repo, c: dict[str, str]) -> None:
    """Put (or rotate to) the canaries of ``c`` into every secret source of the repository."""
    data = base64.b64encode(c["k8s-data"].encode()).decode()
    config = repo.root / "k8s/10-config.yaml"
    head, _, _ = config.read_text().partition("---\n")
    namespace = head.split("namespace: ", 1)[1].split()[0]
    config.write_text(f"""{head}---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: {namespace}
type: Opaque
data:
  SIGNING_KEY: {data}
stringData:
  API_TOKEN: {c["k8s-string-data"]}
""")
    deployment = repo.root / "k8s/20-deployment.yaml"
    text = deployment.read_text()
    marker = "          env:\n"
    if "DB_PASSWORD" not in text:
        text = text.replace(marker, marker + "            - name: DB_PASSWORD\n              value: OLD\n"
                                              "            - name: UPSTREAM_DSN\n              value: OLD\n")
        text = text.replace("  labels:\n    app.kubernetes.io/name: web\nspec:",
                            "  labels:\n    app.kubernetes.io/name: web\n  annotations:\n"
                            "    gitops.dev/sensitive-env: UPSTREAM_DSN\nspec:", 1)
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip() == "- name: DB_PASSWORD":
            lines[index + 1] = f"              value: {c['k8s-pattern-env']}\n"
        if line.strip() == "- name: UPSTREAM_DSN":
            lines[index + 1] = f"              value: {c['k8s-marked-env']}\n"
    deployment.write_text("".join(lines))

    (repo.root / "swarm/api-token.txt").write_text(c["swarm-secret-file"] + "\n")
    (repo.root / "swarm/worker.env").write_text(f"SERVICE_TOKEN={c['swarm-env-file']}\n")
    (repo.root / "swarm/demo.env").write_text(f"APP_TAG=1\nDB_PASSWORD={c['swarm-interpolated']}\n")
    compose = repo.root / "swarm/compose.yaml"
    text = compose.read_text()
    if "worker.env" not in text:
        text = text.replace("  worker:\n    image: gitops-test/app:${APP_TAG:-1}\n",
                            "  worker:\n    image: gitops-test/app:${APP_TAG:-1}\n    env_file: [./worker.env]\n"
                            "    x-gitops-sensitive: [UPSTREAM_DSN]\n"
                            "    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n      UPSTREAM_DSN: OLD\n")
    text = "".join(f"      UPSTREAM_DSN: {c['swarm-marked-env']}\n" if line.startswith("      UPSTREAM_DSN:") else line
                   for line in text.splitlines(keepends=True))
    compose.write_text(text)


def _state_texts(kube_cluster: Any, docker_api: Any, namespace: str, kube_app: str, stack: str) -> dict[str, str]:
    """The apps' state objects as the target holds them, unpacked (release manifests included)."""
    import gzip

    from gitops.backends.kubernetes.client import KubeClient
    from gitops.model.releases import AppState

    out: dict[str, str] = {}
    client = KubeClient(str(kube_cluster.kubeconfig))
    secret = client.get("v1", "Secret", "gitops-system", f"gitops-state-{kube_app}")
    assert secret is not None, "no state Secret for the Kubernetes app"
    raw = gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["state.json.gz"])))
    out["the Kubernetes app's state Secret"] = raw.decode() + _unpacked(AppState.from_json(json.loads(raw)))
    texts = []
    for config in docker_api.configs(filters={"label": f"com.docker.stack.namespace={stack}"}):
        texts.append(json.dumps(config))
    for config in docker_api.configs():
        if stack in config["Spec"]["Name"] or stack in json.dumps(config["Spec"].get("Labels", {})):
            texts.append(base64.b64decode(config["Spec"].get("Data", "")).decode("utf-8", "replace"))
    out["the Swarm app's state configs"] = "\n".join(texts)
    return out


def _unpacked(state: Any) -> str:
    return "\n".join(json.dumps([r.body for r in release.resources()], default=str) for release in state.releases)


@pytest.mark.kube
@pytest.mark.swarm
def test_no_secret_from_any_source_shows_in_any_output(
    kube_cluster: Any, swarm_cluster: Any, docker_api: Any, namespace: str, stack: str, tmp_path: Path
) -> None:
    first, second = _canaries(), _canaries()
    leaks = Leaks({**{f"{k} (1st)": v for k, v in first.items()}, **{f"{k} (2nd)": v for k, v in second.items()}})
    cache = tmp_path / "cache"
    port = free_port()
    with receiving() as receiver:
        env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig), "GITOPS_CACHE_DIR": str(cache),
               "GITOPS_NOTIFY_AUDIT_AUTH": f"Bearer {first['notify-token']}",
               "GITOPS_WEBHOOK_SECRET": first["webhook-secret"], "GITOPS_API_TOKEN": first["api-token"]}
        repo, kube_app, swarm_app = _repo(tmp_path, namespace, stack, port, first, env, receiver.url + "/audit")
        served = tmp_path / "served"
        served.mkdir()
        subprocess.run(["git", "clone", "-q", "--bare", str(repo.root), str(served / "deploy.git")], check=True)
        with serving(served, TOKEN_USER, first["git-password"]) as server:
            url = server.url("deploy.git")
            _run_every_command(repo, url, kube_app, swarm_app, leaks, stage="1st")
            assert server.requests > 0, "the repository was not fetched over HTTP"

            # Rotate every value: the views of a changed secret are read too.
            _write_secrets(repo, second)
            repo.commit("rotate every secret")
            git(repo.root, "push", "-q", "--force", str(served / "deploy.git"), "HEAD:main")
            (tmp_path / "plan.json").unlink(missing_ok=True)
            _run_every_command(repo, url, kube_app, swarm_app, leaks, stage="2nd")
            for output in ("text", "json", "markdown"):
                leaks.add_run(f"diff --output {output} -v", repo.gitops("diff", "--base", "HEAD~1", "--head", "HEAD",
                                                                        "-v", "--output", output))
            html = tmp_path / "diff.html"
            leaks.add_run("diff --html", repo.gitops("diff", "--base", "HEAD~1", "--head", "HEAD", "--html", str(html)))
            leaks.add("the diff's HTML file", html.read_text())

            _run_the_daemon(repo, url, kube_app, swarm_app, leaks, second, env)
        for name, text in _state_texts(kube_cluster, docker_api, namespace, kube_app, stack).items():
            leaks.add(name, text)
        for path in sorted(cache.rglob("*")):
            if path.is_file() and ".git/objects" not in str(path) and "/objects/" not in str(path):
                leaks.add(f"the source cache: {path.relative_to(cache)}", path.read_bytes())
    everywhere = leaks.found()
    plain_in_git = {f"{k} ({s})" for k in ("k8s-data", "k8s-string-data", "k8s-pattern-env", "k8s-marked-env",
                                             "swarm-secret-file", "swarm-env-file", "swarm-interpolated",
                                             "swarm-marked-env") for s in ("1st", "2nd")}
    outputs = [hit for hit in everywhere
               if not (hit.split(" (")[0] + " (" + hit.split(" (")[1].split(")")[0] + ")" in plain_in_git
                       and ("source cache" in hit or "state" in hit))]
    assert not outputs, "secrets leaked:\n  " + "\n  ".join(outputs)
    assert receiver.received, "no notification was delivered"
    assert any(r.headers.get("Authorization") == f"Bearer {first['notify-token']}" for r in receiver.received)


def _run_every_command(repo: Repo, url: str, kube_app: str, swarm_app: str, leaks: Leaks, stage: str) -> None:
    for output in ("text", "json", "markdown", "github", "sarif"):
        leaks.add_run(f"{stage}: validate --output {output}", repo.gitops("validate", "--output", output))
    leaks.add_run(f"{stage}: validate --repo", repo.gitops("validate", "--repo", url, "--ref", "main"))
    for output in ("text", "json", "markdown"):
        done = repo.gitops("plan", "--repo", url, "--ref", "main", "-v", "--output", output)
        assert done.returncode == 0, done.stdout + done.stderr
        leaks.add_run(f"{stage}: plan --output {output}", done)
    planned = repo.gitops("plan", "--repo", url, "--ref", "main", "--out", "plan.json")
    leaks.add_run(f"{stage}: plan --out", planned)
    leaks.add(f"{stage}: the plan file", (repo.root / "plan.json").read_text())
    hint = planned.stdout.rsplit("apply it with: ", 1)[1].strip()
    assert hint.startswith("gitops apply ") and TOKEN_USER not in hint, hint
    applied = repo.gitops(*shlex.split(hint)[1:], "--auto-approve", "--output", "json", timeout=600)
    leaks.add_run(f"{stage}: apply (JSON events)", applied)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = repo.gitops("apply", "--repo", url, "--ref", "main", "--auto-approve")
    leaks.add_run(f"{stage}: apply (text)", again)
    assert again.returncode == 0, again.stdout + again.stderr
    for output in ("text", "json"):
        leaks.add_run(f"{stage}: status --output {output}",
                      repo.gitops("status", "--repo", url, "--ref", "main", "--output", output))
        for app in (kube_app, swarm_app):
            leaks.add_run(f"{stage}: history {app} --output {output}",
                          repo.gitops("history", app, "--repo", url, "--ref", "main", "--output", output))
    bad = repo.gitops("plan", "--repo", url.replace("deploy.git", "missing.git"))
    assert bad.returncode != 0
    leaks.add_run(f"{stage}: plan of a missing repository (its error)", bad)


def _run_the_daemon(repo: Repo, url: str, kube_app: str, swarm_app: str, leaks: Leaks, c: dict[str, str],
                    env: dict[str, str]) -> None:
    listen = free_port()
    log = repo.root.parent / "daemon.log"
    with log.open("wb") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "gitops", "daemon", "--repo", url, "--ref", "main",
             "--listen", f"127.0.0.1:{listen}", "--log-format", "json", "--log-level", "debug"],
            env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=repo.root.parent,
        )
        try:
            base = f"http://127.0.0.1:{listen}"
            token = env["GITOPS_API_TOKEN"]

            def get(path: str, auth: bool = True) -> tuple[int, str]:
                import urllib.error
                import urllib.request

                headers = {"Authorization": f"Bearer {token}"} if auth else {}
                request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 (loopback)
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
                        return response.status, response.read().decode()
                except urllib.error.HTTPError as err:
                    return err.code, err.read().decode()
                except OSError:
                    return 0, ""

            def synced() -> bool:
                code, body = get("/api/v1/apps")
                if code != 200:
                    return False
                apps = {a["name"]: a for a in json.loads(body)["apps"]}
                return all(apps.get(a, {}).get("result") in ("applied", "in-sync") for a in (kube_app, swarm_app))

            wait_for("the daemon's first reconcile of both apps", synced, timeout=300)
            for path in ("/api/v1/apps", f"/api/v1/apps/{kube_app}", f"/api/v1/apps/{swarm_app}", "/metrics",
                         "/", f"/apps/{kube_app}", f"/apps/{swarm_app}", "/healthz", "/readyz"):
                code, body = get(path)
                leaks.add(f"daemon GET {path} ({code})", body)
                code, body = get(path, auth=False)
                leaks.add(f"daemon GET {path} without a token ({code})", body)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
    leaks.add("the daemon's log", log.read_text())
