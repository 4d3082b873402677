"""The PostgreSQL ledger: the one shared by every gateway replica of a fleet.

Reserve, settle, release and record each call one server-side function created by the
migration (``sql/postgres_0001_initial.sql``), so each costs one round trip. The
function locks the window rows in id order, checks the ceilings and updates them inside
the server, never as a read and a separate write from here. The ledger clock is the
server's ``clock_timestamp()`` read through ``OffsetClock``, so a reserve does not spend
a second round trip on the time.

Errors are translated at this boundary: unreachable or overloaded servers (OSError, a
timeout, or SQLSTATE classes 08, 28, 3D, 53, 57 and 58) become LedgerUnavailable, other
server errors LedgerError, always chained with ``from``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import asyncpg

from sluicegate import api
from sluicegate.ledger import _accounting, _batching, _keys, _migrations
from sluicegate.ledger._clock import Clock, OffsetClock, require_aware
from sluicegate.ledger._windows import WindowKey
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

# How long one ledger operation may take, pool wait included, before LedgerUnavailable.
# The gateway fails closed on LedgerUnavailable, so a stuck server should surface within
# seconds; a reserve normally takes about a millisecond.
DEFAULT_COMMAND_TIMEOUT = 5.0
# Window ids a ledger remembers; a fleet uses a few per namespace and budget period.
_MAX_CACHED_WINDOWS = 100_000
# Migrations may wait for another process's migration, so they get longer.
MIGRATION_TIMEOUT = 60.0
DEFAULT_MIN_POOL_SIZE = 1
DEFAULT_MAX_POOL_SIZE = 10

# Key of the transaction-level advisory lock that serialises migrations: the ASCII bytes
# of "sluiceg" read as an integer, chosen to be unlikely to collide with other users.
_MIGRATION_LOCK_KEY = 0x736C7569636567

# SQLSTATE classes that mean the server cannot serve us now: connection exception (08),
# invalid authorization (28), invalid catalog name (3D), insufficient resources (53),
# operator intervention such as a cancelled statement or a shutdown (57), system error (58).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "28", "3D", "53", "57", "58"})

_RESERVE = "SELECT o_fits, o_spent, o_reserved FROM sluicegate_reserve_known($1, $2, $3, $4, $5, $6, $7)"
_WINDOW_IDS = "SELECT sluicegate_window_ids($1, $2, $3, $4, $5, $6)"
_RESERVE_BATCH = "SELECT o_index, o_fits, o_spent, o_reserved FROM sluicegate_reserve_batch($1, $2, $3, $4, $5, $6, $7, $8, $9)"
_FINISH_BATCH = "SELECT o_index, o_result FROM sluicegate_finish_batch($1, $2, $3, $4, $5, $6::jsonb[])"
# A batch that PostgreSQL picked as a deadlock victim is run again, at most this often.
_DEADLOCK_RETRIES = 3
_FINISH = "SELECT sluicegate_finish($1, $2, $3, $4, $5::jsonb)"
_RECORD = "SELECT sluicegate_record($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
_RENEW = """
UPDATE sluicegate_reservations SET expires_at = $3
WHERE id = $1 AND state = 'held' AND expires_at > $2
"""
_BUDGET_STATES = """
SELECT k.ord, w.spent_nano, w.reserved_nano - coalesce((
    SELECT sum(r.amount_nano) FROM sluicegate_reservations AS r
    WHERE r.namespace = w.namespace AND r.state = 'held' AND r.expires_at <= $5 AND w.id = ANY (r.window_ids)
), 0)::bigint AS reserved_nano
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
     AS k (namespace, period, time_zone, window_start, ord)
JOIN sluicegate_windows AS w
  ON w.namespace = k.namespace AND w.period = k.period AND w.time_zone = k.time_zone AND w.window_start = k.window_start
"""
_SYNC_BUDGETS = """
INSERT INTO sluicegate_budgets (namespace, name, ceiling_nano, period, time_zone, on_exceeded, updated_at)
SELECT b.namespace, b.name, b.ceiling_nano, b.period, b.time_zone, b.on_exceeded, $7
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
     AS b (namespace, name, ceiling_nano, period, time_zone, on_exceeded)
ON CONFLICT (namespace, name) DO UPDATE
SET ceiling_nano = excluded.ceiling_nano, period = excluded.period, time_zone = excluded.time_zone,
    on_exceeded = excluded.on_exceeded, updated_at = excluded.updated_at
