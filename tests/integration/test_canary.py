"""The canary: a unique string in every place a secret can come from, and every command and output
format of gitops run over it on both real backends; the test fails if the canary, its base64 (at
any alignment) or its hex shows up in anything a user, a log collector or a PR comment sees.

Where the canaries are put (one each, all different, changed by a second commit and a third):
a Kubernetes Secret's ``stringData`` and ``data``; an env value named like a secret
(``DB_PASSWORD``, waived from the policy rule that refuses literal secrets) and one marked by the
``gitops.dev/sensitive-env`` annotation; a Swarm secret file; a value from the app's ``env_files``
put into a service's ``DB_PASSWORD``; values marked by compose's ``x-gitops-sensitive`` at the top
and on a service; the password of the git URL the repository is read from (a loopback git
http-backend behind Basic auth); the daemon's webhook secret and API token; and SOPS-encrypted
files (encrypted by the real sops for an age key of the test): a Kubernetes Secret, a compose
secret file and a dotenv env file whose value a service's environment uses.

What is searched: stdout and stderr of validate (text, json, markdown, github, sarif), plan (text,
json, markdown, -v, the plan file), apply (text, json events), diff (text, -v, json, markdown, the
HTML report), status, history (text, json); the daemon's debug log, its pages (signed in and not),
its API and its metrics; and, for the URL's password only, the source cache on disk (which holds
the repository's own files, canaries included, as any clone would).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import sopstools
from git_http import GitServer
from repos import Repo, both_apps, free_port, git, make_repo
from testsupport import wait_for

#: Where each canary goes; each gets its own unique value per commit.
PLACES = ("k8s-stringdata", "k8s-data", "k8s-env-pattern", "k8s-env-marked", "swarm-secret-file",
          "swarm-env-file", "swarm-marked-top", "swarm-marked-service", "sops-k8s-secret", "sops-swarm-secret-file",
          "sops-env-file")


def forms(canary: str) -> list[str]:
    """The canary as text, as hex, and as base64 at each of the three alignments it can have inside
    a longer encoded value (the groups it shares with its neighbours left out)."""
    raw = canary.encode()
    out = [canary, raw.hex(), raw.hex().upper()]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw + b"\0\0\0").decode()
        out.append(encoded[4 if pad else 0:-4])
    return out


def leaks(text: str, canaries: dict[str, str]) -> list[str]:
    return [f"{place} as {form!r}" for place, canary in canaries.items() for form in forms(canary) if form in text]


def new_canaries() -> dict[str, str]:
    return {place: f"cnry{secrets.token_hex(10)}" for place in PLACES}


def put(repo: Repo, canaries: dict[str, str], namespace: str, sops: tuple[sopstools.Tools, sopstools.AgeKey]) -> None:
    """Write this set of canaries into the repository's files (the layout is set up by :func:`prepare`)."""
    tools, key = sops
    sopstools.encrypt_to(tools, repo.root / "k8s" / "16-sops.yaml", f"""apiVersion: v1
kind: Secret
metadata:
  name: sops-canary
  namespace: {namespace}
stringData:
  KEY: {canaries["sops-k8s-secret"]}
""".encode(), key.recipient, "yaml", regex="^(data|stringData)$")
    sopstools.encrypt_to(tools, repo.root / "swarm" / "sops-secret.bin", canaries["sops-swarm-secret-file"].encode(),
                         key.recipient, "binary")
    sopstools.encrypt_to(tools, repo.root / "swarm" / "sops.env", f"SOPS_VALUE={canaries['sops-env-file']}\n".encode(),
                         key.recipient, "dotenv")
    (repo.root / "k8s" / "15-canary.yaml").write_text(f"""apiVersion: v1
kind: Secret
metadata:
  name: canary
  namespace: {namespace}
type: Opaque
stringData:
  API_TOKEN: {canaries["k8s-stringdata"]}
data:
  DB_URL: {base64.b64encode(canaries["k8s-data"].encode()).decode()}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: canary-env
  namespace: {namespace}
  annotations:
    gitops.dev/sensitive-env: LICENSE
data:
  NOTE: not secret
""")
    deployment = repo.root / "k8s" / "20-deployment.yaml"
    text = re.sub(r"(- name: DB_PASSWORD\n\s+value: ).*", lambda m: m.group(1) + canaries["k8s-env-pattern"],
                  deployment.read_text())
    text = re.sub(r"(- name: LICENSE\n\s+value: ).*", lambda m: m.group(1) + canaries["k8s-env-marked"], text)
    deployment.write_text(text)
    (repo.root / "swarm" / "api-token.txt").write_text(canaries["swarm-secret-file"] + "\n")
    env = repo.root / "swarm" / "demo.env"
    env.write_text(re.sub(r"DB_PASSWORD=.*", "DB_PASSWORD=" + canaries["swarm-env-file"], env.read_text()))
    compose = repo.root / "swarm" / "compose.yaml"
    text = re.sub(r"(LICENSE: ).*", lambda m: m.group(1) + canaries["swarm-marked-top"], compose.read_text())
    text = re.sub(r"(SERIAL: ).*", lambda m: m.group(1) + canaries["swarm-marked-service"], text)
    compose.write_text(text)


