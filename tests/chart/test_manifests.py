"""Every documented option renders objects that the Kubernetes API would accept.

Covers:

- each option set of docs/install.md renders with the real Helm engine;
- every object validates strictly (unknown fields are errors) against the oldest
  Kubernetes version the chart supports and a current one;
- every object and pod template carries the standard app.kubernetes.io labels;
- the Helm engine's chart lint reports no warning.

kubernetes-validate bundles no schema for the Prometheus Operator's ServiceMonitor, so
test_security.py checks that kind field by field instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from chart_support import CHART_DIR, NAMESPACE, OPTION_SETS, Release

# The chart's kubeVersion floor, and a current release that kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.28.0", "1.34.0")

# Kinds without a schema in kubernetes-validate.
UNVALIDATED_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

LABEL_KEYS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "helm.sh/chart",
)


@pytest.fixture(params=sorted(OPTION_SETS))
def option_set(request: pytest.FixtureRequest, render: Callable[..., Release]) -> Release:
    return render(OPTION_SETS[request.param])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_valid_for_kubernetes(option_set: Release, version: str) -> None:
    assert {"ClusterRole", "ConfigMap", "Deployment"} <= set(option_set.kinds())
    for obj in option_set.objects:
        if (obj["apiVersion"], obj["kind"]) in UNVALIDATED_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, version, strict=True)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} is invalid for Kubernetes {version} at {path}: {error.message}")


def test_objects_carry_standard_labels(option_set: Release) -> None:
    for obj in option_set.objects:
        labels = obj["metadata"].get("labels", {})
        for key in LABEL_KEYS:
            assert key in labels, f"{obj['kind']}/{obj['metadata']['name']} lacks the label {key}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_pod_templates_carry_standard_labels(option_set: Release) -> None:
    for obj in option_set.objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        labels = obj["spec"]["template"]["metadata"]["labels"]
        selector = obj["spec"]["selector"]["matchLabels"]
        for key in LABEL_KEYS:
            assert key in labels, f"pods of {obj['kind']}/{obj['metadata']['name']} lack the label {key}"
        for key, value in selector.items():
            assert labels.get(key) == value, f"pods of {obj['metadata']['name']} do not match selector {key}={value}"


def test_namespaced_objects_in_release_namespace(option_set: Release) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in option_set.objects:
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("values", [OPTION_SETS["defaults"], OPTION_SETS["external-postgresql"]], ids=["defaults", "external"])
def test_chart_lint_clean(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version="v1.34.0")
    assert report["errors"] == []
    findings = [message for message in report["messages"] if message["severity"] >= 2]
    assert findings == []
    assert report["total_charts_linted"] == 1


def test_chart_lint_reports_bad_values() -> None:
    report = helm_python.lint(CHART_DIR, {"gateway": {"replicas": 0}}, strict=True, namespace=NAMESPACE)
    errors = " ".join([*report["errors"], *(message["error"] for message in report["messages"])])
    assert "/gateway/replicas" in errors
