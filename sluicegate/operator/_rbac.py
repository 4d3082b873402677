"""RBAC of the operator: only the verbs and resources it uses, each with its reason.

Rules that touch other namespaces go into a ClusterRole; the gateway fleet, the Ollama
objects and the mirrored Secrets live in the operator's namespace, so their broader verbs
(list, patch, delete) go into a Role there. The Helm chart copies or compares these rules,
and docs/operations.md lists them with the same reasons.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sluicegate.api import API_GROUP
from sluicegate.operator import _names

RawObject = dict[str, Any]
OPERATOR_NAME = "sluicegate-operator"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One RBAC rule and why the operator needs it."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    reason: str
    resource_names: tuple[str, ...] = ()

    def to_raw(self) -> RawObject:
        """Return the rule as a PolicyRule."""
        raw: RawObject = {"apiGroups": list(self.api_groups), "resources": list(self.resources), "verbs": list(self.verbs)}
        if self.resource_names:
            raw["resourceNames"] = list(self.resource_names)
        return raw


CLUSTER_RULES = (
    Rule(("apiextensions.k8s.io",), ("customresourcedefinitions",), ("list", "watch"),
         "kopf discovers the LLMBudget and RoutePolicy resources and notices when their CRDs change"),
    Rule((API_GROUP,), ("llmbudgets", "routepolicies"), ("get", "list", "watch", "patch"),
         "watch every budget and policy; get a budget's latest status; patch kopf's finalizer and progress annotations"),
    Rule((API_GROUP,), ("llmbudgets/status", "routepolicies/status"), ("patch",),
         "write conditions, spend, the budget window and alerted thresholds into status"),
    Rule(("",), ("events",), ("create",),
         "post Events for budget alerts and for handler failures (kopf)"),
    Rule(("",), ("secrets",), ("get",),
         "read the provider Secrets that RoutePolicies reference, and check for an existing API-key Secret"),
    Rule(("",), ("secrets",), ("create",),
         f"create the Secret {_names.API_KEY_SECRET_NAME} with the namespace's API key, once per namespace"),
    Rule(("",), ("secrets",), ("delete",),
         "delete the API-key Secret when its namespace has no budget or policy left",
         resource_names=(_names.API_KEY_SECRET_NAME,)),
)

_FLEET_VERBS = ("get", "list", "create", "patch", "delete")
_FLEET_REASON = (
    "server-side apply (get to compare, patch to apply, create for an object that does not exist yet), "
    "and list and delete to prune objects no longer desired"
)

NAMESPACE_RULES = (
    Rule(("",), ("configmaps", "services", "serviceaccounts", "persistentvolumeclaims", "secrets"), _FLEET_VERBS,
         f"the snapshot ConfigMap, gateway and Ollama Services, gateway ServiceAccount, model volumes and mirrored Secrets: {_FLEET_REASON}"),
    Rule(("apps",), ("deployments",), _FLEET_VERBS, f"the gateway and Ollama Deployments: {_FLEET_REASON}"),
    Rule(("autoscaling",), ("horizontalpodautoscalers",), _FLEET_VERBS, f"the gateway's HorizontalPodAutoscaler: {_FLEET_REASON}"),
    Rule(("policy",), ("poddisruptionbudgets",), _FLEET_VERBS, f"the gateway's PodDisruptionBudget: {_FLEET_REASON}"),
)


def cluster_role_rules() -> list[RawObject]:
    """Return the ClusterRole's rules as PolicyRules."""
    return [rule.to_raw() for rule in CLUSTER_RULES]


def namespace_role_rules() -> list[RawObject]:
    """Return the rules of the Role in the operator's namespace as PolicyRules."""
    return [rule.to_raw() for rule in NAMESPACE_RULES]


def render(*, namespace: str, service_account: str = OPERATOR_NAME) -> list[RawObject]:
    """Return the ClusterRole, ClusterRoleBinding, Role and RoleBinding for the operator's ServiceAccount."""
    labels = {"app.kubernetes.io/name": "sluicegate", "app.kubernetes.io/component": "operator"}
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": OPERATOR_NAME, "labels": labels},
            "rules": cluster_role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_NAME, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_NAME},
            "subjects": [subject],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": OPERATOR_NAME, "namespace": namespace, "labels": labels},
            "rules": namespace_role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": OPERATOR_NAME, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_NAME},
            "subjects": [subject],
        },
    ]
