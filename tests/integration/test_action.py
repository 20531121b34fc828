"""The GitHub Action (action.yml at the repository root) run for real in a simulated Actions
runner: each step's script runs in bash with the environment the runner gives it (inputs spliced
into `env:` as `${{ }}` expressions, GITHUB_EVENT_PATH holding a pull_request event payload,
GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) and GITHUB_API_URL pointing at a loopback HTTP server that
implements GitHub's issue-comment endpoints (list, create, update) and records every request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from repos import REPO, Repo, git, make_repo

TOKEN = "ghs_test-token-123"
SECRET = "s3cr3t-Rotated-99"
OWNER_REPO = "acme/deploy"
NUMBER = 7


class Forge:
    """GitHub's REST issue comments of one pull request, in memory."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [{"id": 100, "body": "LGTM, but see the plan", "user": {"login": "ann"}}]
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.next_id = 500
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Any, body: dict[str, Any] | None) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return 401, {"message": "Bad credentials"}
            base = f"/repos/{OWNER_REPO}/issues"
            if method == "GET" and path.startswith(f"{base}/{NUMBER}/comments"):
                page = int(re.search(r"[?&]page=(\d+)", path).group(1)) if "&page=" in path else 1  # type: ignore[union-attr]
                return 200, self.comments[(page - 1) * 100:page * 100]
            if method == "POST" and path == f"{base}/{NUMBER}/comments" and body is not None:
                self.next_id += 1
                comment = {"id": self.next_id, "body": body["body"], "user": {"login": "github-actions[bot]"}}
                self.comments.append(comment)
                return 201, comment
            match = re.fullmatch(rf"{base}/comments/(\d+)", path)
            if method == "PATCH" and match and body is not None:
                for comment in self.comments:
                    if comment["id"] == int(match.group(1)):
                        comment["body"] = body["body"]
                        return 200, comment
            return 404, {"message": "Not Found"}


