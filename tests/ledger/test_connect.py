"""Opening a ledger from a URL, and what happens when its database cannot be reached.

Covers: PostgreSQL and SQLite URLs (relative, absolute, in memory), rejected URLs with
their passwords hidden, LedgerUnavailable for a refused port, a server that never
answers, a statement stuck on a lock, a locked SQLite file and an unopenable path; one
statement per reserve, settle and record on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sluicegate import api, ledger
from sluicegate.ledger import _connect
from .conftest import FakeClock, attempt, budget


def test_connect_picks_backend_by_scheme() -> None:
    assert isinstance(ledger.connect("postgresql://postgres@127.0.0.1:5432/db"), ledger.PostgresLedger)
    assert isinstance(ledger.connect("postgres://postgres@127.0.0.1/db"), ledger.PostgresLedger)
    assert isinstance(ledger.connect("sqlite:///ledger.db"), ledger.SqliteLedger)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./sluicegate-ledger.db", "./sluicegate-ledger.db"),
        ("sqlite:///data/ledger.db", "data/ledger.db"),
        ("sqlite:////var/lib/sluicegate/ledger.db", "/var/lib/sluicegate/ledger.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_path_follows_url_convention(url: str, path: str) -> None:
    assert _connect.sqlite_path(url) == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@127.0.0.1/ledger", "unsupported ledger URL 'mysql://root:***@127.0.0.1/ledger'"),
        ("ledger.db", "unsupported ledger URL 'ledger.db'"),
        ("", "unsupported ledger URL ''"),
        ("sqlite://host/ledger.db", "starts with three slashes"),
        ("sqlite:///", "give a file path"),
        ("sqlite:///ledger.db?mode=ro", "give a file path and no query"),
    ],
)
def test_connect_rejects_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("*", r"\*")) as caught:
        ledger.connect(url)
    assert "hunter2" not in str(caught.value)


def test_redact_url_hides_only_password() -> None:
    assert _connect.redact_url("postgresql://app:s3cret@db.internal:5432/ledger") == "postgresql://app:***@db.internal:5432/ledger"
    assert _connect.redact_url("postgresql://app@127.0.0.1/ledger") == "postgresql://app@127.0.0.1/ledger"


async def test_memory_ledger_works_in_one_process() -> None:
    memory = ledger.connect("sqlite:///:memory:")
    try:
        await memory.migrate()
        reservation = await memory.reserve(namespace="team-a", budgets=[budget()], amount_nano=5, ttl_seconds=60)
        assert reservation.amount_nano == 5
    finally:
        await memory.close()


async def test_refused_port_is_unavailable() -> None:
    unreachable = ledger.PostgresLedger(dsn="postgresql://sluicegate:hunter2@127.0.0.1:9/ledger", command_timeout=2)
    try:
        with pytest.raises(ledger.LedgerUnavailable) as caught:
            await unreachable.migrate()
    finally:
        await unreachable.close()
    assert isinstance(caught.value.__cause__, OSError)
    assert "hunter2" not in str(caught.value)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Port of a TCP server on 127.0.0.1 that accepts connections and never answers."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_silent_server_is_unavailable_within_timeout(silent_server: int) -> None:
    stuck = ledger.PostgresLedger(dsn=f"postgresql://postgres@127.0.0.1:{silent_server}/ledger", command_timeout=0.5)
    try:
        with pytest.raises(ledger.LedgerUnavailable) as caught:
            await asyncio.wait_for(stuck.migrate(), timeout=10)
    finally:
        await stuck.close()
    assert isinstance(caught.value.__cause__, TimeoutError)


@pytest.mark.postgres
async def test_statement_stuck_on_lock_is_unavailable(postgres_url: str) -> None:
    target = ledger.PostgresLedger(dsn=postgres_url, command_timeout=1)
    blocker = await asyncpg.connect(postgres_url)
    try:
        await target.migrate()
        monthly = budget()
        await target.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=60)
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT * FROM sluicegate_windows FOR UPDATE")

        with pytest.raises(ledger.LedgerUnavailable):
            await asyncio.wait_for(
                target.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=60), timeout=10
            )

        await transaction.rollback()
        # The pool recovers once the lock is gone.
        await target.reserve(namespace="team-a", budgets=[monthly], amount_nano=1, ttl_seconds=60)
    finally:
        await blocker.close()
        await target.close()


async def test_locked_sqlite_file_is_unavailable(sqlite_url: str) -> None:
    path = _connect.sqlite_path(sqlite_url)
    first = ledger.connect(sqlite_url)
    await first.migrate()
    await first.close()
    holder = sqlite3.connect(path, isolation_level=None)
    target = ledger.SqliteLedger(path, busy_timeout=0.2)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(ledger.LedgerUnavailable, match="SQLITE_BUSY") as caught:
            await target.reserve(namespace="team-a", budgets=[budget()], amount_nano=1, ttl_seconds=60)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        holder.execute("ROLLBACK")
        await target.reserve(namespace="team-a", budgets=[budget()], amount_nano=1, ttl_seconds=60)
    finally:
        holder.close()
        await target.close()


async def test_unopenable_sqlite_path_is_unavailable(tmp_path: pathlib.Path) -> None:
    missing = ledger.connect(f"sqlite:///{os.fspath(tmp_path)}/no-such-folder/ledger.db")
    try:
        with pytest.raises(ledger.LedgerUnavailable, match="SQLITE_CANTOPEN"):
            await missing.migrate()
    finally:
        await missing.close()


@pytest.mark.postgres
async def test_postgres_operations_take_one_statement_each(postgres_url: str, clock: FakeClock) -> None:
    statements: list[str] = []

    async def log_statements(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: statements.append(record.query))

    pool = await ledger.create_postgres_pool(postgres_url, min_size=1, max_size=1, init=log_statements)
    shared = ledger.PostgresLedger(pool=pool, clock=clock)
    try:
        await shared.migrate()
        monthly = budget()
        # The first use of each statement on a connection also prepares it and looks up
        # its types; the common path is every use after that.
        warm = await shared.reserve(namespace="team-a", budgets=[monthly], amount_nano=5, ttl_seconds=60)
        await shared.settle(warm, attempt(charged_nano=5))
        await shared.record(attempt(attempt_id="warm", outcome=ledger.Outcome.REJECTED))
        statements.clear()

        reservation = await shared.reserve(namespace="team-a", budgets=[monthly], amount_nano=5, ttl_seconds=60)
        reserve_statements, statements[:] = list(statements), []
        await shared.settle(reservation, attempt(charged_nano=5))
        settle_statements, statements[:] = list(statements), []
        await shared.record(attempt(attempt_id="refused", outcome=ledger.Outcome.REJECTED))
        record_statements = list(statements)
    finally:
        await shared.close()
        pool_closed = pool.is_closing()
        await pool.close()

    assert [("sluicegate_reserve_known(" in text) for text in reserve_statements] == [True]
    assert [("sluicegate_finish(" in text) for text in settle_statements] == [True]
    assert [("sluicegate_record(" in text) for text in record_statements] == [True]
    assert pool_closed is False  # close() leaves an injected pool open


async def test_concurrent_postgres_calls_share_batches(postgres_url: str, clock: FakeClock) -> None:
    statements: list[str] = []

    async def log_statements(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: statements.append(record.query))

    pool = await ledger.create_postgres_pool(postgres_url, min_size=1, max_size=4, init=log_statements)
    shared = ledger.PostgresLedger(pool=pool, clock=clock)
    try:
        await shared.migrate()
        budgets = {name: budget(namespace=name, ceiling_usd="0.50") for name in ("team-a", "team-b", "team-c")}
        statements.clear()
        results = await asyncio.gather(
            *(shared.reserve(namespace=name, budgets=[budgets[name]], amount_nano=api.parse_usd("0.10"), ttl_seconds=60)
              for _ in range(8) for name in budgets),
            return_exceptions=True,
        )
        reserve_statements = [text for text in statements if "sluicegate_reserve" in text]
        held = [result for result in results if isinstance(result, ledger.Reservation)]
        refused = [result for result in results if isinstance(result, ledger.BudgetExceeded)]
        statements.clear()
        await asyncio.gather(*(shared.settle(reservation, attempt(reservation.namespace, attempt_id=reservation.id, charged_nano=api.parse_usd("0.10")))
                               for reservation in held))
        settle_statements = [text for text in statements if "sluicegate_finish" in text]
        states = await shared.budget_states(list(budgets.values()))
    finally:
        await shared.close()
        await pool.close()

    # Five $0.10 holds fit each $0.50 budget; the other three calls of each namespace are refused.
    assert len(held) == 15
    assert len(refused) == 9
    assert [state.spent_nano for state in states] == [api.parse_usd("0.50")] * 3
    assert [state.reserved_nano for state in states] == [0] * 3
    assert len(reserve_statements) < 24
    assert any("sluicegate_reserve_batch" in text for text in reserve_statements)
    assert len(settle_statements) < 15
