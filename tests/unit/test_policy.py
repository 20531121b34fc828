"""The policy rules (gitops/validate/policy.py): each rule fires on a violating object and not on a
passing one, per backend; waivers, severity overrides, exclusions, --strict; no secret is printed;
gitops.yaml's policy:; plan and apply refuse an app with policy errors before any write."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from testsupport import trim_example

from gitops import config, engine
from gitops.cli import cli
from gitops.model import Diagnostic, Origin, Severity
from gitops.model.policies import Exclude, Level, PolicySettings
from gitops.render import ComposeFile, Manifest, Rendered
from gitops.validate import policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo"
SCHEMA = Path(__file__).resolve().parents[2] / "gitops" / "schemas" / "gitops.schema.json"

Doc = dict[str, Any]


def good_container(name: str = "app") -> Doc:
    return {
        "name": name, "image": "registry.test/app:1.4.2", "ports": [{"name": "http", "containerPort": 8080}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2},
        "securityContext": {"allowPrivilegeEscalation": False},
        "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                {"name": "LOG_LEVEL", "value": "info"}],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
    }


def good_app() -> list[Doc]:
    labels = {"app": "web"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                      "containers": [good_container()]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
             "service": {"name": "web", "port": {"name": "http"}}}}]}}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
         "stringData": {"password": "x"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
         "data": {"a": "b"}},
    ]


def good_compose() -> Doc:
    return {"services": {"web": {
        "image": "registry.test/app:1.4.2",
        "environment": {"LOG_LEVEL": "info", "DB_PASSWORD_FILE": "/run/secrets/db"},
        "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "timeout": "2s"},
        "deploy": {"replicas": 2, "resources": {"limits": {"cpus": "0.5", "memory": "64M"},
                                                "reservations": {"cpus": "0.1", "memory": "16M"}}},
    }}}


def k8s(docs: list[Doc], settings: PolicySettings | None = None, strict: bool = False) -> list[Diagnostic]:
    rendered = Rendered(manifests=[Manifest(d, Origin("m.yaml", i + 1)) for i, d in enumerate(docs)])
    return policy.check(rendered, settings or PolicySettings(), strict=strict)


def compose(doc: Doc, settings: PolicySettings | None = None, raw: str | None = None) -> list[Diagnostic]:
    rendered = Rendered(compose=[ComposeFile("compose.yaml", Path("."), doc, "shop")])
    if raw is not None:
        from gitops.render.yaml import Dialect

        rendered.sources["compose.yaml"] = (raw.encode(), Dialect.COMPOSE)
    return policy.check(rendered, settings or PolicySettings())


def codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def test_the_good_objects_pass_every_rule() -> None:
    assert k8s(good_app()) == []
    assert compose(good_compose()) == []


def container(docs: list[Doc], index: int = 0) -> Doc:
    c: Doc = docs[0]["spec"]["template"]["spec"]["containers"][index]
    return c


def pod_spec(docs: list[Doc]) -> Doc:
    s: Doc = docs[0]["spec"]["template"]["spec"]
    return s


K8S_CASES: dict[str, tuple[str, Callable[[list[Doc]], object]]] = {
    "untagged": ("image-tag", lambda d: container(d).update(image="nginx")),
    "latest": ("image-tag", lambda d: container(d).update(image="registry.test:5000/nginx:latest")),
    "no memory limit": ("memory-limit", lambda d: container(d)["resources"]["limits"].pop("memory")),
    "no cpu limit": ("cpu-limit", lambda d: container(d)["resources"]["limits"].pop("cpu")),
    "no requests": ("resource-requests", lambda d: container(d).pop("resources")),
    "no readiness": ("readiness-probe", lambda d: container(d).pop("readinessProbe")),
    "no liveness": ("liveness-probe", lambda d: container(d).pop("livenessProbe")),
    "probe every second": ("probe-timing", lambda d: container(d)["readinessProbe"].update(periodSeconds=1)),
    "probe timeout = period": ("probe-timing", lambda d: container(d)["livenessProbe"].update(timeoutSeconds=10)),
    "literal password": ("secret-env", lambda d: container(d)["env"].append({"name": "API_TOKEN", "value": "x1"})),
    "literal ip": ("literal-ip", lambda d: container(d)["env"].append({"name": "DB_HOST", "value": "10.1.2.3"})),
    "ip in args": ("literal-ip", lambda d: container(d).update(args=["--upstream", "http://192.168.4.5:80/"])),
    "one replica": ("single-replica", lambda d: d[0]["spec"].update(replicas=1)),
    "replicas unset": ("single-replica", lambda d: d[0]["spec"].pop("replicas")),
    "privileged": ("privileged", lambda d: container(d)["securityContext"].update(privileged=True)),
    "escalation": ("privilege-escalation", lambda d: container(d).pop("securityContext")),
    "root": ("run-as-non-root", lambda d: pod_spec(d).pop("securityContext")),
    "root by container": ("run-as-non-root", lambda d: container(d)["securityContext"].update(runAsNonRoot=False)),
    "host network": ("host-namespace", lambda d: pod_spec(d).update(hostNetwork=True)),
    "host pid": ("host-namespace", lambda d: pod_spec(d).update(hostPID=True)),
    "host path": ("host-path", lambda d: pod_spec(d).update(volumes=[{"name": "v", "hostPath": {"path": "/etc"}}])),
    "capability": ("dangerous-capability",
                   lambda d: container(d)["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]})),
    "docker socket": ("docker-socket", lambda d: pod_spec(d).update(
        volumes=[{"name": "s", "hostPath": {"path": "/var/run/docker.sock"}}])),
    "selector": ("service-selector", lambda d: d[1]["spec"].update(selector={"app": "api"})),
    "ingress service": ("ingress-backend", lambda d: d[2]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
                        ["service"].update(name="api")),
    "ingress port": ("ingress-backend", lambda d: d[2]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
                     ["service"].update(port={"number": 8443})),
    "secret ref": ("missing-reference", lambda d: d.pop(3)),
    "configmap ref": ("missing-reference", lambda d: d.pop(4)),
    "volume ref": ("missing-reference", lambda d: pod_spec(d).update(
        volumes=[{"name": "v", "secret": {"secretName": "tls"}}])),
}


@pytest.mark.parametrize("case", list(K8S_CASES))
def test_kubernetes_rule_fires(case: str) -> None:
    rule, mutate = K8S_CASES[case]
    docs = good_app()
    mutate(docs)
    found = [d for d in k8s(docs) if d.code == rule]
    assert found, codes(k8s(docs))
    assert all(d.severity is policy.BY_ID[rule].severity for d in found)
    for diagnostic in found:  # names the file, the object and the field, and the rule
        assert diagnostic.file == "m.yaml" and diagnostic.resource.count("/") == 2 and diagnostic.pointer
        assert diagnostic.message.startswith(f"[{rule}] ")


def test_every_rule_has_a_case_on_every_backend_it_names() -> None:
    tested = {(rule, "kubernetes") for rule, _ in K8S_CASES.values()} | {(r, "swarm") for r, _ in SWARM_CASES.values()}
    tested |= {("waiver", "kubernetes"), ("waiver", "swarm"), ("bare-pod", "kubernetes")}
    wanted = {(rule.id, backend) for rule in policy.RULES for backend in rule.backends}
    assert wanted <= tested, sorted(wanted - tested)


def test_the_container_and_init_container_are_named() -> None:
    docs = good_app()
    pod_spec(docs)["initContainers"] = [{**good_container("migrate"), "image": "migrate"}]
    found = [d for d in k8s(docs) if d.code == "image-tag"]
    assert len(found) == 1 and "init container migrate" in found[0].message
    assert found[0].pointer == "/spec/template/spec/initContainers/0/image"
    assert found[0].resource == "Deployment/shop/web"
    # init containers need no probes
    assert "readiness-probe" not in codes(k8s(docs))


def test_digest_pinned_images_and_registry_ports_pass() -> None:
    for image in ("registry.test:5000/app@sha256:" + "a" * 64, "registry.test:5000/app:2", "app:1.0@sha256:00"):
        assert policy.image_problem(image) is None, image
    assert policy.image_problem("registry.test:5000/app") is not None


def test_jobs_need_no_probes_nor_replicas_and_bare_pods_are_reported() -> None:
    spec = copy.deepcopy(pod_spec(good_app()))
    for c in spec["containers"]:
        c.pop("readinessProbe")
        c.pop("livenessProbe")
    job = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
           "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    others = good_app()[1:]
    others[0]["spec"]["selector"] = {}  # a Service without a selector is not checked
    assert codes(k8s([job, *others])) == []
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
           "spec": copy.deepcopy(pod_spec(good_app()))}
    found = k8s([pod, *others])
    assert codes(found) == ["bare-pod"] and found[0].pointer == "/kind"


def test_every_pod_template_kind_is_checked() -> None:
    spec = {"containers": [{"name": "c", "image": "nginx"}]}
    template = {"metadata": {"labels": {"a": "b"}}, "spec": spec}
    bodies = {
        "Deployment": {"template": template}, "StatefulSet": {"template": template},
        "DaemonSet": {"template": template}, "ReplicaSet": {"template": template}, "Job": {"template": template},
        "CronJob": {"jobTemplate": {"spec": {"template": template}}}, "Pod": spec,
    }
    for kind, body in bodies.items():
        found = k8s([{"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, "spec": body}])
        assert "image-tag" in codes(found), kind


def test_replicas_of_an_autoscaled_deployment_pass() -> None:
    docs = good_app()
    docs[0]["spec"].pop("replicas")
    docs.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "web", "namespace": "shop"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}})
    assert "single-replica" not in codes(k8s(docs))


def test_optional_references_and_variable_references_pass() -> None:
    docs = good_app()
    del docs[3:]
    container(docs)["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = True
    container(docs)["envFrom"][0]["configMapRef"]["optional"] = True
    container(docs)["env"].append({"name": "DSN_PASSWORD", "value": "$(DB_PASSWORD)"})
    assert codes(k8s(docs)) == []


SWARM_CASES: dict[str, tuple[str, Callable[[Doc], object]]] = {
    "untagged": ("image-tag", lambda s: s.update(image="nginx")),
    "latest": ("image-tag", lambda s: s.update(image="nginx:latest")),
    "no memory limit": ("memory-limit", lambda s: s["deploy"]["resources"]["limits"].pop("memory")),
    "no cpu limit": ("cpu-limit", lambda s: s["deploy"]["resources"]["limits"].pop("cpus")),
    "no reservations": ("resource-requests", lambda s: s["deploy"]["resources"].pop("reservations")),
    "no healthcheck": ("healthcheck", lambda s: s.pop("healthcheck")),
    "disabled healthcheck": ("healthcheck", lambda s: s.update(healthcheck={"disable": True})),
    "healthcheck every second": ("probe-timing", lambda s: s["healthcheck"].update(interval="1s", timeout="1s")),
    "literal password": ("secret-env", lambda s: s["environment"].update(POSTGRES_PASSWORD="x1")),
    "literal password in a list": ("secret-env", lambda s: s.update(environment=["API_KEY=x1"])),
    "literal ip": ("literal-ip", lambda s: s["environment"].update(UPSTREAM="http://172.20.0.4:80")),
    "ip in command": ("literal-ip", lambda s: s.update(command=["--peer", "10.0.0.7"])),
    "one replica": ("single-replica", lambda s: s["deploy"].update(replicas=1)),
    "replicas unset": ("single-replica", lambda s: s["deploy"].pop("replicas")),
    "capability": ("dangerous-capability", lambda s: s.update(cap_add=["NET_ADMIN"])),
    "docker socket": ("docker-socket", lambda s: s.update(volumes=["/var/run/docker.sock:/var/run/docker.sock"])),
    "docker socket long": ("docker-socket", lambda s: s.update(
        volumes=[{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}])),
}


@pytest.mark.parametrize("case", list(SWARM_CASES))
def test_swarm_rule_fires(case: str) -> None:
    rule, mutate = SWARM_CASES[case]
    doc = good_compose()
    mutate(doc["services"]["web"])
    found = [d for d in compose(doc) if d.code == rule]
    assert found, codes(compose(doc))
    assert all(d.file == "compose.yaml" and d.resource == "Service/shop/web" for d in found)
    assert all(d.pointer.startswith("/services/web") and d.message.startswith(f"[{rule}] ") for d in found)


def test_swarm_jobs_and_global_services_need_no_replicas_nor_healthcheck() -> None:
    doc = good_compose()
    service = doc["services"]["web"]
    service.pop("healthcheck")
    service["deploy"] = {"mode": "replicated-job", "resources": service["deploy"]["resources"]}
    assert compose(doc) == []
    service["deploy"]["mode"] = "global"
    assert codes(compose(doc)) == ["healthcheck"]


def test_swarm_secret_from_the_deployers_environment_passes() -> None:
    raw = "services:\n  web:\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n"
    doc = good_compose()
    doc["services"]["web"]["environment"]["DB_PASSWORD"] = "interpolated-from-env"
    assert "secret-env" not in codes(compose(doc, raw=raw))
    assert "secret-env" in codes(compose(doc, raw=raw.replace("${DB_PASSWORD}", "written-here")))


# -- waivers, levels, exclusions, --strict -----------------------------------------------------------


def test_kubernetes_waiver_with_and_without_reason() -> None:
    docs = good_app()
    container(docs)["image"] = "nginx"
    docs[0]["spec"]["replicas"] = 1
    docs[0]["metadata"]["annotations"] = {policy.WAIVER_ANNOTATION: "image-tag, single-replica -- vendor pins it"}
    assert k8s(docs) == []
    docs[0]["metadata"]["annotations"] = {policy.WAIVER_ANNOTATION: "image-tag"}
    found = k8s(docs)
    assert codes(found) == ["waiver", "single-replica"]
    assert found[0].pointer == "/metadata/annotations/gitops.dev~1ignore" and "without a reason" in found[0].message
    docs[0]["metadata"]["annotations"] = {policy.WAIVER_ANNOTATION: "image-tags -- typo"}
    assert "names no known rule: image-tags" in k8s(docs)[0].message
    # on the pod template too
    docs[0]["metadata"].pop("annotations")
    docs[0]["spec"]["template"]["metadata"]["annotations"] = {policy.WAIVER_ANNOTATION: "image-tag -- why"}
    assert codes(k8s(docs)) == ["single-replica"]


def test_compose_waiver_and_compose_rules_accept_the_extension_key(tmp_path: Path) -> None:
    doc = good_compose()
    service = doc["services"]["web"]
    service.pop("healthcheck")
    service[policy.WAIVER_KEY] = "healthcheck -- the image defines HEALTHCHECK"
    assert compose(doc) == []
    service[policy.WAIVER_KEY] = "healthcheck"
    assert codes(compose(doc)) == ["waiver"]
    text = yaml.safe_dump(doc)
    (tmp_path / "compose.yaml").write_text(text)
    report = engine.validate(["compose.yaml"], cwd=tmp_path, env={})
    line = text.splitlines().index("    x-gitops-ignore: healthcheck") + 1
    assert [d.code for d in report.diagnostics] == ["waiver"] and report.diagnostics[0].line == line


def test_levels_override_and_exclusions() -> None:
    docs = good_app()
    container(docs)["image"] = "nginx"
    container(docs)["env"].append({"name": "API_TOKEN", "value": "x1"})
    found = k8s(docs, PolicySettings({"image-tag": Level.ERROR, "secret-env": Level.WARNING}))
    assert {(d.code, d.severity) for d in found} == {("image-tag", Severity.ERROR), ("secret-env", Severity.WARNING)}
    assert codes(k8s(docs, PolicySettings({"image-tag": Level.OFF}))) == ["secret-env"]
    assert k8s(docs, PolicySettings(exclude=(Exclude(kind="Deployment", name="w*"),))) == []
    assert k8s(docs, PolicySettings(exclude=(Exclude(namespace="shop"),))) == []
    assert len(k8s(docs, PolicySettings(exclude=(Exclude(namespace="other"),)))) == 2


def test_strict_makes_warnings_errors(tmp_path: Path) -> None:
    docs = good_app()
    container(docs)["image"] = "nginx"
    assert [d.severity for d in k8s(docs, strict=True)] == [Severity.ERROR]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump_all(docs))
    assert engine.validate(["m.yaml"], cwd=tmp_path, env={}).ok
    strict = engine.validate(["m.yaml"], cwd=tmp_path, env={}, strict=True)
    assert not strict.ok and [d.code for d in strict.errors] == ["image-tag"]
    assert engine.validate(["m.yaml"], cwd=tmp_path, env={}, strict=True, policy=False).ok


# -- no secret is printed ----------------------------------------------------------------------------

CANARY = "CanaryS3cr3t-9f2b"


def test_no_message_prints_a_secret_value() -> None:
    """Every rule's violating case, with the canary in every value that could be a secret."""
    found: list[Diagnostic] = []
    for _rule, mutate in K8S_CASES.values():
        docs = good_app()
        container(docs)["env"] += [{"name": name, "value": f"{CANARY}@10.9.8.7"}
                                   for name in ("PASSWORD", "API_KEY", "TOKEN", "X")]
        container(docs)["args"] = [f"--password={CANARY}", f"postgres://u:{CANARY}@10.9.8.7/db"]
        docs[0]["metadata"]["annotations"] = {policy.WAIVER_ANNOTATION: f"{CANARY} -- x"}
        mutate(docs)
        found += k8s(docs)
    for _rule, mutate_service in SWARM_CASES.values():
        doc = good_compose()
        service = doc["services"]["web"]
        service["environment"] = {"PASSWORD": f"{CANARY}@10.9.8.7", "DSN": f"u:{CANARY}@10.9.8.7"}
        service["command"] = f"run --token {CANARY} --peer 10.9.8.7"
        service[policy.WAIVER_KEY] = f"{CANARY}"
        mutate_service(service)
        found += compose(doc)
    assert {r.id for r in policy.RULES} - set(codes(found)) <= {"bare-pod"}
    for diagnostic in found:
        assert CANARY not in str(diagnostic), str(diagnostic)
        assert CANARY not in json.dumps(diagnostic.__dict__, default=str)


