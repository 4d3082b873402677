"""Backend-independent steps of the ledger: window plans, argument checks and reports.

Both backends do the same arithmetic around their SQL: they turn a namespace's budgets
into the window counters a call is charged to, check arguments before touching the
database, build BudgetExceeded from the counters the database returned, and fold
per-quarter-hour spend into report rows. Keeping it here keeps the backends to their SQL.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Iterable, Sequence

from sluicegate import api
from sluicegate.ledger._protocol import (
    Attempt,
    BudgetExceeded,
    BudgetRef,
    BudgetState,
    Decision,
    Outcome,
    ReportRow,
    Reservation,
    ReservationExpired,
    ReservationId,
    ReservationNotFound,
    UsageSource,
)
from sluicegate.ledger._windows import TOTAL_WINDOW_START, WindowKey, window_bounds

# Both databases store amounts and token counts as signed 64-bit integers.
MAX_INT64 = 2**63 - 1

# Reports group attempts into quarter hours before mapping them to windows. Every time
# zone in use today is offset from UTC by a multiple of 15 minutes, so a window never
# starts inside a quarter hour.
REPORT_BUCKET_SECONDS = 900


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """One window counter a call is charged to, with the smallest ceiling of the budgets sharing it."""

    key: WindowKey
    end: datetime.datetime | None
    ceiling_nano: int
    budgets: tuple[BudgetRef, ...]


def new_reservation(*, namespace: str, amount_nano: int, now: datetime.datetime, ttl_seconds: float) -> Reservation:
    """Return a reservation with a fresh id, taken at ``now`` and expiring ``ttl_seconds`` later."""
    return Reservation(
        id=ReservationId(uuid.uuid4().hex),
        namespace=namespace,
        amount_nano=amount_nano,
        reserved_at=now,
        expires_at=now + datetime.timedelta(seconds=ttl_seconds),
    )


def plan_windows(budgets: Sequence[BudgetRef], *, at: datetime.datetime) -> list[WindowPlan]:
    """Return the distinct window counters of ``budgets`` at ``at``, sorted by key.

    Budgets that share a counter (same namespace, period, time zone and window start)
    become one plan checked against the smallest of their ceilings. The sorted order is
    also the order in which backends create counters, so concurrent creators never deadlock.
    """
    grouped: dict[WindowKey, list[BudgetRef]] = {}
    ends: dict[WindowKey, datetime.datetime | None] = {}
    for budget in budgets:
        check_budget(budget)
        start, end = window_bounds(budget.period, budget.time_zone, at)
        key = WindowKey(namespace=budget.namespace, period=api.Period(budget.period).value, time_zone=budget.time_zone, start=start)
        grouped.setdefault(key, []).append(budget)
        ends[key] = end
    return [
        WindowPlan(key=key, end=ends[key], ceiling_nano=min(b.ceiling_nano for b in members), budgets=tuple(members))
        for key, members in sorted(grouped.items())
    ]


def check_budget(budget: BudgetRef) -> None:
    """Raise ValueError for a budget the ledger cannot store."""
    if not budget.namespace:
        raise ValueError(f"budget {budget.name!r} has no namespace: set metadata.namespace")
    if not 0 <= budget.ceiling_nano <= MAX_INT64:
        raise ValueError(
            f"budget {budget.namespace}/{budget.name} has ceiling_nano={budget.ceiling_nano}: "
            f"use a ceiling from 0 to {MAX_INT64} nano-USD"
        )


def check_reserve(*, namespace: str, budgets: Sequence[BudgetRef], amount_nano: int, ttl_seconds: float) -> None:
    """Raise ValueError for reserve arguments that no database call should see."""
    if not namespace:
        raise ValueError("reserve needs a namespace, got ''")
    if not 0 <= amount_nano <= MAX_INT64:
        raise ValueError(f"invalid amount_nano={amount_nano}: reserve a whole number of nano-USD from 0 to {MAX_INT64}")
    check_ttl(ttl_seconds)
    check_same_namespace(namespace, budgets)


def check_ttl(ttl_seconds: float) -> None:
    """Raise ValueError unless ``ttl_seconds`` is a positive number of seconds."""
    if not ttl_seconds > 0:
        raise ValueError(f"invalid ttl_seconds={ttl_seconds!r}: a reservation's TTL must be more than 0 seconds")


def check_attempt(attempt: Attempt, *, namespace: str | None = None) -> None:
    """Raise ValueError for an attempt row that cannot be stored as given."""
    if namespace is not None and attempt.namespace != namespace:
        raise ValueError(
            f"attempt {attempt.attempt_id!r} is for namespace {attempt.namespace!r} but its reservation "
            f"is for {namespace!r}: settle each reservation with an attempt of the same namespace"
        )
    counts = {
        "prompt_tokens": attempt.prompt_tokens,
        "cached_tokens": attempt.cached_tokens,
        "completion_tokens": attempt.completion_tokens,
        "estimated_nano": attempt.estimated_nano,
        "charged_nano": attempt.charged_nano,
    }
    for field, value in counts.items():
        if not 0 <= value <= MAX_INT64:
            raise ValueError(f"invalid attempt {field}={value}: use a whole number from 0 to {MAX_INT64}")


def exceeded(
    *,
    namespace: str,
    amount_nano: int,
    plans: Sequence[WindowPlan],
    counters: Sequence[tuple[int, int]],
) -> BudgetExceeded:
    """Build the error for a reservation that did not fit, listing every budget without room.

    ``counters`` holds ``(spent_nano, reserved_nano)`` per plan, as the database read them
    under its lock.
    """
    lacking = [
        BudgetState(budget=budget, window_start=plan.key.start, window_end=plan.end, spent_nano=spent, reserved_nano=reserved)
        for plan, (spent, reserved) in zip(plans, counters, strict=True)
        for budget in plan.budgets
        if spent + reserved + amount_nano > budget.ceiling_nano
    ]
    return BudgetExceeded(namespace=namespace, amount_nano=amount_nano, lacking=lacking)


def states(plans: Sequence[WindowPlan], counters: Sequence[tuple[int, int]]) -> dict[BudgetRef, BudgetState]:
    """Return each budget's state from its plan's ``(spent_nano, reserved_nano)``."""
    return {
        budget: BudgetState(budget=budget, window_start=plan.key.start, window_end=plan.end, spent_nano=spent, reserved_nano=reserved)
        for plan, (spent, reserved) in zip(plans, counters, strict=True)
        for budget in plan.budgets
    }


@dataclasses.dataclass(frozen=True)
class SpendBucket:
    """Attempts of one namespace, route and model whose windows were fixed within one quarter hour."""

    namespace: str
    route: str
    model: str
    start: datetime.datetime
    calls: int  # attempts that were served or reached an upstream; refusals are not calls
    prompt_tokens: int
    completion_tokens: int
    estimated_nano: int
    charged_nano: int


def build_report(buckets: Iterable[SpendBucket], budgets: Sequence[BudgetRef]) -> list[ReportRow]:
    """Fold quarter-hour spend into one row per namespace, budget window, route and model."""
    by_namespace: dict[str, list[BudgetRef]] = {}
    for budget in budgets:
        by_namespace.setdefault(budget.namespace, []).append(budget)

    totals: dict[tuple[str, str, str, datetime.datetime, datetime.datetime | None, str, str], list[int]] = {}
    for bucket in buckets:
        for name, period, start, end in _windows_of(bucket, by_namespace.get(bucket.namespace, [])):
            key = (bucket.namespace, name, period, start, end, bucket.route, bucket.model)
            sums = totals.setdefault(key, [0, 0, 0, 0, 0])
            sums[0] += bucket.calls
            sums[1] += bucket.prompt_tokens
            sums[2] += bucket.completion_tokens
            sums[3] += bucket.estimated_nano
            sums[4] += bucket.charged_nano

    return [
        ReportRow(
            namespace=namespace,
            budget=name,
            period=period,
            window_start=start,
            window_end=end,
            route=route,
            model=model,
            calls=sums[0],
            prompt_tokens=sums[1],
            completion_tokens=sums[2],
            estimated_nano=sums[3],
            charged_nano=sums[4],
        )
        for (namespace, name, period, start, end, route, model), sums in sorted(totals.items(), key=_report_order)
    ]


def _windows_of(
    bucket: SpendBucket, budgets: Sequence[BudgetRef]
) -> list[tuple[str, str, datetime.datetime, datetime.datetime | None]]:
    if not budgets:
        return [("", api.Period.TOTAL.value, TOTAL_WINDOW_START, None)]
    windows = []
    for budget in budgets:
        start, end = window_bounds(budget.period, budget.time_zone, bucket.start)
        windows.append((budget.name, api.Period(budget.period).value, start, end))
    return windows


def _report_order(
    item: tuple[tuple[str, str, str, datetime.datetime, datetime.datetime | None, str, str], list[int]],
) -> tuple[str, str, datetime.datetime, str, str]:
    namespace, name, _, start, _, route, model = item[0]
    return namespace, name, start, route, model


_ATTEMPT_FIELDS = dataclasses.fields(Attempt)


def attempt_document(attempt: Attempt) -> dict[str, object]:
    """Return an attempt's fields as JSON-ready values, enums as their strings."""
    # Not dataclasses.asdict, which deep-copies every field; this runs on every settle.
    document = {field.name: getattr(attempt, field.name) for field in _ATTEMPT_FIELDS}
    document["decision"] = attempt.decision.value
    document["outcome"] = attempt.outcome.value
    document["usage_source"] = attempt.usage_source.value
    document["signals"] = list(attempt.signals)
    return document


