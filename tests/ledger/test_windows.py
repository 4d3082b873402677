"""Window arithmetic of ``window_bounds`` and ``window_key``, without a database.

Covers: Daily, Weekly (from Monday), Monthly and Total windows in UTC and Asia/Shanghai
at the instants around local midnight, month and year ends, a DST change, and bad input.
"""

from __future__ import annotations

import datetime

import pytest

from sluicegate import api
from sluicegate.ledger import TOTAL_WINDOW_START, WindowKey, window_bounds, window_key


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("period", "time_zone", "instant", "start", "end"),
    [
        ("Daily", "UTC", "2025-03-14T23:59:59.999999+00:00", "2025-03-14T00:00:00+00:00", "2025-03-15T00:00:00+00:00"),
        ("Daily", "UTC", "2025-03-15T00:00:00+00:00", "2025-03-15T00:00:00+00:00", "2025-03-16T00:00:00+00:00"),
        ("Daily", "Asia/Shanghai", "2025-03-14T15:59:59+00:00", "2025-03-13T16:00:00+00:00", "2025-03-14T16:00:00+00:00"),
        ("Daily", "Asia/Shanghai", "2025-03-14T16:00:00+00:00", "2025-03-14T16:00:00+00:00", "2025-03-15T16:00:00+00:00"),
        ("Weekly", "UTC", "2025-03-16T23:59:59+00:00", "2025-03-10T00:00:00+00:00", "2025-03-17T00:00:00+00:00"),
        ("Weekly", "UTC", "2025-03-17T00:00:00+00:00", "2025-03-17T00:00:00+00:00", "2025-03-24T00:00:00+00:00"),
        ("Weekly", "Asia/Shanghai", "2025-03-16T15:59:59+00:00", "2025-03-09T16:00:00+00:00", "2025-03-16T16:00:00+00:00"),
        ("Weekly", "Asia/Shanghai", "2025-03-16T16:00:00+00:00", "2025-03-16T16:00:00+00:00", "2025-03-23T16:00:00+00:00"),
        ("Monthly", "UTC", "2024-02-29T23:59:59+00:00", "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
        ("Monthly", "UTC", "2024-12-31T23:59:59+00:00", "2024-12-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
        ("Monthly", "Asia/Shanghai", "2024-12-31T16:00:00+00:00", "2024-12-31T16:00:00+00:00", "2025-01-31T16:00:00+00:00"),
        # Berlin moves from UTC+1 to UTC+2 on 2025-03-30, so that day lasts 23 hours.
        ("Daily", "Europe/Berlin", "2025-03-30T12:00:00+00:00", "2025-03-29T23:00:00+00:00", "2025-03-30T22:00:00+00:00"),
    ],
)
def test_window_bounds_around_midnight(period: str, time_zone: str, instant: str, start: str, end: str) -> None:
    assert window_bounds(period, time_zone, at(instant)) == (at(start), at(end))


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Shanghai"])
def test_total_window_has_no_end(time_zone: str) -> None:
    assert window_bounds(api.Period.TOTAL, time_zone, at("2031-07-01T00:00:00+00:00")) == (TOTAL_WINDOW_START, None)


def test_window_bounds_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        window_bounds("Daily", "UTC", datetime.datetime(2025, 3, 14))


def test_window_key_names_namespace_and_start() -> None:
    spec = api.LLMBudgetSpec(ceiling_usd="1.00", period=api.Period.DAILY, time_zone="Asia/Shanghai")
    key = window_key("team-a", spec, at("2025-03-14T17:00:00+00:00"))
    assert key == WindowKey("team-a", "Daily", "Asia/Shanghai", at("2025-03-14T16:00:00+00:00"))
    assert str(key) == "team-a/Daily/Asia/Shanghai/2025-03-14T16:00:00+00:00"
