"""The one field diff and the one masking rule that both backends use."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gitops import diff
from gitops.backends.kubernetes import normalize as kube
from gitops.backends.swarm import normalize as swarm
from gitops.model.plans import MASK, FieldChange
from gitops.views.plans import field_line


def test_under_covers_a_path_and_what_is_below_it_only() -> None:
    secret = diff.under("/data", "/Env/TOKEN")
    assert secret("/data") and secret("/data/password") and secret("/Env/TOKEN")
    assert not secret("/dataset") and not secret("/Env/TOKENS") and not secret("/") and not secret("")


def test_a_change_that_contains_a_sensitive_path_is_masked() -> None:
    before = {"kind": "Secret", "metadata": {"name": "db"}}
    after = {"kind": "Secret", "metadata": {"name": "db", "labels": {"a": "1"}}, "data": {"password": "aHVudGVy"}}
    changes = diff.fields(before, after, diff.under("/data/password"))
    by_path = {c.path: c for c in changes}
    assert by_path["/data"] == FieldChange("/data", None, MASK, absent_before=True, sensitive=True)
    assert by_path["/metadata/labels"].after == {"a": "1"} and not by_path["/metadata/labels"].sensitive


def test_absent_equals_empty_only_when_asked() -> None:
    assert diff.fields({"a": 1}, {"a": 1, "b": {}}) == []
    assert diff.fields({"a": 1}, {"a": 1, "b": {}}, absent_is_empty=False) == [
        FieldChange("/b", None, {}, absent_before=True)]


def test_a_bool_is_not_a_number() -> None:
    assert [c.path for c in diff.fields({"a": True}, {"a": 1})] == ["/a"]
    assert diff.fields({"a": 1}, {"a": 1.0}) == []


def _kube_secret(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_swarm_env_and_kubernetes_secret_values_are_masked_by_the_same_code(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[str] = []
    real_mask = diff.mask

    def spy(change: FieldChange) -> FieldChange:
        masked.append(change.path)
        return real_mask(change)

    monkeypatch.setattr(diff, "mask", spy)

    # Swarm: an environment value named like a secret.
    def service(env: list[str]) -> dict[str, Any]:
        return {"Name": "st_web", "TaskTemplate": {"ContainerSpec": {"Image": "app:1", "Env": env}}}

    swarm_changes = swarm.diff_service(service(["DB_PASSWORD=new-pw", "LEVEL=debug"]),
                                       service(["DB_PASSWORD=old-pw", "LEVEL=info"]))
    # Kubernetes: a Secret's data, compared the way the Kubernetes backend compares it.
    desired = _kube_secret(password="new-pw", user="admin")
    want, have = kube.comparable(desired, _kube_secret(password="old-pw", user="admin"), "gitops")
    kube_changes = diff.fields(have, want, kube.sensitive("Secret", desired))

    assert masked == ["/TaskTemplate/ContainerSpec/Env/DB_PASSWORD", "/data/password"]
    for change in (*swarm_changes, *kube_changes):
        shown = field_line(change) + json.dumps(change.to_json())
        assert "pw" not in shown.replace("DB_PASSWORD", "")
    assert [c.sensitive for c in swarm_changes] == [True, False]
    assert [(c.path, c.before, c.after, c.sensitive) for c in kube_changes] == [
        ("/data/password", MASK, MASK, True)]
