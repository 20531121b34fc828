"""Each Swarm object made from a compose file says where it was declared (file and line), in the
prepared resources and so in the plan (text and JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops import config, engine
from gitops.backends.swarm.backend import SwarmBackend
from gitops.model.plans import Action, AppPlan, Change
from gitops.views import plans as view

COMPOSE = """\
services:
  web:
    image: nginx:1
    networks: [front]
    configs: [site]
    secrets: [token]
    volumes: [data:/data]

  worker:
    image: busybox:1

networks:
  front: {}
configs:
  site:
    file: ./site.html
secrets:
  token:
    file: ./token.txt
volumes:
  data: {}
"""

GITOPS = """\
version: 1
apps:
  - name: demo
    backend: swarm
    paths: [deploy/compose.yaml]
    target: {stack: demo}
"""


class _NoState:
    """A swarm with no state yet: prepare only looks for the app's secret-naming key."""

    def configs(self, label: str) -> list[dict[str, Any]]:
        return []


def test_compose_objects_carry_the_line_of_their_entry(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/compose.yaml").write_text(COMPOSE)
    (tmp_path / "deploy/site.html").write_text("<p>hi</p>")
    (tmp_path / "deploy/token.txt").write_text("s3cr3t")
    (tmp_path / "gitops.yaml").write_text(GITOPS)
    ws = engine.Workspace(tmp_path, None, config.load(tmp_path))
    resources, _ = engine.render_app(ws, ws.settings.app("demo"), env={})
    backend = SwarmBackend(_NoState(), "demo", stack="demo",  # type: ignore[arg-type]  # reads the state only
                           read_file=lambda p: (tmp_path / p).read_bytes())
    origins = {f"{r.key.kind}/{r.key.name.split('-')[0]}": str(r.origin) for r in backend.prepare(resources)}
    assert origins == {
        "Service/demo_web": "deploy/compose.yaml:2",
        "Service/demo_worker": "deploy/compose.yaml:9",
        "Network/demo_front": "deploy/compose.yaml:13",
        "Network/demo_default": "deploy/compose.yaml:1",  # implicit (worker): the file itself
        "Config/demo_site": "deploy/compose.yaml:15",
        "Secret/demo_token": "deploy/compose.yaml:18",
        "Volume/demo_data": "deploy/compose.yaml:21",
    }
    prepared = {r.key: r for r in backend.prepare(resources)}
    web = next(k for k in prepared if k.name == "demo_web")
    plan = AppPlan("demo", "swarm", "demo", "abc", "", "",
                   changes=(Change(web, Action.CREATE, "", (), 0, str(prepared[web].origin)),))
    assert plan.to_json()["changes"][0]["origin"] == "deploy/compose.yaml:2"
    assert "create  [deploy/compose.yaml:2]" in view.app_plan_text(plan)
