"""The Swarm test engine is real: services converge, rolling updates honour update_config, and a
failing image is rolled back by Swarm itself when failure_action is rollback."""

from __future__ import annotations

from typing import Any

import pytest
from docker.types import ContainerSpec, ServiceMode, TaskTemplate, UpdateConfig
from testsupport import wait_for

pytestmark = pytest.mark.swarm


def running_images(api: Any, service_id: str) -> list[str]:
    tasks = api.tasks(filters={"service": service_id, "desired-state": "running"})
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"] for t in tasks if t["Status"]["State"] == "running"
    )


def update_to(api: Any, service_id: str, image: str, update: UpdateConfig) -> None:
    current = api.inspect_service(service_id)
    api.update_service(
        service_id,
        version=current["Version"]["Index"],
        task_template=TaskTemplate(ContainerSpec(image)),
        name=current["Spec"]["Name"],
        labels=current["Spec"].get("Labels"),
        mode=ServiceMode("replicated", replicas=2),
        update_config=update,
        fetch_current_spec=False,
    )


def update_state(api: Any, service_id: str) -> str | None:
    return (api.inspect_service(service_id).get("UpdateStatus") or {}).get("State")


def test_service_converges_updates_and_rolls_back_a_failing_image(docker_api: Any, stack: str) -> None:
    api = docker_api
    created = api.create_service(
        TaskTemplate(ContainerSpec("gitops-test/app:1")),
        name=f"{stack}_web",
        labels={"com.docker.stack.namespace": stack},
        mode=ServiceMode("replicated", replicas=2),
    )
    service_id = created["ID"]
    wait_for("2 running tasks of app:1",
             lambda: running_images(api, service_id) == ["gitops-test/app:1"] * 2)

    rolling = UpdateConfig(parallelism=1, delay=0, order="start-first", failure_action="rollback",
                           monitor=1_000_000_000)
    update_to(api, service_id, "gitops-test/app:2", rolling)
    wait_for("the update to complete", lambda: update_state(api, service_id) == "completed")
    wait_for("2 running tasks of app:2",
             lambda: running_images(api, service_id) == ["gitops-test/app:2"] * 2)

    failing = UpdateConfig(parallelism=1, delay=0, order="stop-first", failure_action="rollback",
                           monitor=3_000_000_000, max_failure_ratio=0)
    update_to(api, service_id, "gitops-test/fail:1", failing)
    final = wait_for(
        "Swarm to roll the failing update back",
        lambda: update_state(api, service_id) if update_state(api, service_id) in
        ("rollback_completed", "rollback_paused", "paused") else None,
        timeout=120,
    )
    assert final == "rollback_completed"
    spec = api.inspect_service(service_id)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "gitops-test/app:2"
    wait_for("2 running tasks of app:2 again",
             lambda: running_images(api, service_id) == ["gitops-test/app:2"] * 2)