def prepare(repo: Repo, namespace: str, canaries: dict[str, str],
            sops: tuple[sopstools.Tools, sopstools.AgeKey]) -> None:
    """Give the example's apps the environment variables that hold canaries."""
    repo.edit("k8s/20-deployment.yaml", "          env:\n", "          env:\n"
              "            - name: DB_PASSWORD\n              value: x\n"
              "            - name: LICENSE\n              value: x\n"
              "            - name: LOG_FORMAT\n              value: plain\n")
    repo.edit("k8s/20-deployment.yaml", "  labels:\n    app.kubernetes.io/name: web\nspec:",
              "  labels:\n    app.kubernetes.io/name: web\n  annotations:\n"
              "    gitops.dev/sensitive-env: LICENSE\n"
              "    gitops.dev/ignore: secret-env -- the canary test writes a literal secret on purpose\nspec:")
    repo.edit("swarm/compose.yaml", "services:\n  web:\n", "x-gitops-sensitive: [LICENSE]\nservices:\n  web:\n"
              "    x-gitops-sensitive: [SERIAL]\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n"
              "      LICENSE: x\n      SERIAL: x\n      LOG_FORMAT: plain\n      SOPS_VALUE: ${SOPS_VALUE}\n")
    repo.edit("swarm/compose.yaml", "    secrets: [api_token]\n", "    secrets: [api_token, sops_file]\n")
    repo.edit("swarm/compose.yaml", "secrets:\n  api_token:\n", "secrets:\n  sops_file:\n    file: ./sops-secret.bin\n"
              "  api_token:\n")
    repo.edit("gitops.yaml", "env_files: [swarm/demo.env]", "env_files: [swarm/demo.env, swarm/sops.env]")
    (repo.root / "swarm" / "demo.env").write_text((repo.root / "swarm" / "demo.env").read_text() + "DB_PASSWORD=x\n")
    put(repo, canaries, namespace, sops)


