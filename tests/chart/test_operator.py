"""The operator Deployment and the fleet ConfigMap it reads.

Covers:

- the fleet ConfigMap parses into exactly the shape that `sluicegate operator run
  --fleet-config` reads, with images, replicas, autoscaling, PodDisruptionBudget,
  resources, port, ledger Secret and ServiceAccount taken from the chart's values;
- the operator container's arguments, environment and mounts;
- a restart of the operator when the fleet settings change;
- existing ServiceAccounts, name overrides and NOTES.txt.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import helm_python
import yaml

from chart_support import NAMESPACE, Release, parse_manifests

FLEET_KEYS = {"gateway", "ollama"}
GATEWAY_KEYS = {
    "image",
    "imagePullPolicy",
    "replicas",
    "autoscaling",
    "podDisruptionBudget",
    "resources",
    "port",
    "ledgerSecretRef",
    "serviceAccountName",
}


def fleet_config(release: Release, name: str = "sluicegate-fleet") -> dict[str, Any]:
    configmap = release.get("ConfigMap", name)
    assert set(configmap["data"]) == {"fleet.yaml"}
    parsed: dict[str, Any] = yaml.safe_load(configmap["data"]["fleet.yaml"])
    return parsed


def operator_container(release: Release, name: str = "sluicegate-operator") -> dict[str, Any]:
    deployment = release.get("Deployment", name)
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["operator"]
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container["env"]}


def test_fleet_config_default_shape(render: Callable[..., Release]) -> None:
    fleet = fleet_config(render())

    assert fleet == {
        "gateway": {
            "image": "ghcr.io/sluicegate/sluicegate:0.1.0",
            "imagePullPolicy": "IfNotPresent",
            "replicas": 2,
            "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70},
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "port": 8080,
            "ledgerSecretRef": {"name": "sluicegate-ledger", "key": "url"},
            "serviceAccountName": "sluicegate-gateway",
        },
        "ollama": {"image": "ollama/ollama:0.12.6"},
    }


def test_fleet_config_follows_values(render: Callable[..., Release]) -> None:
    release = render(
        {
            "image": {"repository": "registry.example.internal/sluicegate", "tag": "0.1.0-rc1", "pullPolicy": "Always"},
            "ollama": {"image": {"repository": "registry.example.internal/ollama", "tag": "0.12.6-rocm"}},
            "gateway": {
                "replicas": 4,
                "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"minAvailable": 2},
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "port": 9000,
            },
        }
    )
    fleet = fleet_config(release)
    gateway = fleet["gateway"]

    assert set(fleet) == FLEET_KEYS
    assert set(gateway) == GATEWAY_KEYS
    assert gateway["image"] == "registry.example.internal/sluicegate:0.1.0-rc1"
    assert gateway["imagePullPolicy"] == "Always"
    assert gateway["replicas"] == 4
    assert gateway["autoscaling"]["enabled"] is False
    assert gateway["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2}
    assert gateway["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert gateway["port"] == 9000
    assert fleet["ollama"] == {"image": "registry.example.internal/ollama:0.12.6-rocm"}


def test_image_digest_pins_both_images(render: Callable[..., Release]) -> None:
    digest = "sha256:" + "0f" * 32
    release = render({"image": {"repository": "ghcr.io/sluicegate/sluicegate", "tag": "ignored", "digest": digest}})

    expected = f"ghcr.io/sluicegate/sluicegate@{digest}"
    assert fleet_config(release)["gateway"]["image"] == expected
    assert operator_container(release)["image"] == expected


def test_operator_runs_one_replica(render: Callable[..., Release]) -> None:
    deployment = render().get("Deployment", "sluicegate-operator")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "sluicegate-operator"


def test_operator_command_and_environment(render: Callable[..., Release]) -> None:
    container = operator_container(render({"operator": {"defaultPolicyNamespace": "platform-llm"}}))
    env = env_of(container)

    assert "command" not in container, "the image's ENTRYPOINT is `sluicegate`; the chart passes only arguments"
    assert container["args"] == ["operator", "run"]
    assert env["SLUICEGATE_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["SLUICEGATE_DEFAULT_POLICY_NAMESPACE"]["value"] == "platform-llm"
    assert env["SLUICEGATE_LEDGER_URL"]["valueFrom"] == {"secretKeyRef": {"name": "sluicegate-ledger", "key": "url"}}
    assert "value" not in env["SLUICEGATE_LEDGER_URL"]


def test_operator_liveness_probe(render: Callable[..., Release]) -> None:
    container = operator_container(render())
    endpoint = urllib.parse.urlsplit(env_of(container)["SLUICEGATE_OPERATOR_LIVENESS"]["value"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert endpoint.hostname == "0.0.0.0"
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == endpoint.path
        assert ports[container[probe]["httpGet"]["port"]] == endpoint.port
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "kopf scans the API before it reports alive"


def test_operator_mounts_fleet_config(render: Callable[..., Release]) -> None:
    release = render()
    deployment = release.get("Deployment", "sluicegate-operator")
    container = operator_container(release)
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    fleet_path = env_of(container)["SLUICEGATE_FLEET_CONFIG"]["value"]

    assert volumes["fleet-config"]["configMap"]["name"] == "sluicegate-fleet"
    assert mounts["fleet-config"]["readOnly"] is True
    assert fleet_path == mounts["fleet-config"]["mountPath"] + "/fleet.yaml"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]


def test_fleet_change_restarts_operator(render: Callable[..., Release]) -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = render(values).get("Deployment", "sluicegate-operator")
        annotation: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/fleet-config"]
        return annotation

    default = checksum({})
    assert len(default) == 64
    assert checksum({}) == default
    assert checksum({"gateway": {"replicas": 3}}) != default
    assert checksum({"ollama": {"image": {"repository": "ollama/ollama", "tag": "0.12.7"}}}) != default


def test_operator_scheduling_values(render: Callable[..., Release]) -> None:
    tolerations = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    release = render(
        {
            "operator": {
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "tolerations": tolerations,
                "priorityClassName": "system-cluster-critical",
                "podAnnotations": {"example.com/owner": "platform"},
                "podLabels": {"team": "platform"},
            }
        }
    )
    template = release.get("Deployment", "sluicegate-operator")["spec"]["template"]

    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["tolerations"] == tolerations
    assert template["spec"]["priorityClassName"] == "system-cluster-critical"
    assert template["metadata"]["annotations"]["example.com/owner"] == "platform"
    assert template["metadata"]["labels"]["team"] == "platform"


def test_service_accounts_created_by_default(render: Callable[..., Release]) -> None:
    release = render()
    gateway = release.get("ServiceAccount", "sluicegate-gateway")
    operator = release.get("ServiceAccount", "sluicegate-operator")

    assert gateway["automountServiceAccountToken"] is False
    assert operator.get("automountServiceAccountToken", True) is True


def test_existing_service_accounts_used(render: Callable[..., Release]) -> None:
    release = render(
        {
            "operator": {"serviceAccount": {"create": False, "name": "platform-operator"}},
            "gateway": {"serviceAccount": {"create": False, "name": "platform-gateway"}},
        }
    )
    bindings = release.of_kind("ClusterRoleBinding") + release.of_kind("RoleBinding")

    assert release.of_kind("ServiceAccount") == []
    assert release.get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    assert fleet_config(release)["gateway"]["serviceAccountName"] == "platform-gateway"
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "platform-operator", "namespace": NAMESPACE}]


def test_image_pull_secrets_reach_every_pod(render: Callable[..., Release]) -> None:
    secrets = [{"name": "registry-credentials"}]
    release = render({"imagePullSecrets": secrets})

    assert release.get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]["imagePullSecrets"] == secrets
    assert release.get("StatefulSet", "sluicegate-postgresql")["spec"]["template"]["spec"]["imagePullSecrets"] == secrets
    # The operator creates the gateway pods; Kubernetes adds their ServiceAccount's pull secrets.
    assert release.get("ServiceAccount", "sluicegate-gateway")["imagePullSecrets"] == secrets


def test_fullname_override_renames_objects(render: Callable[..., Release]) -> None:
    release = render({"fullnameOverride": "llm-gate", "commonLabels": {"team": "platform"}})

    assert release.find("Deployment", "llm-gate-operator") is not None
    assert fleet_config(release, "llm-gate-fleet")["gateway"]["ledgerSecretRef"] == {"name": "llm-gate-ledger", "key": "url"}
    assert fleet_config(release, "llm-gate-fleet")["gateway"]["serviceAccountName"] == "llm-gate-gateway"
    assert all(not name.split("/")[1].startswith("sluicegate") for name in release.names())
    assert all(obj["metadata"]["labels"]["team"] == "platform" for obj in release.objects)


def test_release_name_prefixes_objects(chart: helm_python.Chart) -> None:
    release = parse_manifests(chart.render({}, name="llm", namespace=NAMESPACE))

    assert release.find("Deployment", "llm-sluicegate-operator") is not None
    assert release.find("ClusterRole", "llm-sluicegate-operator") is not None


def test_notes_give_next_steps(render: Callable[..., Release]) -> None:
    notes = render().notes

    assert "kubectl apply -f" in notes
    assert "kind: LLMBudget" in notes
    assert "kind: RoutePolicy" in notes
    assert "kubectl get secret sluicegate-api-key -n team-a -o jsonpath='{.data.api-key}' | base64 -d" in notes
    assert f"kubectl port-forward -n {NAMESPACE} service/sluicegate-gateway 8080:80" in notes
    assert "curl -sS http://127.0.0.1:8080/v1/chat/completions" in notes


def test_notes_name_external_dsn_secret(render: Callable[..., Release]) -> None:
    notes = render(
        {"postgresql": {"bundled": {"enabled": False}, "external": {"dsnSecretRef": {"name": "ledger-dsn", "key": "dsn"}}}}
    ).notes

    assert "kubectl create secret generic ledger-dsn" in notes
    assert "--from-literal=dsn=" in notes
    assert "bundled PostgreSQL" not in notes
