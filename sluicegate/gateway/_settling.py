"""Settling attempts: turning a reservation into the charge the provider billed.

With provider usage, the charge is the exact cost of that usage. Without it, a paid route
is charged the amount it held (providers bill hidden tokens that the text does not
show) and a $0 route counts the text; either way the row marks the usage as estimated. A
failed call that reported no usage costs 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time

from sluicegate import api, ledger
from sluicegate.gateway import _admission, _metrics
from sluicegate.ledger import Outcome, UsageSource
from sluicegate.routing import _pricing

logger = logging.getLogger(__name__)

# Outcomes where the upstream may have generated tokens that it did not report.
_MAY_HAVE_BILLED = frozenset({Outcome.OK, Outcome.UPSTREAM_TRUNCATED, Outcome.CLIENT_DISCONNECTED})
SETTLE_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Result:
    """The end of one attempt, as far as the ledger needs to know."""

    outcome: Outcome
    usage: _pricing.Usage | None
    output_chars: int = 0
    error: str = ""


def charge(admission: _admission.Admission, result: Result) -> tuple[int, _pricing.Usage, UsageSource]:
    """Return (nano-USD charged, usage recorded, usage source) for an attempt."""
    route = admission.route
    if result.usage is not None:
        return _pricing.cost_nano(route.prices, result.usage), result.usage, UsageSource.PROVIDER
    counted = _pricing.Usage(prompt_tokens=admission.prompt_tokens, completion_tokens=math.ceil(result.output_chars / 4))
    if result.outcome not in _MAY_HAVE_BILLED:
        return 0, _pricing.Usage(), UsageSource.ESTIMATED
    if route.prices.is_free:
        return 0, counted, UsageSource.ESTIMATED
    return admission.reservation.amount_nano, counted, UsageSource.ESTIMATED


def attempt_row(admission: _admission.Admission, result: Result, *, started: float,
                escalated_from: str | None = None) -> ledger.Attempt:
    """Build the ledger row of a finished attempt."""
    charged, usage, source = charge(admission, result)
    plan = admission.plan
    return ledger.Attempt(
        request_id=plan.request_id,
        attempt_id=admission.attempt_id,
        namespace=plan.ns.namespace,
        route=admission.route.name,
        provider=admission.route.provider_name,
        model=admission.route.target.model,
        decision=admission.decision,
        outcome=result.outcome,
        usage_source=source,
        prompt_tokens=usage.prompt_tokens,
        cached_tokens=usage.cached_tokens,
        completion_tokens=usage.completion_tokens,
        estimated_nano=admission.estimate_nano,
        charged_nano=charged,
        escalated_from=escalated_from,
        latency_ms=(time.monotonic() - started) * 1000,
        signals=plan.signals,
        error=result.error[:500],
    )


async def settle(ledger_: ledger.Ledger, metrics: _metrics.Metrics, admission: _admission.Admission,
                 attempt: ledger.Attempt) -> None:
    """Settle the reservation with the row, retrying briefly if the ledger blinks.

    If the ledger stays unreachable, the reservation expires after its TTL and is
    released, so the charge is lost rather than counted twice; that is logged as an error.
    """
    for attempt_number in range(1, SETTLE_ATTEMPTS + 1):
        try:
            await ledger_.settle(admission.reservation, attempt)
            break
        except ledger.ReservationExpired as expired:
            # The hold outlived its TTL, but the ledger charged the call and wrote its row anyway.
            logger.warning("request %s settled after its hold expired: %s", attempt.request_id, expired)
            break
        except ledger.ReservationNotFound as missing:
            if attempt_number > 1:
                # An earlier try committed but its reply was lost; the row is already written.
                break
            logger.error("cannot settle request %s: %s; its charge of %s nano-USD is not in the ledger",
                         attempt.request_id, missing, attempt.charged_nano)
            metrics.ledger_errors.labels("settle").inc()
            return
        except ledger.LedgerUnavailable as error:
            metrics.ledger_errors.labels("settle").inc()
            if attempt_number == SETTLE_ATTEMPTS:
                logger.error("cannot settle request %s in the ledger (%s); its hold of %s nano-USD expires unsettled",
                             attempt.request_id, error, admission.reservation.amount_nano)
                return
            await asyncio.sleep(0.5 * attempt_number)
    metrics.requests.labels(attempt.namespace, attempt.route, attempt.decision.value, attempt.outcome.value).inc()
    if attempt.charged_nano:
        metrics.spend.labels(attempt.namespace, attempt.route).inc(attempt.charged_nano / api.NANO_PER_USD)