"""
_STORED_BUDGETS = """
SELECT namespace, name, ceiling_nano, period, time_zone, on_exceeded FROM sluicegate_budgets
WHERE $1::text IS NULL OR namespace = $1 ORDER BY namespace, name
"""
_ATTEMPTS = """
SELECT * FROM sluicegate_attempts WHERE $1::text IS NULL OR namespace = $1
ORDER BY created_at DESC, id DESC LIMIT $2
"""
_REPORT = """
SELECT namespace, route, model,
       to_timestamp((floor(extract(epoch FROM window_at) / $2) * $2)::double precision) AS start,
       count(*) FILTER (WHERE outcome NOT IN ('rejected', 'loop_detected')) AS calls,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens, sum(estimated_nano)::bigint AS estimated_nano,
       sum(charged_nano)::bigint AS charged_nano
FROM sluicegate_attempts WHERE $1::text IS NULL OR namespace = $1
GROUP BY namespace, route, model, start
"""


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query when a connection goes back to the pool.

    The ledger sets no session state, and the reset would cost every operation a second
    round trip. asyncpg still rolls back an open transaction before calling this.
    """


async def create_pool(
    dsn: str,
    *,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    min_size: int = DEFAULT_MIN_POOL_SIZE,
    max_size: int = DEFAULT_MAX_POOL_SIZE,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """Open an asyncpg pool set up as the ledger needs it, for ``PostgresLedger(pool=...)``.

    ``command_timeout`` (seconds) bounds connecting and every statement. Connections go
    back to the pool without asyncpg's reset query, which would double the round trips
    of each ledger operation. Share this pool only with code that, like the ledger,
    leaves no session state behind (no SET, LISTEN or session advisory locks).
    Raises LedgerUnavailable when the server cannot be reached.
    """
    with _translated("connect"):
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=command_timeout,
            reset=_keep_session,
            init=init,
            server_settings={"application_name": "sluicegate"},
        )
    return pool


