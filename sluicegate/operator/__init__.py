"""The kopf operator: LLMBudget and RoutePolicy in, the gateway fleet and its config snapshot out.

Pure modules render (``_snapshot``, ``_rendering``, ``_ollama``, ``_rbac``); ``_applying`` and
``_kubernetes`` are the only ones that talk to the API server; ``_handlers`` wires them into
kopf. This package's import does not import kopf, so ``sluicegate operator render`` works
without a cluster.
"""

import typing

from sluicegate.operator._rbac import cluster_role_rules, namespace_role_rules
from sluicegate.operator._settings import FleetConfig, OperatorSettings, SettingsError, build_settings, load_fleet_config
from sluicegate.operator._snapshot import Resources, Snapshot, build


def rbac_rules() -> dict[str, list[dict[str, typing.Any]]]:
    """Return the operator's RBAC rules: ``cluster`` for its ClusterRole, ``namespace`` for its Role."""
    return {"cluster": cluster_role_rules(), "namespace": namespace_role_rules()}


__all__ = [
    "FleetConfig",
    "OperatorSettings",
    "Resources",
    "SettingsError",
    "Snapshot",
    "build",
    "build_settings",
    "cluster_role_rules",
    "load_fleet_config",
    "namespace_role_rules",
    "rbac_rules",
]
