"""Rendered objects: valid against the real Kubernetes schemas, and shaped as the design needs.

Covers: every object rendered for the examples (and for the fleet options switched off)
passes kubernetes-validate in strict mode for the newest Kubernetes version it bundles;
the gateway Deployment's command, environment, probes and hardening; a snapshot change
leaves the pod template alone; provider Secrets mount at <namespace>/<secret>/<key> and
copy only referenced keys; Ollama runs on GPU nodes, pulls before ready, keeps warm, and
gets a volume; the fleet config shapes replicas, HPA and PDB.
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import kubernetes_validate
import pytest

from sluicegate.operator import _names, _rendering, _snapshot, commands
from sluicegate.operator._settings import FleetConfig, OperatorSettings

from operator_resources import OPENAI_CLOUD, budget, policy

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = kubernetes_validate.latest_version()
SETTINGS = OperatorSettings(namespace="sluicegate-system", default_policy_namespace="sluicegate-system")


def _render(*documents: dict[str, Any], settings: OperatorSettings = SETTINGS, secret_data: Any = None) -> list[dict[str, Any]]:
    snapshot = _snapshot.build(_snapshot.Resources.from_documents(documents), settings=settings, secrets=None)
    return _rendering.render_all(snapshot, settings=settings, secret_data=secret_data)


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def _validate_all(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validator_bundles_current_kubernetes() -> None:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    assert (int(major), int(minor)) >= (1, 30)


def test_strict_validation_catches_unknown_field() -> None:
    deployment = _one(_render(), "Deployment", "sluicegate-gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_rendered_examples_pass_strict_validation() -> None:
    documents = commands.read_documents(REPOSITORY / "examples")
    objects = _render(*documents)
    kinds = sorted({obj["kind"] for obj in objects})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
        "PodDisruptionBudget", "Secret", "Service", "ServiceAccount",
    ]
    _validate_all(objects)


def test_rendered_fleet_without_options_passes_validation() -> None:
    fleet = FleetConfig.model_validate(
        {"gateway": {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}, "replicas": 3}}
    )
    settings = OperatorSettings(namespace="llm", fleet=fleet)
    objects = _render(policy("team-a", ollama={"gpus": 0, "replicas": 2}), settings=settings)
    _validate_all(objects)
    assert not [obj for obj in objects if obj["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]
    assert _one(objects, "Deployment", "sluicegate-gateway")["spec"]["replicas"] == 3


def test_rendered_rbac_passes_validation() -> None:
    from sluicegate.operator import _rbac

    _validate_all(_rbac.render(namespace="sluicegate-system"))


def test_gateway_container_runs_as_designed() -> None:
    deployment = _one(_render(), "Deployment", "sluicegate-gateway")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == [
        "sluicegate", "gateway", "--config", "/etc/sluicegate/config/config.yaml",
        "--secrets-dir", "/etc/sluicegate/secrets", "--host", "0.0.0.0", "--port", "8080",
    ]
    assert container["env"] == [
        {"name": "SLUICEGATE_LEDGER_URL", "valueFrom": {"secretKeyRef": {"name": "sluicegate-ledger", "key": "url"}}}
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert pod["serviceAccountName"] == "sluicegate-gateway"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"name": "config", "configMap": {"name": "sluicegate-config"}} in pod["volumes"]


def test_gateway_replicas_left_to_autoscaler() -> None:
    objects = _render()
    assert "replicas" not in _one(objects, "Deployment", "sluicegate-gateway")["spec"]
    autoscaler = _one(objects, "HorizontalPodAutoscaler", "sluicegate-gateway")
    assert autoscaler["spec"]["minReplicas"] == 2
    assert autoscaler["spec"]["maxReplicas"] == 10
    assert autoscaler["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_gateway_service_maps_port_80() -> None:
    service = _one(_render(), "Service", "sluicegate-gateway")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert _one(_render(), "PodDisruptionBudget", "sluicegate-gateway")["spec"]["minAvailable"] == 1


def test_snapshot_change_keeps_pod_template() -> None:
    before = _render(budget("team-a"), policy("team-a"))
    after = _render(budget("team-a", ceiling="99"), budget("team-b"), policy("team-a", model="qwen2.5:7b"))
    assert _one(before, "ConfigMap", "sluicegate-config") != _one(after, "ConfigMap", "sluicegate-config")
    template_before = _one(before, "Deployment", "sluicegate-gateway")["spec"]["template"]
    template_after = _one(after, "Deployment", "sluicegate-gateway")["spec"]["template"]
    assert template_before == template_after


def test_provider_secret_mounted_by_namespace() -> None:
    data = {("team-a", "openai-credentials"): {"api-key": base64.b64encode(b"sk-test").decode(), "unrelated": "eA=="}}
    objects = _render(policy("team-a", cloud=OPENAI_CLOUD), secret_data=data)
    mirror_name = _names.mirror_secret_name("team-a", "openai-credentials")
    mirror = _one(objects, "Secret", mirror_name)
    assert mirror["metadata"]["namespace"] == "sluicegate-system"
    assert mirror["data"] == {"api-key": base64.b64encode(b"sk-test").decode()}
    assert mirror["metadata"]["labels"][_names.MANAGED_BY] == "sluicegate"

    volumes = _one(objects, "Deployment", "sluicegate-gateway")["spec"]["template"]["spec"]["volumes"]
    (secrets_volume,) = [volume for volume in volumes if volume["name"] == "provider-secrets"]
    (source,) = secrets_volume["projected"]["sources"]
    assert source["secret"]["name"] == mirror_name
    assert source["secret"]["items"] == [{"key": "api-key", "path": "team-a/openai-credentials/api-key"}]


def test_render_mode_prints_mirror_without_data() -> None:
    objects = _render(policy("team-a", cloud=OPENAI_CLOUD))
    mirror = _one(objects, "Secret", _names.mirror_secret_name("team-a", "openai-credentials"))
    assert "data" not in mirror
    assert mirror["metadata"]["annotations"][_names.SOURCE_ANNOTATION] == "team-a/openai-credentials"


def test_ollama_runs_on_gpu_nodes() -> None:
    ollama = {
        "gpus": 2,
        "replicas": 1,
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "keepAlive": "12h",
        "storage": "50Gi",
    }
    objects = _render(policy("team-a", ollama=ollama))
    name = _names.ollama_name("llama3.2:3b")
    deployment = _one(objects, "Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    (pull,) = pod["initContainers"]

    assert server["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == ollama["tolerations"]
    assert {"name": "OLLAMA_KEEP_ALIVE", "value": "12h"} in server["env"]
    assert server["readinessProbe"]["exec"]["command"] == ["ollama", "show", "llama3.2:3b"]
    assert "ollama pull" in pull["command"][-1]
    assert {"name": "SLUICEGATE_MODEL", "value": "llama3.2:3b"} in pull["env"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert _one(objects, "PersistentVolumeClaim", name)["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert _one(objects, "Service", name)["spec"]["ports"][0]["port"] == 11434


def test_ollama_model_name_never_reaches_shell() -> None:
    hostile = "llama; rm -rf /"
    objects = _render(policy("team-a", model=hostile))
    pull = _one(objects, "Deployment", _names.ollama_name(hostile))["spec"]["template"]["spec"]["initContainers"][0]
    assert hostile not in pull["command"][-1]
    assert {"name": "SLUICEGATE_MODEL", "value": hostile} in pull["env"]


def test_fleet_config_sets_images_and_port() -> None:
    fleet = FleetConfig.model_validate(
        {"gateway": {"image": "registry.local/sg:1", "port": 9090, "ledgerSecretRef": {"name": "db", "key": "dsn"}},
         "ollama": {"image": "registry.local/ollama:1"}}
    )
    objects = _render(policy("team-a"), settings=OperatorSettings(fleet=fleet))
    container = _one(objects, "Deployment", "sluicegate-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/sg:1"
    assert container["command"][-1] == "9090"
    assert container["ports"][0]["containerPort"] == 9090
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "dsn"}
    ollama = _one(objects, "Deployment", _names.ollama_name("llama3.2:3b"))
    assert ollama["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/ollama:1"


def test_api_key_secret_holds_key_and_id() -> None:
    secret = _rendering.api_key_secret(namespace="team-a", key_id="k1", key="sg-secret")
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert base64.b64decode(secret["data"]["api-key"]) == b"sg-secret"
    assert secret["metadata"]["annotations"][_names.API_KEY_ID_ANNOTATION] == "k1"