class PostgresLedger:
    """The Ledger on PostgreSQL through an asyncpg pool.

    Pass ``dsn`` to let the ledger open (on first use) and close its own pool, or
    ``pool`` to share one created elsewhere, which ``close`` then leaves open.
    ``command_timeout`` (seconds) bounds each operation, including the wait for a pooled
    connection. ``clock`` replaces the server clock, for tests.
    """

    def __init__(
        self,
        *,
        dsn: str | None = None,
        pool: asyncpg.Pool | None = None,
        clock: Clock | None = None,  # for tests
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        min_pool_size: int = DEFAULT_MIN_POOL_SIZE,
        max_pool_size: int = DEFAULT_MAX_POOL_SIZE,
    ) -> None:
        if (dsn is None) == (pool is None):
            raise ValueError("PostgresLedger needs exactly one of dsn= (a postgresql:// URL) or pool= (an asyncpg pool)")
        self._dsn = dsn
        self._pool = pool
        self._owns_pool = pool is None
        self._command_timeout = command_timeout
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._clock: Clock = clock if clock is not None else OffsetClock(self._server_clock)
        self._open_lock = asyncio.Lock()
        self._window_id_cache: dict[WindowKey, int] = {}
        self._reserve_batches: _batching.Coalescer[_ReserveCall, asyncpg.Record] = _batching.Coalescer(self._reserve_batch)
        self._finish_batches: _batching.Coalescer[_FinishCall, str] = _batching.Coalescer(self._finish_batch)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        # NOTE: asyncpg.create_pool needs a running loop, so the pool opens on first use.
        async with self._open_lock:
            if self._pool is None:
                assert self._dsn is not None  # the constructor takes a dsn when it gets no pool
                self._pool = await create_pool(
                    self._dsn,
                    command_timeout=self._command_timeout,
                    min_size=self._min_pool_size,
                    max_size=self._max_pool_size,
                )
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self, action: str) -> AsyncIterator[asyncpg.Connection]:
        pool = await self._get_pool()
        with _translated(action):
            async with pool.acquire(timeout=self._command_timeout) as connection:
                yield connection

    async def _server_clock(self) -> datetime.datetime:
        async with self._connection("read the server clock") as connection:
            value: datetime.datetime = await connection.fetchval("SELECT clock_timestamp()")
        return value

    async def now(self) -> datetime.datetime:
        """Return the ledger's clock: the server's time unless a test replaced it."""
        return require_aware(await self._clock(), source="the ledger clock")

    async def migrate(self) -> None:
        """Apply missing migrations in one transaction under an advisory lock."""
        async with self._connection("migrate") as connection:
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY, timeout=MIGRATION_TIMEOUT)
                await connection.execute(
                    "CREATE TABLE IF NOT EXISTS sluicegate_schema_version ("
                    " version integer PRIMARY KEY, title text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                applied = {row["version"] for row in await connection.fetch("SELECT version FROM sluicegate_schema_version")}
                known = _migrations.migrations("postgres")
                _check_not_newer(applied, known)
                for migration in known:
                    if migration.version in applied:
                        continue
                    await connection.execute(migration.sql, timeout=MIGRATION_TIMEOUT)
                    await connection.execute(
                        "INSERT INTO sluicegate_schema_version (version, title) VALUES ($1, $2)",
                        migration.version,
                        migration.title,
                    )

    async def close(self) -> None:
        """Wait for batches in flight, then close the pool if this ledger opened it."""
        await self._reserve_batches.wait_idle()
        await self._finish_batches.wait_idle()
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def sync_budgets(self, budgets: Sequence[BudgetRef]) -> None:
        """Upsert budget definitions; spend counters are untouched."""
        for budget in budgets:
            _accounting.check_budget(budget)
        unique = list({(budget.namespace, budget.name): budget for budget in budgets}.values())
        now = await self.now()
        async with self._connection("sync budgets") as connection:
            await connection.execute(
                _SYNC_BUDGETS,
                [b.namespace for b in unique],
                [b.name for b in unique],
                [b.ceiling_nano for b in unique],
                [api.Period(b.period).value for b in unique],
                [b.time_zone for b in unique],
                [api.OnExceeded(b.on_exceeded).value for b in unique],
                now,
            )

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
        row = await self._reserve_batches.submit(_ReserveCall(reservation=reservation, plans=plans))
        if not row["o_fits"]:
            counters = list(zip(row["o_spent"], row["o_reserved"], strict=True))
            raise _accounting.exceeded(namespace=namespace, amount_nano=amount_nano, plans=plans, counters=counters)
        return reservation

    async def _reserve_batch(self, calls: Sequence[_ReserveCall]) -> list[asyncpg.Record]:
        for attempt_number in range(1, _DEADLOCK_RETRIES + 1):
            try:
                async with self._connection("reserve") as connection:
                    return await self._reserve_on(connection, calls)
            except LedgerError as error:
                if not isinstance(error.__cause__, asyncpg.DeadlockDetectedError) or attempt_number == _DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _reserve_on(self, connection: asyncpg.Connection, calls: Sequence[_ReserveCall]) -> list[asyncpg.Record]:
        window_ids = [
            await self._window_ids_of(connection, namespace=call.reservation.namespace, plans=call.plans,
                                      now=call.reservation.reserved_at)
            for call in calls
        ]
        if len(calls) == 1:
            [call], [ids] = calls, window_ids
            hold = call.reservation
            row = await connection.fetchrow(_RESERVE, hold.id, hold.namespace, ids, [plan.ceiling_nano for plan in call.plans],
                                            hold.amount_nano, hold.reserved_at, hold.expires_at)
            return [row]

        starts, position = [], 1
        for ids in window_ids:
            starts.append(position)
            position += len(ids)
        rows = await connection.fetch(
            _RESERVE_BATCH,
            [call.reservation.id for call in calls],
            [call.reservation.namespace for call in calls],
            [window_id for ids in window_ids for window_id in ids],
            [plan.ceiling_nano for call in calls for plan in call.plans],
            starts,
            [len(ids) for ids in window_ids],
            [call.reservation.amount_nano for call in calls],
            [call.reservation.reserved_at for call in calls],
            [call.reservation.expires_at for call in calls],
        )
        by_index = {row["o_index"]: row for row in rows}
        return [by_index[index] for index in range(1, len(calls) + 1)]

    async def _window_ids_of(
        self, connection: asyncpg.Connection, *, namespace: str, plans: Sequence[_accounting.WindowPlan], now: datetime.datetime
    ) -> list[int]:
        # Window rows are never deleted, so an id once seen stays valid; only the first call
        # on a window pays the round trip that creates or finds its row.
        missing = [plan for plan in plans if plan.key not in self._window_id_cache]
        if missing:
            ids = await connection.fetchval(_WINDOW_IDS, namespace, *_plan_arrays(missing), now)
            for plan, window_id in zip(missing, ids, strict=True):
                if len(self._window_id_cache) >= _MAX_CACHED_WINDOWS:
                    self._window_id_cache.clear()
                self._window_id_cache[plan.key] = window_id
        return [self._window_id_cache[plan.key] for plan in plans]

    async def settle(self, reservation: Reservation, attempt: Attempt) -> None:
        """Turn the hold into ``attempt.charged_nano`` on the windows it was taken from, and write the row."""
        await self._finish(reservation, attempt, state="settled", action="settle")

    async def release(self, reservation: Reservation, attempt: Attempt | None = None) -> None:
        """Give the hold back, and write the row (charging a non-zero ``charged_nano``) if one is given."""
        await self._finish(reservation, attempt, state="released", action="release")

    async def _finish(self, reservation: Reservation, attempt: Attempt | None, *, state: str, action: str) -> None:
        if attempt is not None:
            _accounting.check_attempt(attempt, namespace=reservation.namespace)
        document = json.dumps(_accounting.attempt_document(attempt)) if attempt is not None else None
        now = await self.now()
        call = _FinishCall(reservation_id=reservation.id, namespace=reservation.namespace, state=state, now=now,
                           charged_nano=attempt.charged_nano if attempt is not None else 0, document=document)
        result = await self._finish_batches.submit(call)
        error = _accounting.finish_error(result, reservation_id=reservation.id, action=action, recorded=attempt is not None)
        if error is not None:
            raise error

    async def _finish_batch(self, calls: Sequence[_FinishCall]) -> list[str]:
        for attempt_number in range(1, _DEADLOCK_RETRIES + 1):
            try:
                async with self._connection("settle or release") as connection:
                    if len(calls) == 1:
                        [call] = calls
                        result: str = await connection.fetchval(
                            _FINISH, call.reservation_id, call.state, call.now, call.charged_nano, call.document)
                        return [result]
                    rows = await connection.fetch(
                        _FINISH_BATCH,
                        [call.reservation_id for call in calls],
                        [call.namespace for call in calls],
                        [call.state for call in calls],
                        [call.now for call in calls],
                        [call.charged_nano for call in calls],
                        [call.document for call in calls],
                    )
                by_index = {row["o_index"]: row["o_result"] for row in rows}
                return [by_index[index] for index in range(1, len(calls) + 1)]
            except LedgerError as error:
                if not isinstance(error.__cause__, asyncpg.DeadlockDetectedError) or attempt_number == _DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def renew(self, reservation: Reservation, *, ttl_seconds: float) -> Reservation:
        """Set the hold to expire ``ttl_seconds`` from now."""
        _accounting.check_ttl(ttl_seconds)
        now = await self.now()
        expires_at = now + datetime.timedelta(seconds=ttl_seconds)
        async with self._connection("renew") as connection:
            status = await connection.execute(_RENEW, reservation.id, now, expires_at)
        if status != "UPDATE 1":
            raise ReservationNotFound(
                f"cannot renew reservation {reservation.id!r}: it does not exist, is finished, or its TTL has passed"
            )
        return dataclasses.replace(reservation, expires_at=expires_at)

    async def record(self, attempt: Attempt, *, budgets: Sequence[BudgetRef] | None = None) -> None:
        """Write a row without a reservation; a non-zero charge goes to the namespace's current windows."""
        _accounting.check_attempt(attempt)
        plans: list[_accounting.WindowPlan] = []
        now = await self.now()
        if attempt.charged_nano > 0:
            if budgets is None:
                budgets = await self._stored_budgets(attempt.namespace)
            _accounting.check_same_namespace(attempt.namespace, budgets)
            plans = _accounting.plan_windows(budgets, at=now)
        document = json.dumps(_accounting.attempt_document(attempt))
        async with self._connection("record") as connection:
            await connection.execute(
                _RECORD, attempt.namespace, *_plan_arrays(plans), attempt.charged_nano, now, document
            )

    async def budget_states(self, budgets: Sequence[BudgetRef]) -> list[BudgetState]:
        """Return each budget's current window; holds whose TTL has passed are not counted."""
        now = await self.now()
        plans = _accounting.plan_windows(budgets, at=now)
        counters = [(0, 0)] * len(plans)
        async with self._connection("read budget states") as connection:
            rows = await connection.fetch(
                _BUDGET_STATES,
                [plan.key.namespace for plan in plans],
                [plan.key.period for plan in plans],
                [plan.key.time_zone for plan in plans],
                [plan.key.start for plan in plans],
                now,
            )
        for row in rows:
            counters[row["ord"] - 1] = (row["spent_nano"], row["reserved_nano"])
        by_budget = _accounting.states(plans, counters)
        return [by_budget[budget] for budget in budgets]

    async def attempts(self, *, namespace: str | None = None, limit: int = 1000) -> list[AttemptRow]:
        """Return the newest attempt rows first."""
        async with self._connection("read attempts") as connection:
            rows = await connection.fetch(_ATTEMPTS, namespace, limit)
        return [
            AttemptRow(attempt=_accounting.attempt_from_fields(dict(row)), created_at=row["created_at"]) for row in rows
        ]

    async def create_api_key(self, namespace: str) -> tuple[str, str]:
        """Create a key for ``namespace`` and store only its hash; return ``(key_id, key)``."""
        _keys.check_namespace(namespace)
        key_id, key = _keys.new_key()
        now = await self.now()
        async with self._connection("create an API key") as connection:
            await connection.execute(
                "INSERT INTO sluicegate_api_keys (key_id, namespace, key_sha256, created_at) VALUES ($1, $2, $3, $4)",
                key_id,
                namespace,
                _keys.hash_key(key),
                now,
            )
        return key_id, key

    async def resolve_api_key(self, key: str) -> str | None:
        """Return the namespace of a valid, unrevoked key, or None."""
        key_id = _keys.key_id_of(key)
        if key_id is None:
            return None
        async with self._connection("resolve an API key") as connection:
            row = await connection.fetchrow(
                "SELECT namespace, key_sha256 FROM sluicegate_api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id
            )
        if row is None or not _keys.hashes_match(key, row["key_sha256"]):
            return None
        namespace: str = row["namespace"]
        return namespace

    async def list_api_keys(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """List keys, oldest first, without their secrets."""
        async with self._connection("list API keys") as connection:
            rows = await connection.fetch(
                "SELECT key_id, namespace, created_at, revoked_at FROM sluicegate_api_keys"
                " WHERE $1::text IS NULL OR namespace = $1 ORDER BY created_at, key_id",
                namespace,
            )
        return [ApiKeyInfo(**dict(row)) for row in rows]

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; return False when no unrevoked key has this id."""
        now = await self.now()
        async with self._connection("revoke an API key") as connection:
            status = await connection.execute(
                "UPDATE sluicegate_api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL", key_id, now
            )
        return bool(status == "UPDATE 1")

    async def report(
        self,
        *,
        namespace: str | None = None,
        budgets: Sequence[BudgetRef] | None = None,
    ) -> list[ReportRow]:
        """Sum spend per namespace, budget window, route and model."""
        if budgets is None:
            budgets = await self._stored_budgets(namespace)
        async with self._connection("build the report") as connection:
            rows = await connection.fetch(_REPORT, namespace, _accounting.REPORT_BUCKET_SECONDS)
        buckets = [_accounting.SpendBucket(**dict(row)) for row in rows]
        return _accounting.build_report(buckets, [b for b in budgets if namespace is None or b.namespace == namespace])

    async def _stored_budgets(self, namespace: str | None) -> list[BudgetRef]:
        async with self._connection("read budgets") as connection:
            rows = await connection.fetch(_STORED_BUDGETS, namespace)
        return [_accounting.budget_from_fields(dict(row)) for row in rows]


@dataclasses.dataclass(frozen=True)
class _ReserveCall:
    reservation: Reservation
    plans: Sequence[_accounting.WindowPlan]


@dataclasses.dataclass(frozen=True)
class _FinishCall:
    reservation_id: str
    namespace: str
    state: str
    now: datetime.datetime
    charged_nano: int
    document: str | None


def _plan_arrays(plans: Sequence[_accounting.WindowPlan]) -> tuple[list[str], list[str], list[datetime.datetime], list[Any]]:
    return (
        [plan.key.period for plan in plans],
        [plan.key.time_zone for plan in plans],
        [plan.key.start for plan in plans],
        [plan.end for plan in plans],
    )


def _check_not_newer(applied: set[int], known: Sequence[_migrations.Migration]) -> None:
    newest = max(migration.version for migration in known)
    if applied and max(applied) > newest:
        raise LedgerError(
            f"the ledger's schema is at version {max(applied)}, newer than this sluicegate knows ({newest}): "
            "upgrade sluicegate before running it against this database"
        )


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except (OSError, TimeoutError) as error:
        raise LedgerUnavailable(f"PostgreSQL ledger is unreachable ({action}): {type(error).__name__}: {error}") from error
    except asyncpg.PostgresError as error:
        sqlstate = error.sqlstate or ""
        if sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            raise LedgerUnavailable(f"PostgreSQL ledger is unavailable ({action}): SQLSTATE {sqlstate}: {error}") from error
        raise LedgerError(f"PostgreSQL ledger failed to {action}: SQLSTATE {sqlstate}: {error}") from error
    except asyncpg.InterfaceError as error:
        raise LedgerError(f"PostgreSQL ledger failed to {action}: {error}") from error
