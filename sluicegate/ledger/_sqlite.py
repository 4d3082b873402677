"""The SQLite ledger: the embedded default for a single gateway.

The standard library's ``sqlite3`` blocks, so every operation runs on one worker thread
that owns the ledger's only connection, and the event loop awaits it. Operations of one
process therefore run one at a time, which costs nothing because SQLite admits one
writer at a time anyway. Several processes may share the file: the database is in WAL
mode, every write is a ``BEGIN IMMEDIATE`` transaction (see ``_sqlite_transactions``),
and a process waits up to ``busy_timeout`` seconds for another's write lock.

The ledger clock is the host clock. Errors are translated at this boundary by SQLite
result code: a busy, locked, unopenable, full, read-only or damaged database becomes
LedgerUnavailable, any other sqlite3 error LedgerError, always chained with ``from``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from sluicegate import api
from sluicegate.ledger import _accounting, _keys, _migrations
from sluicegate.ledger import _sqlite_transactions as transactions
from sluicegate.ledger._clock import Clock, host_clock, require_aware
from sluicegate.ledger._protocol import (
    ApiKeyInfo,
    Attempt,
    AttemptRow,
    BudgetRef,
    BudgetState,
    LedgerError,
    LedgerUnavailable,
    ReportRow,
    Reservation,
    ReservationNotFound,
)

# How long a write waits for another process's write lock before LedgerUnavailable.
# Ledger transactions hold the lock for about a millisecond, so 5 seconds means the
# file is stuck rather than busy.
DEFAULT_BUSY_TIMEOUT = 5.0

# SQLite primary result codes (https://www.sqlite.org/rescode.html) that mean the
# database cannot serve us now.
_UNAVAILABLE_CODES = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        26,  # SQLITE_NOTADB
    }
)

_T = TypeVar("_T")

_SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS sluicegate_schema_version ("
    " version INTEGER PRIMARY KEY, title TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT"
)
_REPORT = """
SELECT namespace, route, model, (window_at / ?) * ? AS start,
       sum(CASE WHEN outcome IN ('rejected', 'loop_detected') THEN 0 ELSE 1 END), sum(prompt_tokens),
       sum(completion_tokens), sum(estimated_nano), sum(charged_nano)