# -- gitops.yaml, the CLI, plan/apply -----------------------------------------------------------------


def test_schema_lists_exactly_the_rules() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$defs"]["policy_rule"]["enum"] == [r.id for r in policy.RULES]


GITOPS_YAML = """\
version: 1
policy:
  image-tag: error
  single-replica: off
  exclude:
    - {kind: Deployment, name: "legacy-*"}
apps:
  - name: web
    backend: kubernetes
    paths: [k8s]
    target: {namespace: shop}
    policy:
      cpu-limit: "off"
      single-replica: warning
      exclude: [{namespace: kube-system}]
  - name: other
    backend: kubernetes
    paths: [k8s]
"""


def test_config_policy_top_level_and_per_app() -> None:
    settings = config.parse(GITOPS_YAML)
    web, other = settings.apps
    assert other.policy.levels == {"image-tag": Level.ERROR, "single-replica": Level.OFF}
    assert web.policy.levels == {"image-tag": Level.ERROR, "single-replica": Level.WARNING, "cpu-limit": Level.OFF}
    assert web.policy.exclude == (Exclude("Deployment", "legacy-*"), Exclude(namespace="kube-system"))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  image-tag: error", "  image-tags: error", 'gitops.yaml:2:1, field /policy: policy: unknown rule "image-tags"'),
    ('cpu-limit: "off"', "cpu-limit: loud", "gitops.yaml:13:7, field /apps/0/policy/cpu-limit: "
     'apps[0].policy.cpu-limit: must be one of "off", "warning", "error", false, got "loud"'),
    ("{namespace: kube-system}", "{names: x}", "apps[0].policy.exclude[0]: unknown field 'names'"),
])
def test_config_policy_errors_name_file_and_field(old: str, new: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.parse(GITOPS_YAML.replace(old, new))
    assert message in str(raised.value)


def test_list_rules() -> None:
    result = CliRunner().invoke(cli, ["validate", "--list-rules"])
    assert result.exit_code == 0
    for rule in policy.RULES:
        assert f"{rule.id} " in result.output and rule.rationale in result.output
    rules = json.loads(CliRunner().invoke(cli, ["validate", "--list-rules", "--output", "json"]).output)
    assert [r["id"] for r in rules] == [r.id for r in policy.RULES]
    assert rules[0]["severity"] == "warning" and rules[0]["fix"]


def repo_with_policy_error(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    docs = good_app()
    container(docs)["env"].append({"name": "API_TOKEN", "value": CANARY})
    (root / "k8s" / "app.yaml").write_text(yaml.safe_dump_all(docs))
    (root / "gitops.yaml").write_text("version: 1\napps:\n  - name: web\n    backend: kubernetes\n    paths: [k8s]\n"
                                      "    target: {kubeconfig: /nonexistent/kubeconfig, namespace: shop}\n")
    return root


def test_validate_cli_text_and_json_and_no_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo_with_policy_error(tmp_path)
    monkeypatch.chdir(root)
    text = CliRunner().invoke(cli, ["validate"])
    assert text.exit_code == 1 and CANARY not in text.output
    line = next(out for out in text.output.splitlines() if "[secret-env]" in out)
    assert line.startswith("error: k8s/app.yaml:") and "Deployment/shop/web" in line
    assert "field /spec/template/spec/containers/0/env/2/value" in line and "API_TOKEN" in line
    report = json.loads(CliRunner().invoke(cli, ["validate", "--output", "json"]).output)
    (finding,) = [d for d in report["diagnostics"] if d["code"] == "secret-env"]
    assert finding["resource"] == "Deployment/shop/web" and finding["line"] and finding["severity"] == "error"
    assert CliRunner().invoke(cli, ["validate", "--no-policy"]).exit_code == 0


def test_plan_and_apply_refuse_policy_errors_before_touching_the_target(tmp_path: Path) -> None:
    """The kubeconfig does not exist: reaching the target would fail differently."""
    ws = engine.open_workspace(cwd=repo_with_policy_error(tmp_path))
    with pytest.raises(engine.ValidationFailed) as raised:
        engine.plan(ws)
    message = str(raised.value)
    assert message.startswith("app web: 1 validation error(s); nothing was changed") and "[secret-env]" in message
    assert CANARY not in message
    (result,) = engine.apply(ws)
    assert result.outcome == "failed" and result.error == message


def test_the_example_repository_has_no_policy_finding(tmp_path: Path) -> None:
    """Without its Helm app and override stack (they need helm; test_helm.py checks them)."""
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example)
    trim_example(example, promotion=True)
    report = engine.validate(cwd=example, env={})
    assert report.ok and report.diagnostics == [], [str(d) for d in report.diagnostics]
    assert engine.validate(cwd=example, env={}, strict=True).diagnostics == []


def test_the_readme_table_is_the_rule_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and line.split("`")[1] in policy.BY_ID]
    assert [row.split("`")[1] for row in rows] == [r.id for r in policy.RULES]
    for row, rule in zip(rows, policy.RULES, strict=True):
        assert f"| {rule.severity} |" in row and rule.rationale in row and rule.fix in row


def test_at_line_is_replace_of_the_line() -> None:
    import dataclasses

    diagnostic = Diagnostic(Severity.WARNING, "m", file="f", document=2, line=1, pointer="/p", code="c", resource="r")
    assert diagnostic.at_line(7) == dataclasses.replace(diagnostic, line=7)
    assert diagnostic.at_line(7, 3) == dataclasses.replace(diagnostic, line=7, column=3)
    assert [f.name for f in dataclasses.fields(Diagnostic)] == ["severity", "message", "file", "document", "line",
                                                                 "pointer", "code", "resource", "column"]
