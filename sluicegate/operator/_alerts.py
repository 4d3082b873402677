"""Budget alerts: which thresholds a budget crossed, the Event, and the webhook POST.

A threshold is crossed when ``spent * 100 >= threshold * ceiling`` within the current
window; each threshold alerts once per window (the budget's status remembers which did).
A zero ceiling blocks every paid call on purpose, so it never alerts.

The webhook receives a JSON POST with ``namespace``, ``budget``, ``period``, ``window``
(``start``, ``end``), ``thresholdPercent``, ``spentUSD``, ``ceilingUSD`` and ``at``. Webhook
URLs often carry a token (Slack and Teams hooks do), so messages name only the scheme and
host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import urllib.parse
from collections.abc import Iterable
from typing import Any

import httpx

from sluicegate import api
from sluicegate.operator import _status

RawObject = dict[str, Any]

THRESHOLD_REASON = "BudgetThresholdCrossed"
WEBHOOK_FAILED_REASON = "AlertWebhookFailed"
# Attempts per alert, with 1 s and 2 s pauses between them: a short receiver outage is
# bridged, and a dead receiver delays the status update by at most about a minute.
WEBHOOK_ATTEMPTS = 3


class WebhookError(Exception):
    """The alert webhook did not accept the POST; the message never contains the URL's path."""


@dataclasses.dataclass(frozen=True)
class Alert:
    """One threshold crossing of one budget in one window."""

    namespace: str
    budget: str
    period: str
    window_start: str
    window_end: str | None
    threshold_percent: int
    spent_nano: int
    ceiling_nano: int
    at: str

    def payload(self) -> RawObject:
        """Return the webhook's JSON body."""
        return {
            "namespace": self.namespace,
            "budget": self.budget,
            "period": self.period,
            "window": {"start": self.window_start, "end": self.window_end},
            "thresholdPercent": self.threshold_percent,
            "spentUSD": api.format_usd(self.spent_nano),
            "ceilingUSD": api.format_usd(self.ceiling_nano),
            "at": self.at,
        }

    def message(self) -> str:
        """Return the Event's message."""
        return (
            f"LLMBudget {self.namespace}/{self.budget} crossed {self.threshold_percent}% of its {self.period} ceiling: "
            f"spent ${api.format_usd(self.spent_nano)} of ${api.format_usd(self.ceiling_nano)} "
            f"in the window starting {self.window_start}"
        )


def crossed(*, thresholds: Iterable[int], already: Iterable[int], spent_nano: int, ceiling_nano: int) -> list[int]:
    """Return the thresholds, in percent, that spend has reached and that have not alerted yet."""
    if ceiling_nano <= 0:
        return []
    done = set(already)
    return [threshold for threshold in sorted(set(thresholds)) if threshold not in done and spent_nano * 100 >= threshold * ceiling_nano]


def event(alert: Alert, *, budget_uid: str | None, now: datetime.datetime) -> RawObject:
    """Return the core/v1 Event that records ``alert`` on the LLMBudget."""
    timestamp = _status.now_rfc3339(now)
    involved: RawObject = {
        "apiVersion": api.API_GROUP_VERSION,
        "kind": "LLMBudget",
        "namespace": alert.namespace,
        "name": alert.budget,
    }
    if budget_uid:
        involved["uid"] = budget_uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{alert.budget}.", "namespace": alert.namespace},
        "involvedObject": involved,
        "type": "Warning" if alert.threshold_percent >= 100 else "Normal",
        "reason": THRESHOLD_REASON,
        "message": alert.message(),
        "source": {"component": "sluicegate-operator"},
        "reportingComponent": "sluicegate.io/operator",
        "reportingInstance": "sluicegate-operator",
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }


def webhook_failed_event(alert: Alert, *, error: WebhookError, budget_uid: str | None, now: datetime.datetime) -> RawObject:
    """Return a Warning Event saying the webhook for ``alert`` failed."""
    failed = event(alert, budget_uid=budget_uid, now=now)
    failed["type"] = "Warning"
    failed["reason"] = WEBHOOK_FAILED_REASON
    failed["message"] = f"alert webhook for the {alert.threshold_percent}% threshold failed: {error}"
    return failed


def redact_url(url: str) -> str:
    """Return only the scheme and host of ``url``, because paths and queries often hold tokens."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


async def post_webhook(
    url: str,
    payload: RawObject,
    *,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,  # tests pass a MockTransport
    pause_seconds: float = 1.0,
) -> None:
    """POST ``payload`` as JSON, retrying 5xx, 429 and connection errors; raise WebhookError."""
    shown = redact_url(url)
    last_error = ""
    async with httpx.AsyncClient(timeout=timeout_seconds, transport=transport) as client:
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                response = await client.post(url, json=payload)
            except httpx.HTTPError as error:
                last_error = f"{type(error).__name__}"
            else:
                if response.is_success:
                    return
                last_error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(pause_seconds * attempt)
    raise WebhookError(f"POST to {shown} failed: {last_error}; check that the receiver accepts JSON POSTs")
