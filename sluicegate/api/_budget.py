"""The LLMBudget resource: a namespace's spending ceiling for one calendar window.

A namespace may have several budgets (say a daily and a monthly one); a request proceeds
only if every one of them has room.
"""

from __future__ import annotations

import enum
import zoneinfo
from typing import Annotated, Literal

import pydantic

from sluicegate.api import _money
from sluicegate.api._base import Condition, Model, ObjectMeta


class Period(str, enum.Enum):
    """A budget window: the whole lifetime, or a calendar day, week (from Monday) or month."""

    TOTAL = "Total"
    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"


class OnExceeded(str, enum.Enum):
    """The action for a request that does not fit a budget."""

    DOWNGRADE = "Downgrade"
    REJECT = "Reject"


def _check_usd(value: str) -> str:
    _money.parse_usd(value)
    return value


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as \"UTC\" or \"Europe/Berlin\""
        ) from error
    return value


# The pattern only documents the format in JSON schemas (and the CRD); _check_usd validates.
USD_PATTERN = r"^[0-9]+(\.[0-9]{1,6})?$"
USDAmount = Annotated[str, pydantic.AfterValidator(_check_usd), pydantic.WithJsonSchema({"type": "string", "pattern": USD_PATTERN})]
TimeZoneName = Annotated[str, pydantic.AfterValidator(_check_time_zone)]


class Alerts(Model):
    """Alert thresholds and the webhook that receives alerts."""

    thresholds_percent: list[Annotated[int, pydantic.Field(ge=1, le=1000)]] = pydantic.Field(
        default_factory=lambda: [50, 80, 100],
        description="Shares of the ceiling, in percent, that raise an alert once per window.",
    )
    webhook_url: str = pydantic.Field(
        default="",
        description="Optional http(s) URL that receives a JSON POST when a threshold is crossed.",
        json_schema_extra={"pattern": r"^(https?://.+)?$"},
    )

    @pydantic.field_validator("thresholds_percent")
    @classmethod
    def _unique_thresholds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate thresholds in {value}: list each percentage once")
        return sorted(value)

    @pydantic.field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"invalid webhook URL {value!r}: use an http:// or https:// URL, or \"\" for none"
            )
        return value


class LLMBudgetSpec(Model):
    """The desired ceiling of one budget."""

    ceiling_usd: USDAmount = pydantic.Field(
        description='Ceiling in USD as a decimal string with at most 6 decimals; "0" blocks every paid call.'
    )
    period: Period = pydantic.Field(
        default=Period.MONTHLY, description="Window: Total, Daily, Weekly (from Monday) or Monthly."
    )
    time_zone: TimeZoneName = pydantic.Field(
        default="UTC", description="IANA time zone in which windows start at local midnight."
    )
    on_exceeded: OnExceeded = pydantic.Field(
        default=OnExceeded.DOWNGRADE,
        description="Downgrade: send a cloud request local when local fits, else reject. Reject: always reject.",
    )
    alerts: Alerts = pydantic.Field(
        default_factory=Alerts, description="Spend thresholds that raise a Kubernetes Event and an optional webhook call."
    )

    @property
    def ceiling_nano(self) -> int:
        """The ceiling in nano-USD."""
        return _money.parse_usd(self.ceiling_usd)


class Window(Model):
    """The start and end of a budget window, as RFC 3339 timestamps."""

    start: str = pydantic.Field(description="Start of the current window (RFC 3339, UTC).")
    end: str | None = pydantic.Field(default=None, description="End of the current window (RFC 3339, UTC); absent for the Total period.")


class LLMBudgetStatus(Model):
    """Spend, window and conditions, written by the operator from the ledger."""

    spent_usd: str | None = pydantic.Field(default=None, description="USD charged to the namespace in the current window.")
    reserved_usd: str | None = pydantic.Field(default=None, description="USD held for calls in flight in the current window.")
    remaining_usd: str | None = pydantic.Field(
        default=None, description="USD left to reserve in the current window: ceiling minus spent minus reserved, at least 0."
    )
    window: Window | None = pydantic.Field(default=None, description="The budget window these amounts belong to.")
    conditions: list[Condition] = pydantic.Field(
        default_factory=list, description="Ready (published in the config snapshot) and Exhausted (no room left)."
    )
    observed_generation: int | None = pydantic.Field(default=None, description="The metadata.generation this status describes.")
    alerted_thresholds: list[int] = pydantic.Field(
        default_factory=list, description="Thresholds, in percent, already alerted in the current window."
    )


class LLMBudget(Model):
    """An LLMBudget document as written in YAML or stored in Kubernetes."""

    api_version: Literal["sluicegate.io/v1alpha1"] = "sluicegate.io/v1alpha1"
    kind: Literal["LLMBudget"] = "LLMBudget"
    metadata: ObjectMeta
    spec: LLMBudgetSpec
    status: LLMBudgetStatus | None = None