@pytest.fixture
def forge() -> Iterator[tuple[Forge, str]]:
    state = Forge()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = state.handle(self.command, self.path, self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Runner:
    """The part of the Actions runner a composite action uses: inputs with defaults, `${{ }}`
    for inputs / github / steps contexts, `if:` comparisons, env, working-directory, and the
    GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files of each step."""

    def __init__(self, workspace: Path, env: dict[str, str], tmp: Path) -> None:
        self.action = yaml.safe_load((REPO / "action.yml").read_text())
        self.workspace, self.env, self.tmp = workspace, env, tmp
        self.runs = 0

    def value(self, expression: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        match = re.fullmatch(r"(\w[\w-]*)\.([\w-]+)(?:\.([\w-]+)\.([\w-]+))?", expression)
        assert match, f"the simulated runner does not know the expression {expression!r}"
        context, name = match.group(1), match.group(2)
        if context == "inputs":
            return inputs[name]
        if context == "github":
            return {"action_path": str(REPO), "token": "token-from-the-workflow"}[name]
        if context == "steps":
            return steps.get(name, {}).get(match.group(4) or "", "")
        raise AssertionError(f"unknown context {context}")

    def expand(self, text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        return EXPR.sub(lambda m: self.value(m.group(1), inputs, steps), str(text))

    def condition(self, text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> bool:
        match = re.fullmatch(r"(\S+)\s*==\s*'([^']*)'", EXPR.sub(lambda m: m.group(1), text).strip())
        assert match, f"the simulated runner does not know the condition {text!r}"
        return self.value(match.group(1), inputs, steps) == match.group(2)

    def run(self, with_: dict[str, str]) -> tuple[int, dict[str, str], str, str]:
        """The action's steps; returns (exit code of the last step run, the action's outputs, the
        job summary, the log)."""
        assert self.action["runs"]["using"] == "composite"
        unknown = set(with_) - set(self.action["inputs"])
        assert not unknown, unknown
        inputs = {name: str(spec.get("default", "")) for name, spec in self.action["inputs"].items()}
        inputs = {k: self.expand(v, inputs, {}) for k, v in inputs.items()} | with_
        steps: dict[str, dict[str, str]] = {}
        self.runs += 1
        summary = self.tmp / f"summary-{self.runs}.md"
        summary.write_text("")
        log, code = "", 0
        for index, step in enumerate(self.action["runs"]["steps"]):
            if "if" in step and not self.condition(step["if"], inputs, steps):
                continue
            assert step["shell"] == "bash" and set(step) <= {"name", "id", "if", "shell", "env", "run",
                                                            "working-directory"}, step
            output = self.tmp / f"output-{self.runs}-{index}"
            output.write_text("")
            env = {**self.env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                   **{k: self.expand(v, inputs, steps) for k, v in (step.get("env") or {}).items()}}
            cwd = self.workspace / self.expand(step.get("working-directory", "."), inputs, steps)
            assert "${{" not in step["run"], "inputs reach a script through env:, never spliced into it"
            script = step["run"]
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                                  env=env, capture_output=True, text=True, timeout=300, check=False)
            log += done.stdout + done.stderr
            code = done.returncode
            if "id" in step:
                steps[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            if code != 0:
                break
        outputs = {name: self.expand(spec["value"], inputs, steps) for name, spec in self.action["outputs"].items()}
        return code, outputs, summary.read_text(), log


def pull_request_event(base: str, head: str) -> dict[str, Any]:
    """A pull_request "opened" payload with the fields GitHub documents (trimmed of URLs)."""
    repository = {"id": 1296269, "name": "deploy", "full_name": OWNER_REPO, "private": True,
                  "owner": {"login": "acme", "type": "Organization"}, "default_branch": "main"}
    return {
        "action": "opened", "number": NUMBER,
        "pull_request": {
            "id": 1, "number": NUMBER, "state": "open", "locked": False, "title": "Rotate the token, new image",
            "user": {"login": "bob", "type": "User"}, "draft": False, "merged": False,
            "html_url": f"https://github.com/{OWNER_REPO}/pull/{NUMBER}",
            "head": {"label": "acme:rotate", "ref": "rotate", "sha": head, "repo": repository},
            "base": {"label": "acme:main", "ref": "main", "sha": base, "repo": repository},
        },
        "repository": repository, "sender": {"login": "bob", "type": "User"},
    }


def rev(repo: Repo, ref: str) -> str:
    return subprocess.run(["git", "rev-parse", ref], cwd=repo.root, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_action_keeps_one_sticky_comment_with_the_diff_and_no_secret(
        tmp_path: Path, forge: tuple[Forge, str]) -> None:
    state, url = forge
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO)), "GITOPS_CACHE_DIR": str(tmp_path / "cache"),
           "GITHUB_API_URL": url, "GITHUB_REPOSITORY": OWNER_REPO, "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_WORKSPACE": str(tmp_path / "repo"), "CI": "true", "GITHUB_ACTIONS": "true"}
    # the repository lives in a subdirectory of the workspace, as the working-directory input allows
    repo = make_repo(tmp_path, [], env)
    base = rev(repo, "HEAD")
    git(repo.root, "checkout", "-qb", "rotate")
    repo.edit("k8s/20-deployment.yaml", "podinfo:6.7.1", "podinfo:6.8.0")
    repo.edit("k8s/10-config.yaml", "API_TOKEN: change-me", f"API_TOKEN: {SECRET}")
    repo.commit("rotate the token, new image")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(pull_request_event(base, rev(repo, "HEAD"))))
    env["GITHUB_EVENT_PATH"] = str(event)
    runner = Runner(tmp_path, env, tmp_path)
    with_ = {"command": "diff", "working-directory": "repo", "comment": "true", "github-token": TOKEN,
             "install": "false"}

    code, outputs, summary, log = runner.run(with_)
    assert code == 0, log
    assert outputs == {"exitcode": "2", "has-changes": "true"}
    assert "web: 0 to create, 2 to update" in summary and "Deployment/web/web" in summary
    comments = f"/repos/{OWNER_REPO}/issues/{NUMBER}/comments"
    assert [(m, p.split("?")[0]) for m, p, _ in state.requests] == [("GET", comments), ("POST", comments)]
    ours = [c for c in state.comments if "<!-- gitops:diff:repo -->" in c["body"]]
    assert len(ours) == 1 and len(state.comments) == 2
    first = ours[0]["body"]
    assert "podinfo:6.8.0" in first and "/data/API_TOKEN" in first and "(sensitive value)" in first
    assert "sensitive value, changed" in first  # the YAML diff shows the fact of the change

    # a second push: the same comment is updated, no new one
    repo.edit("k8s/20-deployment.yaml", "replicas: 2", "replicas: 4")
    repo.commit("more replicas")
    state.requests.clear()
    code, outputs, summary, log = runner.run(with_)
    assert code == 0, log
    assert [m for m, _, _ in state.requests] == ["GET", "PATCH"]
    assert state.requests[1][1] == f"/repos/{OWNER_REPO}/issues/comments/{ours[0]['id']}"
    assert len(state.comments) == 2 and "~ /spec/replicas: 2 → 4" in state.comments[1]["body"]
    everything = json.dumps(state.requests) + json.dumps(state.comments) + summary + log
    assert SECRET not in everything and "change-me" not in everything and TOKEN not in everything

    # validate: annotations in the log (paths from the workspace root), the step fails
    repo.edit("k8s/20-deployment.yaml", "replicas: 4", "replicas: four")
    code, outputs, summary, log = runner.run({**with_, "command": "validate", "comment": "false"})
    assert code == 1 and outputs["exitcode"] == "1" and outputs["has-changes"] == "false"
    assert re.search(r"^::error file=repo/k8s/20-deployment.yaml,line=9,col=3,title=gitops validate \(schema\)::", log,
                     re.MULTILINE), log
    assert "❌ gitops validate: invalid" in summary


def test_gitops_ci_comment_keeps_one_gitlab_merge_request_note(tmp_path: Path) -> None:
    notes: list[dict[str, Any]] = [{"id": 1, "body": "a reviewer's note"}]
    seen: list[tuple[str, str]] = []
    project = "acme%2Fdeploy"

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((self.command, self.path))
            status, answer = 404, {"message": "404 Not Found"}
            base = f"/api/v4/projects/{project}/merge_requests/12/notes"
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "401 Unauthorized"}
            elif self.command == "GET" and self.path.split("?")[0] == base:
                status, answer = 200, notes if "&page=1" in self.path else []
            elif self.command == "POST" and self.path == base and body:
                notes.append({"id": 40 + len(notes), "body": body["body"]})
                status, answer = 201, notes[-1]
            elif self.command == "PUT" and self.path.startswith(base + "/") and body:
                [note] = [n for n in notes if n["id"] == int(self.path.rsplit("/", 1)[1])]
                note["body"] = body["body"]
                status, answer = 200, note
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
               "CI_PROJECT_ID": "acme/deploy", "CI_MERGE_REQUEST_IID": "12", "GITLAB_TOKEN": TOKEN}
        body = tmp_path / "diff.md"
        for text in ("first diff", "second diff"):
            body.write_text(text)
            done = subprocess.run([sys.executable, "-m", "gitops", "ci", "comment", "--gitlab", "diff", str(body)],
                                  env=env, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert [m for m, _ in seen] == ["GET", "POST", "GET", "PUT"]
    assert len(notes) == 2 and notes[1]["body"] == "<!-- gitops:diff -->\nsecond diff"