FROM sluicegate_attempts WHERE ? IS NULL OR namespace = ?
GROUP BY namespace, route, model, start
"""


class SqliteLedger:
    """The Ledger on a SQLite file, or on ``:memory:`` for a single process.

    ``path`` is opened (and created) on first use. ``clock`` replaces the host clock,
    for tests.
    """

    def __init__(
        self,
        path: str,
        *,
        clock: Clock | None = None,  # for tests
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self._path = path
        self._clock: Clock = clock if clock is not None else host_clock
        self._busy_timeout = busy_timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluicegate-sqlite")
        # Touched only on the worker thread.
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    async def _run(self, action: str, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, action, operation)

    def _call(self, action: str, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        with _translated(action, self._path):
            if self._connection is None:
                self._connection = self._open()
            return operation(self._connection)

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        try:
            self._enable_wal(connection)
            # FULL syncs the WAL on every commit, so a committed charge survives an OS
            # crash or power loss, not only a crash of the process.
            connection.execute("PRAGMA synchronous = FULL")
        except BaseException:
            connection.close()
            raise
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        # NOTE: switching a new file to WAL needs an exclusive lock, and SQLite answers
        # SQLITE_BUSY at once, without its busy handler, while another process holds any lock
        # on the file (several gateways starting together), so retry until busy_timeout.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    async def now(self) -> datetime.datetime:
        """Return the ledger's clock: the host clock unless a test replaced it."""
        return require_aware(await self._clock(), source="the ledger clock")

    async def migrate(self) -> None:
        """Apply missing migrations in one BEGIN IMMEDIATE transaction."""
        now = transactions.to_micros(await self.now())
        await self._run("migrate", functools.partial(_migrate, now=now))

    async def close(self) -> None:
        """Close the connection and stop the worker thread; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def sync_budgets(self, budgets: Sequence[BudgetRef]) -> None:
        """Upsert budget definitions; spend counters are untouched."""
        for budget in budgets:
            _accounting.check_budget(budget)
        now = transactions.to_micros(await self.now())
        rows = [
            (b.namespace, b.name, b.ceiling_nano, api.Period(b.period).value, b.time_zone, api.OnExceeded(b.on_exceeded).value, now)
            for b in budgets
        ]

        def upsert(connection: sqlite3.Connection) -> None:
            with transactions.immediate(connection):
                connection.executemany(
                    "INSERT INTO sluicegate_budgets (namespace, name, ceiling_nano, period, time_zone, on_exceeded, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET"
                    " ceiling_nano = excluded.ceiling_nano, period = excluded.period, time_zone = excluded.time_zone,"
                    " on_exceeded = excluded.on_exceeded, updated_at = excluded.updated_at",
                    rows,
                )

        await self._run("sync budgets", upsert)

    async def reserve(
        self,
        *,
        namespace: str,
        budgets: Sequence[BudgetRef],
        amount_nano: int,
        ttl_seconds: float,
    ) -> Reservation:
        """Hold ``amount_nano`` on every budget's current window, or raise BudgetExceeded and hold nothing."""
        _accounting.check_reserve(namespace=namespace, budgets=budgets, amount_nano=amount_nano, ttl_seconds=ttl_seconds)
        now = await self.now()
        plans = _accounting.plan_windows(budgets, at=now)
        reservation = _accounting.new_reservation(namespace=namespace, amount_nano=amount_nano, now=now,
                                                  ttl_seconds=ttl_seconds)
        fits, counters = await self._run(
            "reserve",
            functools.partial(
                transactions.reserve,
                reservation_id=reservation.id,
                namespace=namespace,
                plans=plans,
                amount_nano=amount_nano,
                now=transactions.to_micros(now),
                expires_at=transactions.to_micros(reservation.expires_at),
            ),
        )
        if not fits:
            raise _accounting.exceeded(namespace=namespace, amount_nano=amount_nano, plans=plans, counters=counters)
        return reservation

    async def settle(self, reservation: Reservation, attempt: Attempt) -> None:
        """Turn the hold into ``attempt.charged_nano`` on the windows it was taken from, and write the row."""
        await self._finish(reservation, attempt, state="settled", action="settle")

    async def release(self, reservation: Reservation, attempt: Attempt | None = None) -> None:
        """Give the hold back, and write the row (charging a non-zero ``charged_nano``) if one is given."""
        await self._finish(reservation, attempt, state="released", action="release")

    async def _finish(self, reservation: Reservation, attempt: Attempt | None, *, state: str, action: str) -> None:
        if attempt is not None:
            _accounting.check_attempt(attempt, namespace=reservation.namespace)
        document = _accounting.attempt_document(attempt) if attempt is not None else None
        now = transactions.to_micros(await self.now())
        result = await self._run(
            action,
            functools.partial(transactions.finish, reservation_id=reservation.id, state=state, now=now, attempt=document),
        )
        error = _accounting.finish_error(result, reservation_id=reservation.id, action=action, recorded=attempt is not None)
        if error is not None:
            raise error

    async def renew(self, reservation: Reservation, *, ttl_seconds: float) -> Reservation:
        """Set the hold to expire ``ttl_seconds`` from now."""
        _accounting.check_ttl(ttl_seconds)
        now = await self.now()
        expires_at = now + datetime.timedelta(seconds=ttl_seconds)

        def extend(connection: sqlite3.Connection) -> int:
            with transactions.immediate(connection):
                cursor = connection.execute(
                    "UPDATE sluicegate_reservations SET expires_at = ? WHERE id = ? AND state = 'held' AND expires_at > ?",
                    (transactions.to_micros(expires_at), reservation.id, transactions.to_micros(now)),
                )
            return cursor.rowcount

        if await self._run("renew", extend) != 1:
            raise ReservationNotFound(
                f"cannot renew reservation {reservation.id!r}: it does not exist, is finished, or its TTL has passed"
            )
        return dataclasses.replace(reservation, expires_at=expires_at)

    async def record(self, attempt: Attempt, *, budgets: Sequence[BudgetRef] | None = None) -> None:
        """Write a row without a reservation; a non-zero charge goes to the namespace's current windows."""
        _accounting.check_attempt(attempt)
        now = await self.now()
        plans: list[_accounting.WindowPlan] = []
        if attempt.charged_nano > 0:
            if budgets is None:
                budgets = await self._stored_budgets(attempt.namespace)
            _accounting.check_same_namespace(attempt.namespace, budgets)
            plans = _accounting.plan_windows(budgets, at=now)
        document = _accounting.attempt_document(attempt)
        await self._run(
            "record",
            functools.partial(transactions.record, plans=plans, now=transactions.to_micros(now), attempt=document),
        )

    async def budget_states(self, budgets: Sequence[BudgetRef]) -> list[BudgetState]:
        """Return each budget's current window; holds whose TTL has passed are not counted."""
        now = await self.now()
        plans = _accounting.plan_windows(budgets, at=now)
        counters = await self._run(
            "read budget states",
            functools.partial(transactions.budget_counters, plans=plans, now=transactions.to_micros(now)),
        )
        by_budget = _accounting.states(plans, counters)
        return [by_budget[budget] for budget in budgets]

    async def attempts(self, *, namespace: str | None = None, limit: int = 1000) -> list[AttemptRow]:
        """Return the newest attempt rows first."""

        def read(connection: sqlite3.Connection) -> list[dict[str, object]]:
            cursor = connection.execute(
                "SELECT * FROM sluicegate_attempts WHERE ? IS NULL OR namespace = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                (namespace, namespace, limit),
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        rows = await self._run("read attempts", read)
        result = []
        for row in rows:
            row["signals"] = json.loads(str(row["signals"]))
            created_at = transactions.from_micros(int(row["created_at"]))  # type: ignore[call-overload]
            result.append(AttemptRow(attempt=_accounting.attempt_from_fields(row), created_at=created_at))
        return result

    async def create_api_key(self, namespace: str) -> tuple[str, str]:
        """Create a key for ``namespace`` and store only its hash; return ``(key_id, key)``."""
        _keys.check_namespace(namespace)
        key_id, key = _keys.new_key()
        row = (key_id, namespace, _keys.hash_key(key), transactions.to_micros(await self.now()))

        def insert(connection: sqlite3.Connection) -> None:
            with transactions.immediate(connection):
                connection.execute(
                    "INSERT INTO sluicegate_api_keys (key_id, namespace, key_sha256, created_at) VALUES (?, ?, ?, ?)", row
                )

        await self._run("create an API key", insert)
        return key_id, key

    async def resolve_api_key(self, key: str) -> str | None:
        """Return the namespace of a valid, unrevoked key, or None."""
        key_id = _keys.key_id_of(key)
        if key_id is None:
            return None

        def read(connection: sqlite3.Connection) -> tuple[str, str] | None:
            row: tuple[str, str] | None = connection.execute(
                "SELECT namespace, key_sha256 FROM sluicegate_api_keys WHERE key_id = ? AND revoked_at IS NULL", (key_id,)
            ).fetchone()
            return row

        row = await self._run("resolve an API key", read)
        if row is None or not _keys.hashes_match(key, row[1]):
            return None
        return row[0]

    async def list_api_keys(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """List keys, oldest first, without their secrets."""

        def read(connection: sqlite3.Connection) -> list[tuple[str, str, int, int | None]]:
            rows: list[tuple[str, str, int, int | None]] = connection.execute(
                "SELECT key_id, namespace, created_at, revoked_at FROM sluicegate_api_keys"
                " WHERE ? IS NULL OR namespace = ? ORDER BY created_at, key_id",
                (namespace, namespace),
            ).fetchall()
            return rows

        return [
            ApiKeyInfo(
                key_id=key_id,
                namespace=owner,
                created_at=transactions.from_micros(created_at),
                revoked_at=transactions.from_micros(revoked_at) if revoked_at is not None else None,
            )
            for key_id, owner, created_at, revoked_at in await self._run("list API keys", read)
        ]

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; return False when no unrevoked key has this id."""
        now = transactions.to_micros(await self.now())

        def revoke(connection: sqlite3.Connection) -> int:
            with transactions.immediate(connection):
                cursor = connection.execute(
                    "UPDATE sluicegate_api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now, key_id)
                )
            return cursor.rowcount

        return await self._run("revoke an API key", revoke) == 1

    async def report(
        self,
        *,
        namespace: str | None = None,
        budgets: Sequence[BudgetRef] | None = None,
    ) -> list[ReportRow]:
        """Sum spend per namespace, budget window, route and model."""
        if budgets is None:
            budgets = await self._stored_budgets(namespace)
        bucket = _accounting.REPORT_BUCKET_SECONDS * 1_000_000

        def read(connection: sqlite3.Connection) -> list[tuple[str, str, str, int, int, int, int, int, int]]:
            rows: list[tuple[str, str, str, int, int, int, int, int, int]] = connection.execute(
                _REPORT, (bucket, bucket, namespace, namespace)
            ).fetchall()
            return rows

        buckets = [
            _accounting.SpendBucket(
                namespace=row[0],
                route=row[1],
                model=row[2],
                start=transactions.from_micros(row[3]),
                calls=row[4],
                prompt_tokens=row[5],
                completion_tokens=row[6],
                estimated_nano=row[7],
                charged_nano=row[8],
            )
            for row in await self._run("build the report", read)
        ]
        return _accounting.build_report(buckets, [b for b in budgets if namespace is None or b.namespace == namespace])

    async def _stored_budgets(self, namespace: str | None) -> list[BudgetRef]:
        def read(connection: sqlite3.Connection) -> list[dict[str, object]]:
            cursor = connection.execute(
                "SELECT namespace, name, ceiling_nano, period, time_zone, on_exceeded FROM sluicegate_budgets"
                " WHERE ? IS NULL OR namespace = ? ORDER BY namespace, name",
                (namespace, namespace),
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return [_accounting.budget_from_fields(row) for row in await self._run("read budgets", read)]


def _migrate(connection: sqlite3.Connection, *, now: int) -> None:
    known = _migrations.migrations("sqlite")
    with transactions.immediate(connection):
        connection.execute(_SCHEMA_VERSION_TABLE)
        applied = {int(row[0]) for row in connection.execute("SELECT version FROM sluicegate_schema_version")}
        newest = max(migration.version for migration in known)
        if applied and max(applied) > newest:
            raise LedgerError(
                f"the ledger's schema is at version {max(applied)}, newer than this sluicegate knows ({newest}): "
                "upgrade sluicegate before running it against this file"
            )
        for migration in known:
            if migration.version in applied:
                continue
            for statement in _migrations.sqlite_statements(migration.sql):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO sluicegate_schema_version (version, title, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.title, now),
            )


@contextlib.contextmanager
def _translated(action: str, path: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
            name = getattr(error, "sqlite_errorname", str(code))
            raise LedgerUnavailable(f"SQLite ledger {path!r} is unavailable ({action}): {name}: {error}") from error
        raise LedgerError(f"SQLite ledger {path!r} failed to {action}: {error}") from error
    except OSError as error:
        raise LedgerUnavailable(f"SQLite ledger {path!r} is unavailable ({action}): {error}") from error
