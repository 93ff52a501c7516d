"""The deployment files (deploy/compose.yaml, deploy/kubernetes/, the Dockerfile): the
offline validators of scripts/validate_deploy.py, then the properties a platform team
checks, read straight from the YAML. No container is started: there is no Docker engine or
cluster here."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"

_spec = importlib.util.spec_from_file_location(
    "validate_deploy", ROOT / "scripts" / "validate_deploy.py"
)
assert _spec is not None
assert _spec.loader is not None
validate_deploy = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = validate_deploy  # its dataclasses look their module up
_spec.loader.exec_module(validate_deploy)

IMAGE_UID = 10001
# In a container the API listens on every interface of its own network namespace.
SERVE = ["triage", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
TMP = "/tmp"  # noqa: S108 (the containers' writable scratch directory)
MIGRATE = ["triage", "db", "upgrade"]
DISPATCH = ["triage", "notify", "run"]
# An environment variable with such a name carries a secret (or a URL with a password in it).
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|DATABASE_URL|REDIS_URL")
SETTINGS_VARS = {f"TRIAGE_{name.upper()}" for name in Settings.model_fields}
SECRET_SETTINGS = {
    f"TRIAGE_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if "SecretStr" in repr(field.annotation) or field.annotation is SecretStr
}


# --- the validators -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(validate_deploy.CHECKS))
def test_validator_passes(name: str) -> None:
    try:
        outcome = validate_deploy.CHECKS[name]()
    except validate_deploy.ToolMissing as exc:
        pytest.skip(f"{exc} is not installed")
    assert outcome.ok, outcome.output


# --- Kubernetes -----------------------------------------------------------------------


def _objects() -> list[dict[str, Any]]:
    out = []
    for path in validate_deploy.manifests():
        out.extend(doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc)
    return out


def _applied() -> list[dict[str, Any]]:
    """The objects kustomization.yaml applies (not the Secret example)."""
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text("utf-8"))["resources"]
    out = []
    for name in listed:
        out.extend(d for d in yaml.safe_load_all((KUBERNETES / name).read_text("utf-8")) if d)
    return out


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _applied() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _workloads() -> list[dict[str, Any]]:
    return [o for o in _applied() if o["kind"] in ("Deployment", "Job")]


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text("utf-8"))["resources"]
    files = {p.name for p in validate_deploy.manifests()}
    assert set(listed) == files - {"secret.example.yaml"}
    assert all(o["kind"] != "Secret" for o in _applied())


def test_every_object_is_namespace_agnostic_and_labelled() -> None:
    for obj in _objects():
        meta = obj["metadata"]
        assert "namespace" not in meta, meta["name"]
        assert meta["labels"]["app.kubernetes.io/name"] == "da-triage", meta["name"]
        assert meta["labels"]["app.kubernetes.io/part-of"] == "da-triage", meta["name"]


def test_every_workload_runs_as_the_image_user_read_only_and_without_privileges() -> None:
    assert {w["metadata"]["name"] for w in _workloads()} == {
        "da-triage-api",
        "da-triage-dispatcher",
        "da-triage-migrate",
    }
    for workload in _workloads():
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] == "da-triage", name
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, name
        assert (psc["runAsUser"], psc["runAsGroup"]) == (IMAGE_UID, IMAGE_UID), name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["runAsUser"] == IMAGE_UID, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert "privileged" not in sc or sc["privileged"] is False, name
            # With a read-only root, /tmp is the one writable path, an emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert set(mounts) == {TMP}, name
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts[TMP]], name
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)
            assert container["image"].startswith("ghcr.io/example/da-triage:"), name


def test_the_image_name_is_the_one_kustomize_replaces() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text("utf-8"))
    (image,) = kustomization["images"]
    for workload in _workloads():
        assert _container(workload)["image"].split(":")[0] == image["name"]


def test_the_dockerfile_user_is_the_uid_the_manifests_and_compose_name() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert f"--uid {IMAGE_UID}" in dockerfile
    assert f"--gid {IMAGE_UID}" in dockerfile
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", dockerfile, re.M)


def test_secrets_come_only_from_the_secret_object() -> None:
    for workload in _workloads():
        container = _container(workload)
        name = workload["metadata"]["name"]
        for source in container.get("envFrom", []):
            assert set(source) <= {"configMapRef", "secretRef"}, name
        for var, entry in _env(container).items():
            assert var in SETTINGS_VARS, f"{name}: {var} is not a setting (app/config.py)"
            if SECRET_NAME.search(var):
                assert "value" not in entry, f"{name}: {var} is a literal"
                assert entry["valueFrom"]["secretKeyRef"]["name"] == "da-triage", (name, var)
    configmap = _one("ConfigMap", "da-triage")
    for key, value in configmap["data"].items():
        assert key in SETTINGS_VARS, f"ConfigMap: {key} is not a setting (app/config.py)"
        assert not SECRET_NAME.search(key), f"ConfigMap holds {key}: it belongs in the Secret"
        assert isinstance(value, str)


def test_every_secret_setting_reaches_the_api_from_the_secret() -> None:
    env = _env(_container(_one("Deployment", "da-triage-api")))
    assert SECRET_SETTINGS, "no SecretStr setting found in app/config.py"
    for var in SECRET_SETTINGS | {"TRIAGE_DATABASE_URL", "TRIAGE_REDIS_URL"}:
        assert "secretKeyRef" in env[var]["valueFrom"], var
    # Without these the service refuses to start or to deliver: they are not optional.
    for var in ("TRIAGE_DATABASE_URL", "TRIAGE_NOTIFY_SECRET_KEY"):
        assert not env[var]["valueFrom"]["secretKeyRef"].get("optional", False), var
    example = _one_example_secret()
    assert set(example["stringData"]) >= SECRET_SETTINGS | {"TRIAGE_DATABASE_URL"}
    assert all(v.startswith("REPLACE") for v in example["stringData"].values())


def _one_example_secret() -> dict[str, Any]:
    (secret,) = yaml.safe_load_all((KUBERNETES / "secret.example.yaml").read_text("utf-8"))
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "da-triage"
    return secret


def _command(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def test_the_api_deployment_serves_with_probes_and_drains() -> None:
    api = _one("Deployment", "da-triage-api")
    spec = api["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    container = _container(api)
    assert _command(container) == SERVE  # no migration in the API pod
    (port,) = container["ports"]
    assert port["containerPort"] == 8000
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    # The probes' paths are the service's own (openapi/openapi.json).
    paths = json.loads((ROOT / "openapi" / "openapi.json").read_text("utf-8"))["paths"]
    assert {"/livez", "/readyz"} <= set(paths)
    # preStop, then uvicorn's graceful shutdown (20 s), inside the grace period.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= max(30, int(pre_stop[1]) + 20)
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"


def test_the_migration_is_a_job_of_its_own() -> None:
    job = _one("Job", "da-triage-migrate")
    assert _command(_container(job)) == MIGRATE
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    env = _env(_container(job))
    assert set(env) == {"TRIAGE_DATABASE_URL"}  # nothing it does not need


def test_the_dispatcher_is_a_deployment_of_its_own() -> None:
    dispatcher = _one("Deployment", "da-triage-dispatcher")
    assert _command(_container(dispatcher)) == DISPATCH
    assert 1 <= dispatcher["spec"]["replicas"] <= 2
    assert dispatcher["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    assert "TRIAGE_NOTIFY_SECRET_KEY" in _env(_container(dispatcher))


def test_service_hpa_and_pdb_point_at_the_api_pods() -> None:
    api = _one("Deployment", "da-triage-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert _matches(api["spec"]["selector"]["matchLabels"], labels)
    service = _one("Service", "da-triage-api")
    assert _matches(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == _container(api)["ports"][0]["name"]
    pdb = _one("PodDisruptionBudget", "da-triage-api")
    assert pdb["spec"]["minAvailable"] == 1
    assert _matches(pdb["spec"]["selector"]["matchLabels"], labels)
    hpa = _one("HorizontalPodAutoscaler", "da-triage-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "da-triage-api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # The dispatcher's and the migration's labels do not fall under the API's selectors.
    for other in ("da-triage-dispatcher",):
        other_labels = _one("Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not _matches(service["spec"]["selector"], other_labels)


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def test_network_policies_cover_every_pod_both_ways() -> None:
    policies = [o for o in _applied() if o["kind"] == "NetworkPolicy"]
    for workload in _workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if _matches(p["spec"]["podSelector"]["matchLabels"], labels)]
        assert len(mine) == 1, workload["metadata"]["name"]
        (policy,) = mine
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        assert {53, 5432} <= _egress_ports(policy), workload["metadata"]["name"]
    api = _one("NetworkPolicy", "da-triage-api")
    (rule,) = api["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [8000]
    assert all("namespaceSelector" in peer for peer in rule["from"])  # never from anywhere
    assert 6379 in _egress_ports(api)
    dispatcher = _one("NetworkPolicy", "da-triage-dispatcher")
    assert dispatcher["spec"]["ingress"] == []
    assert {443, 587} <= _egress_ports(dispatcher)
    assert _one("NetworkPolicy", "da-triage-migrate")["spec"]["ingress"] == []


# --- compose --------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))


def _own_services() -> dict[str, dict[str, Any]]:
    """The services made from the repository's image."""
    services = _compose()["services"]
    return {k: v for k, v in services.items() if "TRIAGE_IMAGE" in v.get("image", "")}


