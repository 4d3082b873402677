"""The operator's RBAC: what it may do, where, and nothing more.

Covers:

- the ClusterRole and the namespaced Role are bound to the operator's ServiceAccount only;
- no wildcard and no privilege-granting verb appears;
- the verbs the operator needs on each resource;
- the gateway ServiceAccount gets no permissions;
- the chart's rules grant exactly what sluicegate/operator/_rbac.py declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chart_support import NAMESPACE, Release

from sluicegate.operator import _rbac

MANAGE = {"get", "list", "create", "patch", "delete"}

# (API group, resource, resource name or "" for all): verbs.
Grants = dict[tuple[str, str, str], set[str]]


def grants(rules: list[dict[str, Any]]) -> Grants:
    """Flatten rules into {(API group, resource, resource name): verbs}."""
    flat: Grants = {}
    for rule in rules:
        assert "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for name in rule.get("resourceNames", [""]):
                    flat.setdefault((group, resource, name), set()).update(rule["verbs"])
    return flat


@pytest.fixture
def release(render: Callable[..., Release]) -> Release:
    return render()


def test_roles_bound_to_operator_only(release: Release) -> None:
    subject = {"kind": "ServiceAccount", "name": "sluicegate-operator", "namespace": NAMESPACE}
    cluster_binding = release.get("ClusterRoleBinding", "sluicegate-operator")
    binding = release.get("RoleBinding", "sluicegate-operator")

    assert cluster_binding["subjects"] == [subject]
    assert cluster_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sluicegate-operator"}
    assert binding["subjects"] == [subject]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sluicegate-operator"}
    assert len(release.of_kind("ClusterRoleBinding")) == 1
    assert len(release.of_kind("RoleBinding")) == 1


def test_gateway_has_no_permissions(release: Release) -> None:
    for binding in release.of_kind("ClusterRoleBinding") + release.of_kind("RoleBinding"):
        assert all(subject["name"] != "sluicegate-gateway" for subject in binding["subjects"])


def test_no_wildcards_or_escalation(release: Release) -> None:
    forbidden_verbs = {"*", "escalate", "bind", "impersonate"}
    for role in release.of_kind("ClusterRole") + release.of_kind("Role"):
        for rule in role["rules"]:
            assert "*" not in rule["apiGroups"], rule
            assert "*" not in rule["resources"], rule
            assert not forbidden_verbs & set(rule["verbs"]), rule
            assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings"} & set(rule["resources"]), rule


def test_cluster_role_verbs(release: Release) -> None:
    flat = grants(release.get("ClusterRole", "sluicegate-operator")["rules"])

    assert flat[("sluicegate.io", "llmbudgets", "")] == {"get", "list", "watch", "patch"}
    assert flat[("sluicegate.io", "routepolicies", "")] == {"get", "list", "watch", "patch"}
    assert flat[("sluicegate.io", "llmbudgets/status", "")] == {"patch"}
    assert flat[("sluicegate.io", "routepolicies/status", "")] == {"patch"}
    assert flat[("", "events", "")] == {"create"}
    assert flat[("", "secrets", "")] == {"get", "create"}, "no cluster-wide list, watch or patch of Secrets"
    assert flat[("", "secrets", "sluicegate-api-key")] == {"delete"}, "delete only the API key Secrets"
    assert not {"apps", "autoscaling", "policy"} & {group for group, _, _ in flat}, "workloads only in its own namespace"


def test_namespaced_role_verbs(release: Release) -> None:
    role = release.get("Role", "sluicegate-operator")
    flat = grants(role["rules"])

    assert role["metadata"]["namespace"] == NAMESPACE
    assert flat[("apps", "deployments", "")] == MANAGE
    assert flat[("", "services", "")] == MANAGE
    assert flat[("", "configmaps", "")] == MANAGE
    assert flat[("", "secrets", "")] == MANAGE, "mirrored Secrets live in the operator's namespace"
    assert flat[("autoscaling", "horizontalpodautoscalers", "")] == MANAGE
    assert flat[("policy", "poddisruptionbudgets", "")] == MANAGE


def test_cluster_rules_match_operator(release: Release) -> None:
    chart_rules = release.get("ClusterRole", "sluicegate-operator")["rules"]

    assert grants(chart_rules) == grants(_rbac.cluster_role_rules())


def test_namespace_rules_match_operator(release: Release) -> None:
    chart_rules = release.get("Role", "sluicegate-operator")["rules"]

    assert grants(chart_rules) == grants(_rbac.namespace_role_rules())