def attempt_from_fields(fields: dict[str, object]) -> Attempt:
    """Rebuild an Attempt from stored columns named like its fields (signals as a list)."""
    known = {field.name for field in dataclasses.fields(Attempt)}
    values = {name: value for name, value in fields.items() if name in known}
    values["decision"] = Decision(values["decision"])
    values["outcome"] = Outcome(values["outcome"])
    values["usage_source"] = UsageSource(values["usage_source"])
    values["signals"] = tuple(values["signals"])  # type: ignore[arg-type]
    return Attempt(**values)  # type: ignore[arg-type]


def finish_error(result: str, *, reservation_id: str, action: str, recorded: bool) -> ReservationNotFound | None:
    """Return the error for a settle or release that did not finish a live hold, or None.

    ``result`` is the backend's verdict: "ok", "expired", "missing" or "finished".
    """
    if result == "ok":
        return None
    if result == "expired":
        consequence = "its charge and attempt row were recorded anyway" if recorded else "its hold was already given back"
        return ReservationExpired(
            f"cannot {action} reservation {reservation_id!r}: its TTL had passed, so {consequence}; "
            "renew long calls before the TTL ends",
            reservation_id=reservation_id,
            recorded=recorded,
        )
    if result == "finished":
        return ReservationNotFound(
            f"cannot {action} reservation {reservation_id!r}: it was already settled or released; finish each reservation once"
        )
    return ReservationNotFound(f"cannot {action} reservation {reservation_id!r}: no such reservation in this ledger")


def check_same_namespace(namespace: str, budgets: Sequence[BudgetRef]) -> None:
    """Raise ValueError if a budget belongs to another namespace."""
    for budget in budgets:
        if budget.namespace != namespace:
            raise ValueError(
                f"budget {budget.namespace}/{budget.name} belongs to namespace {budget.namespace!r}, "
                f"not {namespace!r}: pass only the budgets of the attempt's namespace"
            )


def budget_from_fields(fields: dict[str, object]) -> BudgetRef:
    """Rebuild a BudgetRef from a stored budgets row."""
    return BudgetRef(
        namespace=str(fields["namespace"]),
        name=str(fields["name"]),
        ceiling_nano=int(fields["ceiling_nano"]),  # type: ignore[call-overload]
        period=api.Period(fields["period"]),
        time_zone=str(fields["time_zone"]),
        on_exceeded=api.OnExceeded(fields["on_exceeded"]),
    )
