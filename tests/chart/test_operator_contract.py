"""The chart and the operator agree on the objects that pass between them.

The operator's own code reads the chart's output here, so a change on either side that
breaks the other fails these tests. Covers:

- the operator loads the chart's fleet ConfigMap, for every documented option set, and
  reads its namespace, default policy namespace and liveness endpoint from the chart's env;
- the gateway pods the operator renders pass the chart's NetworkPolicy to PostgreSQL;
- the chart's ServiceMonitor selects the operator's gateway Service and names its port;
- NOTES.txt and the docs forward to the port the gateway Service listens on;
- the gateway pods run as the user that the image creates;
- the chart and the operator never both create one object.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import NAMESPACE, OPTION_SETS, REPOSITORY, Release

from sluicegate.operator import _rendering, _settings, _snapshot


def operator_settings(release: Release, tmp_path: Path) -> _settings.OperatorSettings:
    """Build the operator's settings the way the operator pod does: from the chart's env and files."""
    deployment = release.of_kind("Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    environment = {entry["name"]: entry.get("value", "") for entry in container["env"]}
    configmap = next(obj for obj in release.of_kind("ConfigMap") if obj["metadata"]["name"].endswith("-fleet"))
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(configmap["data"]["fleet.yaml"])

    environment["SLUICEGATE_FLEET_CONFIG"] = str(fleet_file)
    environment["SLUICEGATE_OPERATOR_NAMESPACE"] = NAMESPACE
    environment["SLUICEGATE_LEDGER_URL"] = "postgresql://user:secret@127.0.0.1:5432/ledger"
    return _settings.build_settings(environ=environment)


def operator_objects(settings: _settings.OperatorSettings) -> list[dict[str, Any]]:
    """Render what the operator would create for the team-a example."""
    documents = [document for document in yaml.safe_load_all((REPOSITORY / "examples" / "team-a.yaml").read_text()) if document]
    snapshot = _snapshot.build(_snapshot.Resources.from_documents(documents), settings=settings, secrets=None)
    return _rendering.render_all(snapshot, settings=settings, secret_data=None)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("option", sorted(OPTION_SETS))
def test_operator_loads_fleet_config(render: Callable[..., Release], tmp_path: Path, option: str) -> None:
    release = render(OPTION_SETS[option])
    configmap = next(obj for obj in release.of_kind("ConfigMap") if obj["metadata"]["name"].endswith("-fleet"))
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(configmap["data"]["fleet.yaml"])

    fleet = _settings.load_fleet_config(fleet_file)

    rendered = yaml.safe_load(configmap["data"]["fleet.yaml"])
    assert fleet.model_dump(by_alias=True) == rendered


def test_operator_reads_chart_environment(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render({"operator": {"defaultPolicyNamespace": "platform-llm"}})
    container = release.get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]["containers"][0]

    settings = operator_settings(release, tmp_path)

    assert settings.namespace == NAMESPACE
    assert settings.default_policy_namespace == "platform-llm"
    assert settings.liveness_endpoint is not None
    assert settings.liveness_endpoint.endswith(container["livenessProbe"]["httpGet"]["path"])


def test_operator_reads_numeric_quantities(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render({"gateway": {"resources": {"requests": {"cpu": 2, "memory": "1Gi"}, "limits": {"cpu": 4}}}})

    fleet = operator_settings(release, tmp_path).fleet

    assert fleet.gateway.resources.requests == {"cpu": "2", "memory": "1Gi"}
    assert fleet.gateway.resources.limits == {"cpu": "4", "memory": "512Mi"}


def test_gateway_pods_pass_network_policy(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render()
    gateway = find(operator_objects(operator_settings(release, tmp_path)), "Deployment", "sluicegate-gateway")
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    [rule] = release.get("NetworkPolicy", "sluicegate-postgresql")["spec"]["ingress"]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]

    assert any(selector.items() <= pod_labels.items() for selector in selectors)


def test_gateway_pods_use_chart_secret_and_account(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render()
    gateway = find(operator_objects(operator_settings(release, tmp_path)), "Deployment", "sluicegate-gateway")
    pod = gateway["spec"]["template"]["spec"]
    environment = {entry["name"]: entry for entry in pod["containers"][0]["env"]}

    assert pod["serviceAccountName"] == "sluicegate-gateway"
    assert release.find("ServiceAccount", pod["serviceAccountName"]) is not None
    ledger_ref = environment["SLUICEGATE_LEDGER_URL"]["valueFrom"]["secretKeyRef"]
    assert "url" in release.get("Secret", ledger_ref["name"])["data"]
    assert ledger_ref["key"] == "url"


def test_service_monitor_matches_gateway_service(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render({"monitoring": {"serviceMonitor": {"enabled": True}}})
    service = find(operator_objects(operator_settings(release, tmp_path)), "Service", "sluicegate-gateway")
    monitor = release.get("ServiceMonitor", "sluicegate-gateway")

    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in [port["name"] for port in service["spec"]["ports"]]
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]


def test_port_forward_targets_service_port(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render()
    service = find(operator_objects(operator_settings(release, tmp_path)), "Service", "sluicegate-gateway")
    [port] = service["spec"]["ports"]
    forward = f"service/sluicegate-gateway 8080:{port['port']}"

    assert forward in release.notes
    assert forward in (REPOSITORY / "docs" / "install.md").read_text()


def test_gateway_runs_as_image_user(render: Callable[..., Release], tmp_path: Path) -> None:
    release = render()
    gateway = find(operator_objects(operator_settings(release, tmp_path)), "Deployment", "sluicegate-gateway")
    operator_pod = release.get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]

    assert gateway["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == operator_pod["securityContext"]["runAsUser"]


def test_chart_and_operator_share_only_gateway_account(render: Callable[..., Release], tmp_path: Path) -> None:
    # The operator renders the gateway ServiceAccount for installs without Helm; under Helm the
    # chart's copy carries managed-by Helm, and the operator's apply layer leaves such objects alone.
    release = render()
    chart_objects = {(obj["kind"], obj["metadata"]["name"]) for obj in release.objects}
    created_by_operator = {(obj["kind"], obj["metadata"]["name"]) for obj in operator_objects(operator_settings(release, tmp_path))}

    assert chart_objects & created_by_operator == {("ServiceAccount", "sluicegate-gateway")}
    account = release.get("ServiceAccount", "sluicegate-gateway")
    assert account["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
