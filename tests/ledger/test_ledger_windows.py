"""Budget windows as the ledger applies them, on a fake clock, on both backends.

Covers: the instants just before and after midnight in UTC and in Asia/Shanghai for
Daily, Weekly (from Monday), Monthly and Total budgets; a new window starting at 0
while the old one keeps its spend; a settle after midnight charging the window of its
reservation; re-creating a budget keeping its namespace's spend; rows never deleted.
"""

from __future__ import annotations

import pytest

from sluicegate import api, ledger
from .conftest import FakeClock, attempt, budget, query

usd = api.parse_usd

# (period, time zone, last instant of a window, first instant of the next), all in UTC.
BOUNDARIES = [
    ("Daily", "UTC", "2025-03-14T23:59:59.999999+00:00", "2025-03-15T00:00:00+00:00"),
    ("Daily", "Asia/Shanghai", "2025-03-14T15:59:59.999999+00:00", "2025-03-14T16:00:00+00:00"),
    # 2025-03-16 is a Sunday; weeks start on Monday.
    ("Weekly", "UTC", "2025-03-16T23:59:59.999999+00:00", "2025-03-17T00:00:00+00:00"),
    ("Weekly", "Asia/Shanghai", "2025-03-16T15:59:59.999999+00:00", "2025-03-16T16:00:00+00:00"),
    ("Monthly", "UTC", "2025-02-28T23:59:59.999999+00:00", "2025-03-01T00:00:00+00:00"),
    ("Monthly", "Asia/Shanghai", "2025-02-28T15:59:59.999999+00:00", "2025-02-28T16:00:00+00:00"),
]


async def _spend(target: ledger.Ledger, budgets: list[ledger.BudgetRef], amount: int) -> None:
    held = await target.reserve(namespace="team-a", budgets=budgets, amount_nano=amount, ttl_seconds=60)
    await target.settle(held, attempt(charged_nano=amount))


@pytest.mark.parametrize(("period", "time_zone", "before", "after"), BOUNDARIES)
async def test_new_window_starts_at_midnight(
    ledger_db: ledger.Ledger, clock: FakeClock, period: str, time_zone: str, before: str, after: str
) -> None:
    subject = budget(period=period, time_zone=time_zone, ceiling_usd="1.00")
    clock.set(before)
    await _spend(ledger_db, [subject], usd("0.70"))
    [old] = await ledger_db.budget_states([subject])

    clock.set(after)
    [new] = await ledger_db.budget_states([subject])
    await _spend(ledger_db, [subject], usd("0.90"))  # fits only because the window is new
    [new_after] = await ledger_db.budget_states([subject])

    assert old.spent_nano == usd("0.70")
    assert old.window_end == new.window_start
    assert new.window_start.isoformat() == after
    assert (new.spent_nano, new.reserved_nano) == (0, 0)
    assert new_after.spent_nano == usd("0.90")
    clock.set(before)
    [old_again] = await ledger_db.budget_states([subject])
    assert old_again.spent_nano == usd("0.70")


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Shanghai"])
async def test_total_window_never_resets(ledger_db: ledger.Ledger, clock: FakeClock, time_zone: str) -> None:
    total = budget(period="Total", time_zone=time_zone, ceiling_usd="1.00")
    clock.set("2025-12-31T23:59:59.999999+00:00")
    await _spend(ledger_db, [total], usd("0.60"))
    clock.set("2026-01-01T00:00:00+00:00")
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[total], amount_nano=usd("0.50"), ttl_seconds=60)
    [state] = await ledger_db.budget_states([total])
    assert state.spent_nano == usd("0.60")
    assert state.window_start == ledger.TOTAL_WINDOW_START
    assert state.window_end is None


async def test_settle_after_midnight_charges_reserved_window(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    daily = budget("daily", period="Daily", time_zone="Asia/Shanghai", ceiling_usd="1.00")
    clock.set("2025-03-14T15:59:59+00:00")  # 23:59:59 in Shanghai
    held = await ledger_db.reserve(namespace="team-a", budgets=[daily], amount_nano=usd("0.50"), ttl_seconds=120)
    clock.set("2025-03-14T16:00:30+00:00")  # 00:00:30 the next day

    await ledger_db.settle(held, attempt(charged_nano=usd("0.40")))

    [today] = await ledger_db.budget_states([daily])
    assert (today.spent_nano, today.reserved_nano) == (0, 0)
    clock.set("2025-03-14T15:59:59+00:00")
    [yesterday] = await ledger_db.budget_states([daily])
    assert (yesterday.spent_nano, yesterday.reserved_nano) == (usd("0.40"), 0)


async def test_hold_from_yesterday_expires_after_midnight(ledger_db: ledger.Ledger, ledger_url: str, clock: FakeClock) -> None:
    daily = budget("daily", period="Daily", ceiling_usd="1.00")
    clock.set("2025-03-14T23:59:00+00:00")
    await ledger_db.reserve(namespace="team-a", budgets=[daily], amount_nano=usd("0.50"), ttl_seconds=120)
    clock.set("2025-03-15T00:05:00+00:00")
    await ledger_db.reserve(namespace="team-a", budgets=[daily], amount_nano=usd("0.10"), ttl_seconds=120)

    rows = await query(ledger_url, "SELECT spent_nano, reserved_nano FROM sluicegate_windows ORDER BY window_start")
    assert rows == [(0, 0), (0, usd("0.10"))]


async def test_recreated_budget_keeps_window_spend(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    original = budget("monthly", ceiling_usd="1.00")
    await ledger_db.sync_budgets([original])
    await _spend(ledger_db, [original], usd("0.80"))

    # The budget is deleted and re-created, under another name and ceiling.
    recreated = budget("monthly-v2", ceiling_usd="1.50")
    await ledger_db.sync_budgets([recreated])
    [state] = await ledger_db.budget_states([recreated])
    assert state.spent_nano == usd("0.80")
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[recreated], amount_nano=usd("0.80"), ttl_seconds=60)
    await _spend(ledger_db, [recreated], usd("0.70"))
    [state] = await ledger_db.budget_states([recreated])
    assert state.spent_nano == usd("1.50")


async def test_windows_and_rows_are_kept(ledger_db: ledger.Ledger, ledger_url: str, clock: FakeClock) -> None:
    daily = budget("daily", period="Daily", ceiling_usd="1.00")
    monthly = budget("monthly", ceiling_usd="10.00")
    for day in range(1, 4):
        clock.set(f"2025-03-0{day}T12:00:00+00:00")
        await _spend(ledger_db, [daily, monthly], usd("0.50"))

    windows = await query(
        ledger_url, "SELECT period, spent_nano FROM sluicegate_windows ORDER BY period, window_start"
    )
    assert windows == [("Daily", usd("0.50"))] * 3 + [("Monthly", usd("1.50"))]
    assert await query(ledger_url, "SELECT count(*) FROM sluicegate_attempts") == [(3,)]
    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == usd("1.50")