@pytest.mark.kube
@pytest.mark.swarm
def test_no_output_of_any_command_holds_a_secret_value(
    kube_cluster: Any, swarm_cluster: Any, docker_api: Any, namespace: str, stack: str, tmp_path: Path
) -> None:
    web, demo = f"web-{namespace[-6:]}", f"demo-{stack[-6:]}"
    password, webhook_secret, api_token = (f"cnry{secrets.token_hex(10)}" for _ in range(3))
    every: dict[str, str] = {"git-url-password": password, "webhook-secret": webhook_secret, "api-token": api_token}
    cache = tmp_path / "cache"
    tools = sopstools.tools()
    sops = (tools, sopstools.age_key(tools, tmp_path / "age.key"))
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig), "XDG_CACHE_HOME": str(cache),
           "GITOPS_SOPS": str(tools.sops), "SOPS_AGE_KEY_FILE": str(sops[1].file)}
    repo = make_repo(tmp_path, both_apps(namespace, stack, web, demo, ""), env)
    first = new_canaries()
    every.update({f"{k}@1": v for k, v in first.items()})
    prepare(repo, namespace, first, sops)
    repo.commit("canaries, first set")
    served = tmp_path / "served"
    served.mkdir()
    seen: list[tuple[str, str]] = []  # (what, text): everything a user sees

    def run(what: str, *args: str, code: int | tuple[int, ...] = 0, in_repo: bool = True) -> str:
        done = subprocess.run([sys.executable, "-m", "gitops", *args], cwd=repo.root if in_repo else tmp_path,
                              env=env, capture_output=True, text=True, timeout=600)
        seen.append((what, done.stdout + done.stderr))
        codes = (code,) if isinstance(code, int) else code
        assert done.returncode in codes, f"{what}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def publish() -> None:
        target = served / "app.git"
        if not target.exists():
            git(tmp_path, "clone", "-q", "--bare", str(repo.root), str(target))
        else:
            git(repo.root, "push", "-q", "--force", str(target), "main:main")

    with GitServer(served, "deployer", password) as server:
        url = server.url("app.git", "deployer", password)
        remote = ("--repo", url, "--ref", "main")
        publish()

        # validate, in every output format
        for output in ("text", "json", "markdown", "github", "sarif"):
            run(f"validate --output {output}", "validate", "--output", output)

        # plan and apply from the URL with its password
        for output in ("text", "json", "markdown"):
            run(f"plan --output {output}", "plan", *remote, "--output", output, in_repo=False)
        # not saved before the Swarm app's first apply (its secret names are provisional until then)
        run("plan --out", "plan", *remote, "--out", str(tmp_path / "first.plan"), in_repo=False, code=1)
        assert not (tmp_path / "first.plan").exists()
        run("apply --output json", "apply", *remote, "--auto-approve", "--output", "json", in_repo=False)
        assert server.requests > 0  # read through the URL with its password

        # the canaries are really deployed: the test would prove nothing otherwise
        from gitops.backends.kubernetes.client import KubeClient

        client = KubeClient(str(kube_cluster.kubeconfig))
        secret_type = client.resource_type("v1", "Secret")
        assert secret_type is not None
        live = client.request("GET", secret_type.path(namespace, "canary"))
        assert base64.b64decode(live["data"]["API_TOKEN"]).decode() == first["k8s-stringdata"]
        assert base64.b64decode(live["data"]["DB_URL"]).decode() == first["k8s-data"]
        decrypted = client.request("GET", secret_type.path(namespace, "sops-canary"))
        assert base64.b64decode(decrypted["data"]["KEY"]).decode() == first["sops-k8s-secret"]
        deploy_type = client.resource_type("apps/v1", "Deployment")
        assert deploy_type is not None
        deployment = client.request("GET", deploy_type.path(namespace, "web"))
        values = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert (values["DB_PASSWORD"], values["LICENSE"]) == (first["k8s-env-pattern"], first["k8s-env-marked"])
        service = docker_api.inspect_service(f"{stack}_web")
        live_env = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
        for name, place in (("DB_PASSWORD", "swarm-env-file"), ("LICENSE", "swarm-marked-top"),
                            ("SERIAL", "swarm-marked-service"), ("SOPS_VALUE", "sops-env-file")):
            assert f"{name}={first[place]}" in live_env
        assert service["Spec"]["Labels"]["gitops.dev/sensitive-env"] == "LICENSE,SERIAL,SOPS_VALUE"
        assert any(s["SecretName"].startswith(f"{stack}_sops_file-")
                   for s in docker_api.inspect_service(f"{stack}_worker")["Spec"]["TaskTemplate"]["ContainerSpec"]
                   ["Secrets"])

        # a second set: every value changes; the plans and diffs show the change, never the value
        second = new_canaries()
        every.update({f"{k}@2": v for k, v in second.items()})
        put(repo, second, namespace, sops)
        repo.commit("canaries, second set")
        publish()
        text = run("plan text (changes)", "plan", *remote, "-v", in_repo=False)
        assert "(sensitive value)" in text and "/data/API_TOKEN" in text, text
        assert "env/[name=LICENSE]/value" in text and "Env/SERIAL" in text and "Env/DB_PASSWORD" in text, text
        assert "Env/SOPS_VALUE" in text and f"~ Secret/{namespace}/sops-canary" in text, text
        for output in ("json", "markdown"):
            run(f"plan --output {output} (changes)", "plan", *remote, "--output", output, in_repo=False)
        run("plan --out (changes)", "plan", *remote, "--out", str(tmp_path / "second.plan"), in_repo=False)
        seen.append(("plan file (changes)", (tmp_path / "second.plan").read_text()))
        diff_text = run("diff", "diff", "--base", "HEAD~1", "--head", "HEAD", code=(0, 2))
        assert "sensitive value" in diff_text, diff_text
        run("diff -v", "diff", "--base", "HEAD~1", "--head", "HEAD", "-v", "--html", str(tmp_path / "d.html"),
            code=(0, 2))
        seen.append(("diff --html", (tmp_path / "d.html").read_text()))
        for output in ("json", "markdown"):
            run(f"diff --output {output}", "diff", "--base", "HEAD~1", "--head", "HEAD", "--output", output,
                code=(0, 2))
        applied = run("apply (changes)", "apply", *remote, "--auto-approve", in_repo=False)
        assert f"{web}: applied" in applied and f"{demo}: applied" in applied, applied
        run("status", "status", *remote, in_repo=False)
        run("status json", "status", *remote, "--output", "json", in_repo=False)
        for app in (web, demo):
            run(f"history {app}", "history", app, *remote, in_repo=False)
            run(f"history {app} json", "history", app, *remote, "--output", "json", in_repo=False)

        # the daemon, at debug level, follows a third set
        third = new_canaries()
        every.update({f"{k}@3": v for k, v in third.items()})
        put(repo, third, namespace, sops)
        repo.commit("canaries, third set")
        publish()
        log = tmp_path / "daemon.log"
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "gitops", "daemon", *remote, "--listen", f"127.0.0.1:{port}", "--log-format",
             "json", "--log-level", "debug"],
            env={**env, "GITOPS_WEBHOOK_SECRET": webhook_secret, "GITOPS_API_TOKEN": api_token},
            stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=tmp_path)
        try:
            web_page = _Http(base_url)
            wait_for("the daemon's /healthz", lambda: web_page.get("/healthz")[0] == 200, timeout=30)
            head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo.root, capture_output=True, text=True,
                                  check=True).stdout.strip()

            def synced(app: str) -> bool:
                code, body = web_page.get(f"/api/v1/apps/{app}")
                state = json.loads(body) if code == 200 else {}
                return bool(state.get("revision") == head and state.get("result") in ("applied", "synced"))

            wait_for("the third set applied by the daemon", lambda: synced(web) and synced(demo), timeout=300)
            signature = _sign(webhook_secret, body := json.dumps({"ref": "refs/heads/main", "after": head}).encode())
            seen.append(("webhook", str(web_page.request("/api/webhook", "POST", body, {
                "X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "Content-Type": "application/json"}))))
            seen.append(("webhook, wrong", str(web_page.request("/api/webhook", "POST", body, {
                "X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}))))
            for path in ("/", f"/apps/{web}", f"/apps/{demo}", "/api/v1/apps", f"/api/v1/apps/{web}",
                         f"/api/v1/apps/{demo}", "/metrics", "/login"):
                code, page = web_page.get(path)
                assert code == 200, (path, code)
                seen.append((path, page.decode()))
            cookie = web_page.sign_in(api_token)
            assert cookie, "signing in with the API token failed"
            for path in (f"/apps/{web}", f"/apps/{demo}"):
                code, page = web_page.get(path, {"Cookie": cookie})
                assert code == 200 and b"/sync" in page, (path, code)  # signed in: the write forms are there
                seen.append((f"{path} signed in", page.decode()))
            seen.append(("sync", str(web_page.request(f"/api/v1/apps/{web}/sync", "POST", b"",
                                                        {"Authorization": f"Bearer {api_token}"}))))
            seen.append(("sync, wrong token", str(web_page.request(f"/api/v1/apps/{web}/sync", "POST", b"",
                                                                     {"Authorization": "Bearer nope"}))))
        finally:
            process.terminate()
            process.wait(60)
        seen.append(("daemon log", log.read_text()))
        debug = log.read_text()
        assert '"plan-change"' in debug, "the debug log lists no planned change: it was not at debug level"

    found = [f"{what}: {leak}" for what, text in seen for leak in leaks(text, every)]
    assert not found, "secret values in outputs:\n" + "\n".join(found)
    masks = sum(text.count("sensitive value") for _, text in seen)
    assert masks > 10, f"only {masks} masks in all outputs: the secrets were not even shown as changed"
    # The source cache holds the repository (its files hold the canaries, as any clone does) but
    # never the URL's password.
    cached = [str(p) for p in cache.rglob("*") if p.is_file() and not p.is_symlink()
              and leaks(p.read_bytes().decode("latin-1"), {"git-url-password": password})]
    assert not cached, f"the git URL's password is stored in {cached}"


def _sign(secret: str, body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        import urllib.error
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *_: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})  # noqa: S310
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read(), str(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), str(err.headers)
        except OSError:  # not listening yet
            return 0, b"", ""

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        code, body, _ = self.request(path, headers=headers)
        return code, body

    def sign_in(self, token: str) -> str:
        body = urllib.parse.urlencode({"token": token, "next": "/"}).encode()
        code, _, headers = self.request("/login", "POST", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Origin": self.base})
        match = re.search(r"Set-Cookie: ([^;\r\n]+)", headers)
        return match.group(1) if code == 303 and match else ""
