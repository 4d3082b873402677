"""Fixtures of the ledger tests: each backend behind one ``ledger`` fixture, and a fake clock.

``ledger_url`` runs a test once on PostgreSQL (a fresh database) and once on SQLite (a
fresh file). ``ledger`` is that ledger, migrated, on ``clock``, a FakeClock the test
moves by hand.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from sluicegate import api, ledger
from sluicegate.ledger import _connect

# A Friday at noon UTC, far from any window boundary.
NOON = datetime.datetime(2025, 3, 14, 12, 0, tzinfo=datetime.timezone.utc)


class FakeClock:
    """A ledger clock that moves only when a test moves it."""

    def __init__(self, value: datetime.datetime) -> None:
        self.value = value

    async def __call__(self) -> datetime.datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += datetime.timedelta(**delta)

    def set(self, text: str) -> None:
        """Set the clock from an ISO 8601 timestamp with an offset, e.g. ``2025-03-14T23:59:59+00:00``."""
        self.value = datetime.datetime.fromisoformat(text).astimezone(datetime.timezone.utc)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """URL of an empty ledger database, once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
async def ledger_db(ledger_url: str, clock: FakeClock) -> AsyncIterator[ledger.Ledger]:
    """A migrated ledger on the fake clock."""
    opened = ledger.connect(ledger_url, clock=clock)
    await opened.migrate()
    yield opened
    await opened.close()


def budget(
    name: str = "monthly",
    *,
    namespace: str = "team-a",
    ceiling_usd: str = "5.00",
    period: str = "Monthly",
    time_zone: str = "UTC",
    on_exceeded: str = "Reject",
) -> ledger.BudgetRef:
    """A BudgetRef with readable defaults."""
    return ledger.BudgetRef(
        namespace=namespace,
        name=name,
        ceiling_nano=api.parse_usd(ceiling_usd),
        period=api.Period(period),
        time_zone=time_zone,
        on_exceeded=api.OnExceeded(on_exceeded),
    )


def attempt(namespace: str = "team-a", *, charged_nano: int = 0, attempt_id: str = "attempt-1", **fields: Any) -> ledger.Attempt:
    """An Attempt with readable defaults."""
    values: dict[str, Any] = {
        "request_id": ledger.RequestId("request-1"),
        "attempt_id": attempt_id,
        "namespace": namespace,
        "route": "cloud",
        "provider": "openai",
        "model": "gpt-4.1",
        "decision": ledger.Decision.CLASSIFIED,
        "outcome": ledger.Outcome.OK,
        "charged_nano": charged_nano,
    }
    values.update(fields)
    return ledger.Attempt(**values)


async def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement straight on the ledger's database and return its rows."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(_connect.sqlite_path(url))
        try:
            with connection:
                return [tuple(row) for row in connection.execute(sql).fetchall()]
        finally:
            connection.close()
    pg = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await pg.fetch(sql)]
    finally:
        await pg.close()
