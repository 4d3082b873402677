"""The Ledger contract, run against PostgreSQL and SQLite alike.

Covers:
- reserve: all budgets or none, shared windows, $0 calls, "0" ceilings, expired holds given back;
- settle: charges above the hold, twice, unknown, after the TTL with and without the hold given back;
- release, renew, record, budget_states and attempts;
- sync_budgets and report, API keys, argument checks, and rows kept as history.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import pytest

from sluicegate import api, ledger
from sluicegate.routing import _pricing
from .conftest import FakeClock, attempt, budget, query

usd = api.parse_usd


async def test_reserve_holds_amount_on_every_budget(ledger_db: ledger.Ledger) -> None:
    budgets = [budget("monthly"), budget("daily", period="Daily", ceiling_usd="1.00")]
    reservation = await ledger_db.reserve(namespace="team-a", budgets=budgets, amount_nano=usd("0.25"), ttl_seconds=60)
    states = await ledger_db.budget_states(budgets)
    assert reservation.amount_nano == usd("0.25")
    assert reservation.namespace == "team-a"
    assert [state.reserved_nano for state in states] == [usd("0.25"), usd("0.25")]
    assert [state.spent_nano for state in states] == [0, 0]
    assert states[1].remaining_nano == usd("0.75")


async def test_reserve_beyond_ceiling_holds_nothing(ledger_db: ledger.Ledger) -> None:
    small = budget("daily", period="Daily", ceiling_usd="1.00")
    tiny = budget("weekly", period="Weekly", ceiling_usd="0.50")
    large = budget("monthly", ceiling_usd="100")
    await ledger_db.reserve(namespace="team-a", budgets=[small, tiny, large], amount_nano=usd("0.40"), ttl_seconds=60)

    with pytest.raises(ledger.BudgetExceeded) as caught:
        await ledger_db.reserve(namespace="team-a", budgets=[small, tiny, large], amount_nano=usd("0.70"), ttl_seconds=60)

    error = caught.value
    assert error.namespace == "team-a"
    assert error.amount_nano == usd("0.70")
    assert sorted(state.budget.name for state in error.lacking) == ["daily", "weekly"]
    assert all(state.reserved_nano == usd("0.40") and state.spent_nano == 0 for state in error.lacking)
    assert "weekly (spent $0, reserved $0.4, ceiling $0.5)" in str(error)
    states = await ledger_db.budget_states([small, tiny, large])
    assert [state.reserved_nano for state in states] == [usd("0.40")] * 3


async def test_reserve_fills_ceiling_exactly(ledger_db: ledger.Ledger) -> None:
    monthly = budget(ceiling_usd="1.00")
    for _ in range(4):
        await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.25"), ttl_seconds=60)
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=60)
    [state] = await ledger_db.budget_states([monthly])
    assert state.reserved_nano == usd("1.00")
    assert state.remaining_nano == 0


async def test_budgets_sharing_window_use_smallest_ceiling(ledger_db: ledger.Ledger) -> None:
    generous = budget("generous", ceiling_usd="5.00")
    strict = budget("strict", ceiling_usd="3.00")

    with pytest.raises(ledger.BudgetExceeded) as caught:
        await ledger_db.reserve(namespace="team-a", budgets=[generous, strict], amount_nano=usd("4"), ttl_seconds=60)
    assert [state.budget.name for state in caught.value.lacking] == ["strict"]

    await ledger_db.reserve(namespace="team-a", budgets=[generous, strict], amount_nano=usd("2"), ttl_seconds=60)
    states = await ledger_db.budget_states([generous, strict])
    assert [state.reserved_nano for state in states] == [usd("2"), usd("2")]


async def test_zero_ceiling_rejects_paid_and_admits_free(ledger_db: ledger.Ledger) -> None:
    blocked = budget(ceiling_usd="0")
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[blocked], amount_nano=1, ttl_seconds=60)
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[blocked], amount_nano=usd("0.10"), ttl_seconds=60)

    free = await ledger_db.reserve(namespace="team-a", budgets=[blocked], amount_nano=0, ttl_seconds=60)
    await ledger_db.settle(free, attempt(route="local", charged_nano=0))
    [state] = await ledger_db.budget_states([blocked])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)


async def test_zero_amount_fits_when_spent_passed_ceiling(ledger_db: ledger.Ledger) -> None:
    monthly = budget(ceiling_usd="1.00")
    held = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("1.00"), ttl_seconds=60)
    await ledger_db.settle(held, attempt(charged_nano=usd("1.20")))

    free = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=0, ttl_seconds=60)
    assert free.amount_nano == 0
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=60)


async def test_reserve_without_budgets_holds_nothing(ledger_db: ledger.Ledger) -> None:
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[], amount_nano=usd("3"), ttl_seconds=60)
    await ledger_db.settle(reservation, attempt(charged_nano=usd("1")))
    [row] = await ledger_db.attempts()
    assert row.attempt.charged_nano == usd("1")


async def test_settle_turns_hold_into_charge(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    clock.advance(seconds=3)
    settled = attempt(
        charged_nano=usd("0.62"),
        estimated_nano=usd("0.50"),
        prompt_tokens=1200,
        cached_tokens=1000,
        completion_tokens=80,
        usage_source=ledger.UsageSource.ESTIMATED,
        decision=ledger.Decision.ESCALATED,
        outcome=ledger.Outcome.UPSTREAM_TRUNCATED,
        escalated_from="attempt-0",
        latency_ms=812.5,
        signals=("code", "long_prompt"),
        error="stream ended early",
    )
    await ledger_db.settle(reservation, settled)

    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == usd("0.62")
    assert state.reserved_nano == 0
    [row] = await ledger_db.attempts()
    assert row.attempt == settled
    assert row.created_at == clock.value


async def test_settle_twice_raises_and_charges_once(ledger_db: ledger.Ledger) -> None:
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    await ledger_db.settle(reservation, attempt(charged_nano=usd("0.30")))

    with pytest.raises(ledger.ReservationNotFound) as caught:
        await ledger_db.settle(reservation, attempt(charged_nano=usd("0.30"), attempt_id="again"))

    assert not isinstance(caught.value, ledger.ReservationExpired)
    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == usd("0.30")
    assert len(await ledger_db.attempts()) == 1


async def test_settle_unknown_reservation_raises(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    stranger = ledger.Reservation(
        id=ledger.ReservationId("no-such-reservation"),
        namespace="team-a",
        amount_nano=5,
        reserved_at=clock.value,
        expires_at=clock.value,
    )
    with pytest.raises(ledger.ReservationNotFound, match="no-such-reservation"):
        await ledger_db.settle(stranger, attempt(charged_nano=5))
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.release(stranger)
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.renew(stranger, ttl_seconds=30)
    assert await ledger_db.attempts() == []


async def test_settle_after_ttl_still_charges(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    clock.advance(seconds=61)

    with pytest.raises(ledger.ReservationExpired) as caught:
        await ledger_db.settle(reservation, attempt(charged_nano=usd("0.40")))

    assert caught.value.recorded is True
    assert caught.value.reservation_id == reservation.id
    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (usd("0.40"), 0)
    assert len(await ledger_db.attempts()) == 1


async def test_settle_after_hold_given_back_still_charges(
    ledger_db: ledger.Ledger, ledger_url: str, clock: FakeClock
) -> None:
    monthly = budget()
    lapsed = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    clock.advance(seconds=61)
    # This reserve finds the lapsed hold and gives it back.
    current = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.20"), ttl_seconds=60)
    assert await query(ledger_url, f"SELECT state FROM sluicegate_reservations WHERE id = '{lapsed.id}'") == [("expired",)]

    with pytest.raises(ledger.ReservationExpired):
        await ledger_db.settle(lapsed, attempt(charged_nano=usd("0.45")))

    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == usd("0.45")
    assert state.reserved_nano == current.amount_nano
    assert [row.attempt.charged_nano for row in await ledger_db.attempts()] == [usd("0.45")]
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.settle(lapsed, attempt(charged_nano=usd("0.45")))
    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == usd("0.45")


async def test_release_returns_hold(ledger_db: ledger.Ledger) -> None:
    monthly = budget()
    first = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    second = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.30"), ttl_seconds=60)

    await ledger_db.release(first)
    failed = attempt(outcome=ledger.Outcome.UPSTREAM_ERROR, error="502 from upstream", attempt_id="failed")
    await ledger_db.release(second, failed)

    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)
    assert [row.attempt for row in await ledger_db.attempts()] == [failed]
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.release(first)


async def test_release_with_charge_keeps_charge(ledger_db: ledger.Ledger) -> None:
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    await ledger_db.release(reservation, attempt(outcome=ledger.Outcome.UPSTREAM_ERROR, charged_nano=usd("0.05")))
    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (usd("0.05"), 0)


async def test_release_after_ttl_raises_expired(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.50"), ttl_seconds=60)
    clock.advance(seconds=60)
    with pytest.raises(ledger.ReservationExpired) as caught:
        await ledger_db.release(reservation)
    assert caught.value.recorded is False
    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)


async def test_renew_keeps_hold_past_old_ttl(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget(ceiling_usd="1.00")
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.80"), ttl_seconds=60)
    clock.advance(seconds=50)
    renewed = await ledger_db.renew(reservation, ttl_seconds=60)
    assert renewed.expires_at == clock.value + datetime.timedelta(seconds=60)
    assert renewed.id == reservation.id

    clock.advance(seconds=50)  # past the first TTL, inside the renewed one
    with pytest.raises(ledger.BudgetExceeded):
        await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.30"), ttl_seconds=60)
    await ledger_db.settle(renewed, attempt(charged_nano=usd("0.70")))
    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (usd("0.70"), 0)


async def test_renew_after_ttl_or_settle_raises(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget()
    lapsing = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=10)
    settled = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=100)
    await ledger_db.settle(settled, attempt(charged_nano=1))
    clock.advance(seconds=10)
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.renew(lapsing, ttl_seconds=60)
    with pytest.raises(ledger.ReservationNotFound):
        await ledger_db.renew(settled, ttl_seconds=60)


async def test_expired_holds_are_given_back(ledger_db: ledger.Ledger, ledger_url: str, clock: FakeClock) -> None:
    monthly = budget(ceiling_usd="1.00")
    await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.60"), ttl_seconds=30)
    await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.40"), ttl_seconds=90)
    clock.advance(seconds=31)

    [state] = await ledger_db.budget_states([monthly])
    assert state.reserved_nano == usd("0.40")  # the lapsed hold no longer counts
    await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.60"), ttl_seconds=30)

    [state] = await ledger_db.budget_states([monthly])
    assert state.reserved_nano == usd("1.00")
    stored = await query(ledger_url, "SELECT sum(reserved_nano) FROM sluicegate_windows")
    assert stored == [(usd("1.00"),)]
    states = await query(ledger_url, "SELECT state, count(*) FROM sluicegate_reservations GROUP BY state ORDER BY state")
    assert states == [("expired", 1), ("held", 2)]


async def test_budget_states_of_unused_window_are_zero(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    daily = budget("daily", period="Daily", time_zone="Europe/Berlin")
    [state] = await ledger_db.budget_states([daily])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)
    assert state.window_start.isoformat() == "2025-03-13T23:00:00+00:00"
    assert state.window_end is not None and state.window_end.isoformat() == "2025-03-14T23:00:00+00:00"
    assert state.remaining_nano == usd("5.00")


async def test_record_writes_row_without_reservation(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    monthly = budget()
    await ledger_db.sync_budgets([monthly])
    refusal = attempt(route="", model="", outcome=ledger.Outcome.REJECTED, decision=ledger.Decision.CLASSIFIED)
    await ledger_db.record(refusal)
    cache_hit = attempt(outcome=ledger.Outcome.CACHE_HIT, decision=ledger.Decision.CACHE_HIT, attempt_id="hit")
    clock.advance(seconds=1)
    await ledger_db.record(cache_hit)

    rows = await ledger_db.attempts()
    assert [row.attempt for row in rows] == [cache_hit, refusal]
    [state] = await ledger_db.budget_states([monthly])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)


async def test_record_charge_goes_to_current_windows(ledger_db: ledger.Ledger) -> None:
    monthly = budget()
    daily = budget("daily", period="Daily")
    await ledger_db.sync_budgets([monthly, daily])
    await ledger_db.record(attempt(charged_nano=usd("0.03")))
    await ledger_db.record(attempt(charged_nano=usd("0.02"), attempt_id="given"), budgets=[daily])

    states = await ledger_db.budget_states([monthly, daily])
    assert [state.spent_nano for state in states] == [usd("0.03"), usd("0.05")]


async def test_attempts_filter_and_limit(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    for index in range(5):
        clock.advance(seconds=1)
        await ledger_db.record(attempt("team-a" if index % 2 == 0 else "team-b", attempt_id=f"a{index}"))
    assert [row.attempt.attempt_id for row in await ledger_db.attempts()] == ["a4", "a3", "a2", "a1", "a0"]
    assert [row.attempt.attempt_id for row in await ledger_db.attempts(namespace="team-b")] == ["a3", "a1"]
    assert [row.attempt.attempt_id for row in await ledger_db.attempts(limit=2)] == ["a4", "a3"]


async def test_cached_prompt_charge_is_exact(ledger_db: ledger.Ledger) -> None:
    prices = _pricing.PriceTable.from_price(api.Price(input="1.40", cached_input="0.26", output="4.40"))
    usage = _pricing.Usage(prompt_tokens=27_147, cached_tokens=27_146, completion_tokens=351)
    charge = _pricing.cost_nano(prices, usage)
    monthly = budget()
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[monthly], amount_nano=usd("0.05"), ttl_seconds=60)

    await ledger_db.settle(
        reservation, attempt(prompt_tokens=27_147, cached_tokens=27_146, completion_tokens=351, charged_nano=charge)
    )

    [row] = await ledger_db.attempts()
    assert row.attempt.charged_nano == 8_603_760
    [state] = await ledger_db.budget_states([monthly])
    assert state.spent_nano == 8_603_760
    assert api.format_usd(state.spent_nano) == "0.00860376"


async def test_sync_budgets_upserts_and_report_uses_them(ledger_db: ledger.Ledger, clock: FakeClock) -> None:
    await ledger_db.sync_budgets([budget("monthly", ceiling_usd="1.00"), budget("daily", period="Daily")])
    await ledger_db.sync_budgets([budget("monthly", ceiling_usd="2.00", period="Weekly")])
    for route, model, charge in (("cloud", "gpt-4.1", "0.10"), ("cloud", "gpt-4.1", "0.20"), ("local", "llama3.2:3b", "0")):
        held = await ledger_db.reserve(namespace="team-a", budgets=[], amount_nano=usd(charge), ttl_seconds=60)
        await ledger_db.settle(held, attempt(route=route, model=model, charged_nano=usd(charge), estimated_nano=usd(charge), prompt_tokens=10, completion_tokens=5))
    await ledger_db.record(attempt("team-b", charged_nano=0))
    await ledger_db.record(attempt("team-b", attempt_id="refused", outcome=ledger.Outcome.REJECTED))

    rows = await ledger_db.report()

    summary = [(r.namespace, r.budget, r.period, r.window_start.isoformat(), r.route, r.model, r.calls, r.charged_nano) for r in rows]
    assert summary == [
        ("team-a", "daily", "Daily", "2025-03-14T00:00:00+00:00", "cloud", "gpt-4.1", 2, usd("0.30")),
        ("team-a", "daily", "Daily", "2025-03-14T00:00:00+00:00", "local", "llama3.2:3b", 1, 0),
        ("team-a", "monthly", "Weekly", "2025-03-10T00:00:00+00:00", "cloud", "gpt-4.1", 2, usd("0.30")),
        ("team-a", "monthly", "Weekly", "2025-03-10T00:00:00+00:00", "local", "llama3.2:3b", 1, 0),
        ("team-b", "", "Total", "1970-01-01T00:00:00+00:00", "cloud", "gpt-4.1", 1, 0),
    ]
    assert rows[0].prompt_tokens == 20
    assert rows[0].completion_tokens == 10
    assert rows[0].estimated_nano == usd("0.30")
    assert rows[0].window_end is not None and rows[0].window_end.isoformat() == "2025-03-15T00:00:00+00:00"
    assert rows[-1].window_end is None
    assert [r.namespace for r in await ledger_db.report(namespace="team-b")] == ["team-b"]
    given = await ledger_db.report(namespace="team-a", budgets=[budget("total", period="Total")])
    assert [(r.budget, r.route, r.charged_nano) for r in given] == [("total", "cloud", usd("0.30")), ("total", "local", 0)]


async def test_api_key_lifecycle(ledger_db: ledger.Ledger, ledger_url: str) -> None:
    key_id, key = await ledger_db.create_api_key("team-a")
    other_id, other_key = await ledger_db.create_api_key("team-b")

    prefix, embedded_id, secret = key.split("-", 2)
    assert (prefix, embedded_id) == ("sg", key_id)
    assert len(secret) >= 43
    assert await ledger_db.resolve_api_key(key) == "team-a"
    assert await ledger_db.resolve_api_key(other_key) == "team-b"
    assert await ledger_db.resolve_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert await ledger_db.resolve_api_key("not-a-key") is None
    assert await ledger_db.resolve_api_key("") is None

    stored = await query(ledger_url, f"SELECT key_sha256 FROM sluicegate_api_keys WHERE key_id = '{key_id}'")
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(),)]
    listed = await ledger_db.list_api_keys("team-a")
    assert [(info.key_id, info.namespace, info.revoked_at) for info in listed] == [(key_id, "team-a", None)]
    assert len(await ledger_db.list_api_keys()) == 2

    assert await ledger_db.revoke_api_key(key_id) is True
    assert await ledger_db.revoke_api_key(key_id) is False
    assert await ledger_db.revoke_api_key("0000000000000000") is False
    assert await ledger_db.resolve_api_key(key) is None
    assert await ledger_db.resolve_api_key(other_key) == "team-b"
    [revoked] = await ledger_db.list_api_keys("team-a")
    assert revoked.revoked_at is not None
    assert other_id != key_id


async def test_create_api_key_rejects_bad_namespace(ledger_db: ledger.Ledger) -> None:
    with pytest.raises(ValueError, match="invalid namespace 'Team_A'"):
        await ledger_db.create_api_key("Team_A")


@pytest.mark.parametrize(
    ("amount_nano", "ttl_seconds", "namespace", "message"),
    [
        (-1, 60, "team-a", "invalid amount_nano=-1"),
        (2**63, 60, "team-a", "invalid amount_nano"),
        (1, 0, "team-a", "invalid ttl_seconds=0"),
        (1, 60, "team-b", "belongs to namespace 'team-a', not 'team-b'"),
        (1, 60, "", "needs a namespace"),
    ],
)
async def test_reserve_rejects_bad_arguments(
    ledger_db: ledger.Ledger, amount_nano: int, ttl_seconds: float, namespace: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await ledger_db.reserve(namespace=namespace, budgets=[budget()], amount_nano=amount_nano, ttl_seconds=ttl_seconds)


async def test_settle_rejects_attempt_of_other_namespace(ledger_db: ledger.Ledger) -> None:
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[budget()], amount_nano=1, ttl_seconds=60)
    with pytest.raises(ValueError, match="same namespace"):
        await ledger_db.settle(reservation, attempt("team-b", charged_nano=1))
    with pytest.raises(ValueError, match="charged_nano=-5"):
        await ledger_db.settle(reservation, attempt(charged_nano=-5))
    await ledger_db.settle(reservation, attempt(charged_nano=1))


async def test_naive_clock_is_rejected(ledger_url: str, clock: FakeClock) -> None:
    async def naive() -> datetime.datetime:
        return clock.value.replace(tzinfo=None)

    opened = ledger.connect(ledger_url, clock=naive)
    try:
        with pytest.raises(ValueError, match="naive datetime"):
            await opened.now()
        with pytest.raises(ValueError, match="naive datetime"):
            await opened.reserve(namespace="team-a", budgets=[budget()], amount_nano=1, ttl_seconds=60)
    finally:
        await opened.close()


async def test_history_rows_cannot_be_deleted(ledger_db: ledger.Ledger, ledger_url: str) -> None:
    reservation = await ledger_db.reserve(namespace="team-a", budgets=[budget()], amount_nano=1, ttl_seconds=60)
    await ledger_db.settle(reservation, attempt(charged_nano=1))
    for statement in (
        "DELETE FROM sluicegate_windows",
        "DELETE FROM sluicegate_attempts",
        "UPDATE sluicegate_attempts SET charged_nano = 0",
    ):
        with pytest.raises(Exception, match="kept as history"):
            await query(ledger_url, statement)
    assert await query(ledger_url, "SELECT count(*) FROM sluicegate_windows") == [(1,)]
    assert await query(ledger_url, "SELECT charged_nano FROM sluicegate_attempts") == [(1,)]


async def test_attempt_fields_round_trip(ledger_db: ledger.Ledger) -> None:
    full = attempt(signals=(), escalated_from=None, latency_ms=0.25, error="ünïcode ✓")
    await ledger_db.record(full)
    [row] = await ledger_db.attempts()
    assert row.attempt == full
    assert dataclasses.asdict(row.attempt) == dataclasses.asdict(full)
