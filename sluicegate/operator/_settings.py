"""Operator settings: one typed object, built once at start from flags, environment and a file.

Flags win over environment variables, which win over defaults. The gateway fleet's shape
(image, replicas, autoscaling, resources) comes from a YAML file, ``--fleet-config``, that
the Helm chart mounts from a ConfigMap, so chart values reach the operator unchanged. This
module is the only place that reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Literal

import pydantic
import yaml
from pydantic.alias_generators import to_camel

from sluicegate.api import _loading

DEFAULT_OPERATOR_NAMESPACE = "sluicegate-system"
DEFAULT_POLICY_NAMESPACE = "sluicegate-system"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SettingsError(ValueError):
    """A flag, environment variable or fleet config value that cannot be used."""


class _FleetModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Autoscaling(_FleetModel):
    """The gateway's HorizontalPodAutoscaler (autoscaling/v2, on CPU utilisation)."""

    enabled: bool = True
    min_replicas: int = pydantic.Field(default=2, ge=1)
    max_replicas: int = pydantic.Field(default=10, ge=1)
    target_cpu_utilization_percentage: int = pydantic.Field(default=70, ge=1, le=100, alias="targetCPUUtilizationPercentage")

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas {self.max_replicas} is below minReplicas {self.min_replicas}: raise maxReplicas"
            )
        return self


class PodDisruptionBudgetSettings(_FleetModel):
    """The gateway's PodDisruptionBudget: how many pods stay up through node drains."""

    enabled: bool = True
    min_available: int = pydantic.Field(default=1, ge=0)


class Resources(_FleetModel):
    """Container requests and limits, as Kubernetes quantities keyed by resource name."""

    requests: dict[str, str] = pydantic.Field(default_factory=lambda: {"cpu": "250m", "memory": "256Mi"})
    limits: dict[str, str] = pydantic.Field(default_factory=lambda: {"memory": "512Mi"})


class SecretRef(_FleetModel):
    """A key of a Secret in the operator's namespace."""

    name: str = pydantic.Field(min_length=1)
    key: str = pydantic.Field(min_length=1)