def test_compose_runs_the_migration_before_the_api_and_the_dispatcher() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "migrate", "db", "redis", "dispatcher"}
    assert services["migrate"]["command"] == MIGRATE
    assert services["api"]["command"] == SERVE
    assert services["dispatcher"]["command"] == DISPATCH
    for name in ("api", "dispatcher"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["db"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["db"]["image"].startswith("postgres:15")
    assert "healthcheck" in services["db"]
    volume = services["db"]["volumes"][0].split(":")[0]
    assert volume in _compose()["volumes"]  # a named volume, not a host path
    # The API is published on the loopback only: a TLS proxy goes in front.
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_compose_containers_are_unprivileged_and_read_only() -> None:
    own = _own_services()
    assert set(own) == {"api", "migrate", "dispatcher"}
    for name, service in own.items():
        assert service["user"] == f"{IMAGE_UID}:{IMAGE_UID}", name
        assert service["read_only"] is True, name
        assert any(t.split(":")[0] == TMP for t in service["tmpfs"]), name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    for name, service in _compose()["services"].items():
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service.get("privileged", False), name


def test_compose_holds_no_secret_and_the_example_env_none_either() -> None:
    reference = r"\$\{[A-Z_]+:\?[^}]*\}"  # ${VAR:?message}: from deploy/.env, required
    for name, service in _compose()["services"].items():
        for var, value in service.get("environment", {}).items():
            if re.search(r"SECRET|PASSWORD|TOKEN|_KEY$", var):
                assert re.fullmatch(reference, str(value)), (name, var)
            # A URL's password, too, is a reference (Redis on compose's network has none).
            if credentials := re.search(r"//[^:/@]*:(.*)@", str(value)):
                assert re.fullmatch(reference, credentials.group(1)), (name, var)
    for name, service in _own_services().items():
        for var in service["environment"]:
            assert var in SETTINGS_VARS, f"{name}: {var} is not a setting (app/config.py)"
    example = (DEPLOY / ".env.example").read_text("utf-8")
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert assigned["POSTGRES_PASSWORD"] == ""
    assert assigned["TRIAGE_NOTIFY_SECRET_KEY"] == ""
    for var in assigned:
        assert var == "POSTGRES_PASSWORD" or var in SETTINGS_VARS, var
    assert "/deploy/.env" in (ROOT / ".gitignore").read_text("utf-8").splitlines()
    assert "deploy/.env" in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
