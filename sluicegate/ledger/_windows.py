"""Calendar windows of budgets: Total, Daily, Weekly (from Monday) and Monthly.

A window is fixed by the ledger's clock at reserve time and begins at local midnight in
the budget's IANA time zone. Spend is counted per (namespace, period, time zone, window
start), not per budget object, so deleting and re-creating a budget never forgives spend.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo

from sluicegate import api

# The Total period has one window that began before any call could.
TOTAL_WINDOW_START = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass(frozen=True, order=True)
class WindowKey:
    """The counter that a call is charged to: one per namespace, period, zone and window start."""

    namespace: str
    period: str
    time_zone: str
    start: datetime.datetime  # aware, UTC

    def __str__(self) -> str:
        return f"{self.namespace}/{self.period}/{self.time_zone}/{self.start.isoformat()}"


def window_bounds(
    period: api.Period | str, time_zone: str, at: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime | None]:
    """Return the UTC start and end of the window that contains ``at``; Total has no end.

    ``at`` must be timezone-aware. Windows start at local midnight, so a Daily window in
    Asia/Shanghai runs from 16:00 UTC to 16:00 UTC.
    """
    if at.tzinfo is None:
        raise ValueError(f"window_bounds needs an aware datetime, got naive {at.isoformat()}")
    period = api.Period(period)
    if period is api.Period.TOTAL:
        return TOTAL_WINDOW_START, None

    zone = zoneinfo.ZoneInfo(time_zone)
    local = at.astimezone(zone)
    day = local.date()
    if period is api.Period.DAILY:
        first = day
        last = day + datetime.timedelta(days=1)
    elif period is api.Period.WEEKLY:
        first = day - datetime.timedelta(days=day.weekday())
        last = first + datetime.timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = (first + datetime.timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(last, zone)


def _local_midnight(day: datetime.date, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    # NOTE: where a DST change skips midnight, zoneinfo resolves it to the first valid instant.
    local = datetime.datetime.combine(day, datetime.time(0), tzinfo=zone)
    return local.astimezone(datetime.timezone.utc)


def window_key(namespace: str, spec: api.LLMBudgetSpec, at: datetime.datetime) -> WindowKey:
    """Return the counter a call made at ``at`` is charged to under this budget."""
    start, _ = window_bounds(spec.period, spec.time_zone, at)
    return WindowKey(namespace=namespace, period=spec.period.value, time_zone=spec.time_zone, start=start)