class GatewayFleet(_FleetModel):
    """The gateway Deployment and what goes with it (Service, HPA, PDB, ServiceAccount)."""

    image: str = pydantic.Field(default="ghcr.io/sluicegate/sluicegate:0.1.0", min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # Used only when autoscaling is disabled; otherwise the HPA owns the replica count.
    replicas: int = pydantic.Field(default=2, ge=0)
    autoscaling: Autoscaling = pydantic.Field(default_factory=Autoscaling)
    pod_disruption_budget: PodDisruptionBudgetSettings = pydantic.Field(default_factory=PodDisruptionBudgetSettings)
    resources: Resources = pydantic.Field(default_factory=Resources)
    port: int = pydantic.Field(default=8080, ge=1024, le=65535)
    ledger_secret_ref: SecretRef = pydantic.Field(default_factory=lambda: SecretRef(name="sluicegate-ledger", key="url"))
    service_account_name: str = pydantic.Field(default="sluicegate-gateway", min_length=1)


class OllamaFleet(_FleetModel):
    """The Ollama Deployments that serve local models without an endpoint."""

    image: str = pydantic.Field(default="ollama/ollama:0.12.6", min_length=1)


class FleetConfig(_FleetModel):
    """The fleet config file: ``gateway`` and ``ollama`` sections, every field optional."""

    gateway: GatewayFleet = pydantic.Field(default_factory=GatewayFleet)
    ollama: OllamaFleet = pydantic.Field(default_factory=OllamaFleet)


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator is configured with; built by ``build_settings``."""

    # The operator's namespace: the gateway fleet, Ollama and mirrored Secrets live here.
    namespace: str = DEFAULT_OPERATOR_NAMESPACE
    # Where the fallback RoutePolicy named "default" lives.
    default_policy_namespace: str = DEFAULT_POLICY_NAMESPACE
    # The shared ledger; required by `operator run`, unused by `operator render`.
    ledger_url: str | None = None
    fleet: FleetConfig = dataclasses.field(default_factory=FleetConfig)
    # Seconds between full reconciliations, which also pick up rotated provider Secrets.
    # 60 s keeps API traffic low while a rotated key reaches the gateway within a minute or two.
    resync_seconds: float = 60.0
    # Seconds between reads of each LLMBudget's spend from the ledger into its status.
    status_interval_seconds: float = 30.0
    # Seconds to wait for an alert webhook; a slow receiver must not stall status updates.
    webhook_timeout_seconds: float = 10.0
    # kopf's liveness endpoint, e.g. http://0.0.0.0:8081/healthz; None turns it off.
    liveness_endpoint: str | None = None


def load_fleet_config(path: str | pathlib.Path) -> FleetConfig:
    """Read and validate a fleet config file; raise SettingsError naming the file, field and value."""
    file = pathlib.Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(f"cannot read the fleet config {file}: {error.strerror}; check --fleet-config") from error
    except yaml.YAMLError as error:
        raise SettingsError(f"{file}: invalid YAML: {error}") from error
    if raw is None:
        return FleetConfig()
    try:
        return FleetConfig.model_validate(raw)
    except pydantic.ValidationError as error:
        detail = _loading.describe_validation_error(error, raw)
        raise SettingsError(f"{file}: invalid fleet config: {detail}") from None


def build_settings(
    *,
    namespace: str | None = None,
    default_policy_namespace: str | None = None,
    ledger_url: str | None = None,
    fleet_config: str | None = None,
    resync_seconds: float | None = None,
    status_interval_seconds: float | None = None,
    liveness_endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,  # None reads os.environ; tests pass a dict
) -> OperatorSettings:
    """Build the settings from flags (the keyword arguments) with environment fallbacks.

    Environment variables: SLUICEGATE_OPERATOR_NAMESPACE, SLUICEGATE_DEFAULT_POLICY_NAMESPACE,
    SLUICEGATE_LEDGER_URL, SLUICEGATE_FLEET_CONFIG, SLUICEGATE_RESYNC_SECONDS,
    SLUICEGATE_STATUS_INTERVAL_SECONDS and SLUICEGATE_OPERATOR_LIVENESS.
    """
    env = os.environ if environ is None else environ
    operator_namespace = namespace or env.get("SLUICEGATE_OPERATOR_NAMESPACE") or DEFAULT_OPERATOR_NAMESPACE
    policy_namespace = (
        default_policy_namespace or env.get("SLUICEGATE_DEFAULT_POLICY_NAMESPACE") or DEFAULT_POLICY_NAMESPACE
    )
    _check_namespace(operator_namespace, source="--namespace / SLUICEGATE_OPERATOR_NAMESPACE")
    _check_namespace(policy_namespace, source="--default-policy-namespace / SLUICEGATE_DEFAULT_POLICY_NAMESPACE")

    fleet_path = fleet_config or env.get("SLUICEGATE_FLEET_CONFIG")
    fleet = load_fleet_config(fleet_path) if fleet_path else FleetConfig()
    return OperatorSettings(
        namespace=operator_namespace,
        default_policy_namespace=policy_namespace,
        ledger_url=ledger_url or env.get("SLUICEGATE_LEDGER_URL") or None,
        fleet=fleet,
        resync_seconds=_seconds(resync_seconds, env.get("SLUICEGATE_RESYNC_SECONDS"), default=60.0, name="resync"),
        status_interval_seconds=_seconds(
            status_interval_seconds, env.get("SLUICEGATE_STATUS_INTERVAL_SECONDS"), default=30.0, name="status interval"
        ),
        liveness_endpoint=liveness_endpoint or env.get("SLUICEGATE_OPERATOR_LIVENESS") or None,
    )


def _check_namespace(value: str, *, source: str) -> None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise SettingsError(
            f"invalid namespace {value!r} from {source}: use lower-case letters, digits and '-' (at most 63 characters)"
        )


def _seconds(flag: float | None, env_value: str | None, *, default: float, name: str) -> float:
    if flag is not None:
        value = flag
    elif env_value:
        try:
            value = float(env_value)
        except ValueError:
            raise SettingsError(f"invalid {name} {env_value!r}: write a number of seconds such as 60") from None
    else:
        value = default
    if not 1 <= value <= 86400:
        raise SettingsError(f"invalid {name} {value!r} seconds: use a value from 1 to 86400")
    return value
