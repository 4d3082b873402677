"""An LLMBudget's status from the ledger: spend, window, Exhausted, and threshold alerts.

Run on a timer per budget. Each run reads the current window from the ledger and alerts
each threshold that spend crossed and that the status does not list yet for this window.
Events and the webhook go out before the status records them, so a crash in between
repeats an alert instead of losing it. Then it writes the amounts, the window, the alerted
thresholds and the Exhausted condition. The Ready condition belongs to the fleet
reconciliation, so the status write merges conditions under the same lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from sluicegate import api, ledger
from sluicegate.operator import _alerts, _snapshot, _status
from sluicegate.operator._kubernetes import KubernetesApi, NotFound
from sluicegate.operator._settings import OperatorSettings

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class BudgetReading:
    """The result of one sync: the ledger state, the thresholds it alerted and the status written."""

    state: ledger.BudgetState
    alerted: tuple[int, ...]
    status: RawObject


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else _status.now_rfc3339(moment)


class BudgetStatusSync:
    """Keeps LLMBudget statuses current from the ledger."""

    def __init__(
        self,
        *,
        api: KubernetesApi,
        ledger: ledger.Ledger,
        settings: OperatorSettings,
        lock: asyncio.Lock,
        webhook_transport: httpx.AsyncBaseTransport | None = None,  # tests pass a MockTransport
        webhook_pause_seconds: float = 1.0,  # tests pass 0 to skip the pauses between attempts
    ) -> None:
        self._api = api
        self._ledger = ledger
        self._settings = settings
        self._lock = lock
        self._webhook_transport = webhook_transport
        self._webhook_pause_seconds = webhook_pause_seconds

    async def sync(self, raw_budget: Mapping[str, Any]) -> BudgetReading | None:
        """Update one budget's status; return None for an invalid budget, which has no spend to show.

        Raises LedgerError or KubernetesError for the caller to retry.
        """
        ref = _snapshot.ref_of(raw_budget)
        try:
            budget = api.parse_document({**{k: raw_budget[k] for k in ("apiVersion", "kind", "spec") if k in raw_budget},
                                         "metadata": {"name": ref.name, "namespace": ref.namespace}}, label=f"LLMBudget {ref}")
        except api.ConfigError:
            return None
        if not isinstance(budget, api.LLMBudget):
            return None

        # The window and its spend come from the ledger's clock, like the gateway's reservations.
        (state,) = await self._ledger.budget_states([ledger.BudgetRef.from_budget(budget)])
        now = await self._ledger.now()
        window_start = _iso(state.window_start) or ""

        # The alerted thresholds are read fresh: the body kopf passes may predate the last write.
        live = await self._api.get(api_version=api.API_GROUP_VERSION, kind="LLMBudget", namespace=ref.namespace, name=ref.name)
        if live is None:
            return None
        previous = live.get("status") or {}
        previous_window = (previous.get("window") or {}).get("start")
        already = list(previous.get("alertedThresholds") or []) if previous_window == window_start else []

        new = _alerts.crossed(
            thresholds=budget.spec.alerts.thresholds_percent,
            already=already,
            spent_nano=state.spent_nano,
            ceiling_nano=state.budget.ceiling_nano,
        )
        for threshold in new:
            alert = _alerts.Alert(
                namespace=ref.namespace, budget=ref.name, period=budget.spec.period.value,
                window_start=window_start, window_end=_iso(state.window_end), threshold_percent=threshold,
                spent_nano=state.spent_nano, ceiling_nano=state.budget.ceiling_nano, at=_status.now_rfc3339(now),
            )
            await self._send(alert, budget=budget, uid=_uid(raw_budget), now=now)

        status = await self._write_status(ref, state=state, alerted=sorted({*already, *new}), generation=_generation(raw_budget))
        return BudgetReading(state=state, alerted=tuple(new), status=status)

    async def _send(self, alert: _alerts.Alert, *, budget: api.LLMBudget, uid: str | None, now: datetime.datetime) -> None:
        logger.info("LLMBudget %s/%s crossed %s%%", alert.namespace, alert.budget, alert.threshold_percent)
        await self._api.create(_alerts.event(alert, budget_uid=uid, now=now))
        url = budget.spec.alerts.webhook_url
        if not url:
            return
        try:
            await _alerts.post_webhook(
                url,
                alert.payload(),
                timeout_seconds=self._settings.webhook_timeout_seconds,
                transport=self._webhook_transport,
                pause_seconds=self._webhook_pause_seconds,
            )
        except _alerts.WebhookError as error:
            # The Event above already records the crossing; the failure gets its own Event.
            logger.error("alert webhook of LLMBudget %s/%s failed: %s", alert.namespace, alert.budget, error)
            await self._api.create(_alerts.webhook_failed_event(alert, error=error, budget_uid=uid, now=now))

    async def _write_status(
        self, ref: _snapshot.ObjectRef, *, state: ledger.BudgetState, alerted: list[int], generation: int | None
    ) -> RawObject:
        exhausted = state.remaining_nano == 0
        if exhausted:
            message = (
                f"no room left in the current window: spent ${api.format_usd(state.spent_nano)} and reserved "
                f"${api.format_usd(state.reserved_nano)} of ${api.format_usd(state.budget.ceiling_nano)}"
            )
        else:
            message = f"${api.format_usd(state.remaining_nano)} of ${api.format_usd(state.budget.ceiling_nano)} left in the current window"
        condition = _status.condition(
            type=_status.EXHAUSTED, status=exhausted,
            reason=_status.CEILING_REACHED if exhausted else _status.WITHIN_CEILING, message=message, generation=generation,
        )
        desired: RawObject = {
            "spentUSD": api.format_usd(state.spent_nano),
            "reservedUSD": api.format_usd(state.reserved_nano),
            "remainingUSD": api.format_usd(state.remaining_nano),
            "window": {"start": _iso(state.window_start), "end": _iso(state.window_end)},
            "alertedThresholds": alerted,
        }

        # Read-merge-write under the lock that the fleet reconciliation holds while writing Ready.
        async with self._lock:
            live = await self._api.get(api_version=api.API_GROUP_VERSION, kind="LLMBudget", namespace=ref.namespace, name=ref.name)
            if live is None:
                return desired
            live_status = live.get("status") or {}
            desired["conditions"] = _status.merge(live_status.get("conditions"), [condition], now=_status.now_rfc3339())
            if _status.differs(live_status, desired):
                try:
                    await self._api.patch_status(
                        api_version=api.API_GROUP_VERSION, kind="LLMBudget", namespace=ref.namespace, name=ref.name, status=desired
                    )
                except NotFound:
                    logger.debug("LLMBudget %s was deleted before its status was written", ref)
        return desired


def _uid(raw: Mapping[str, Any]) -> str | None:
    uid = (raw.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _generation(raw: Mapping[str, Any]) -> int | None:
    generation = (raw.get("metadata") or {}).get("generation")
    return generation if isinstance(generation, int) else None

