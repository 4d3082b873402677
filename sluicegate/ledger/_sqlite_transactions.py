"""The SQLite ledger's transactions, as plain blocking functions on one connection.

Each write is one ``BEGIN IMMEDIATE`` transaction: SQLite takes its single write lock
at the BEGIN, so between a transaction's reads and its writes no other connection, in
this process or another sharing the file, can change anything. That lock is what
enforces the ceilings here, as the row locks do on PostgreSQL. Timestamps are stored as
integer microseconds since 1970-01-01 UTC.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
from collections.abc import Iterator, Sequence

from sluicegate.ledger import _accounting

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)

_ATTEMPT_COLUMNS = (
    "request_id", "attempt_id", "namespace", "route", "provider", "model", "decision", "outcome",
    "usage_source", "prompt_tokens", "cached_tokens", "completion_tokens", "estimated_nano",
    "charged_nano", "escalated_from", "latency_ms", "signals", "error",
)  # fmt: skip
_INSERT_ATTEMPT = (
    "INSERT INTO sluicegate_attempts (created_at, window_at, reservation_id, "
    + ", ".join(_ATTEMPT_COLUMNS)
    + ") VALUES (?, ?, ?, "
    + ", ".join("?" for _ in _ATTEMPT_COLUMNS)
    + ")"
)


def to_micros(value: datetime.datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime.datetime:
    """Return integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + value * _MICROSECOND


@contextlib.contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """Run the block in a BEGIN IMMEDIATE transaction; commit on success, roll back on error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # SQLite may already have rolled back (after SQLITE_FULL, for example).
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def release_expired(connection: sqlite3.Connection, *, namespace: str, now: int) -> None:
    """Give back every hold of ``namespace`` whose TTL has passed."""
    expired = connection.execute(
        "SELECT id, amount_nano, window_ids FROM sluicegate_reservations"
        " WHERE namespace = ? AND state = 'held' AND expires_at <= ?",
        (namespace, now),
    ).fetchall()
    for reservation_id, amount, window_ids in expired:
        connection.executemany(
            "UPDATE sluicegate_windows SET reserved_nano = reserved_nano - ? WHERE id = ?",
            [(amount, window_id) for window_id in json.loads(window_ids)],
        )
        connection.execute(
            "UPDATE sluicegate_reservations SET state = 'expired', finished_at = ? WHERE id = ?", (now, reservation_id)
        )


def window_ids(connection: sqlite3.Connection, plans: Sequence[_accounting.WindowPlan], *, now: int) -> list[int]:
    """Return the ids of the plans' window rows, in plan order, creating missing rows."""
    ids = []
    for plan in plans:
        key = (plan.key.namespace, plan.key.period, plan.key.time_zone, to_micros(plan.key.start))
        end = to_micros(plan.end) if plan.end is not None else None
        connection.execute(
            "INSERT OR IGNORE INTO sluicegate_windows (namespace, period, time_zone, window_start, window_end, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*key, end, now),
        )
        row = connection.execute(
            "SELECT id FROM sluicegate_windows WHERE namespace = ? AND period = ? AND time_zone = ? AND window_start = ?",
            key,
        ).fetchone()
        ids.append(int(row[0]))
    return ids


def counters(connection: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Return ``(spent_nano, reserved_nano)`` of each window row, in the order of ``ids``."""
    result = []
    for window_id in ids:
        spent, reserved = connection.execute(
            "SELECT spent_nano, reserved_nano FROM sluicegate_windows WHERE id = ?", (window_id,)
        ).fetchone()
        result.append((int(spent), int(reserved)))
    return result


def reserve(
    connection: sqlite3.Connection,
    *,
    reservation_id: str,
    namespace: str,
    plans: Sequence[_accounting.WindowPlan],
    amount_nano: int,
    now: int,
    expires_at: int,
) -> tuple[bool, list[tuple[int, int]]]:
    """Hold ``amount_nano`` on every plan's window, or nothing; return whether it fit and the counters before."""
    with immediate(connection):
        release_expired(connection, namespace=namespace, now=now)
        ids = window_ids(connection, plans, now=now)
        before = counters(connection, ids)
        fits = amount_nano == 0 or all(
            spent + reserved + amount_nano <= plan.ceiling_nano for plan, (spent, reserved) in zip(plans, before, strict=True)
        )
        if fits:
            connection.executemany(
                "UPDATE sluicegate_windows SET reserved_nano = reserved_nano + ? WHERE id = ?",
                [(amount_nano, window_id) for window_id in ids],
            )
            connection.execute(
                "INSERT INTO sluicegate_reservations (id, namespace, amount_nano, window_ids, reserved_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (reservation_id, namespace, amount_nano, json.dumps(ids), now, expires_at),
            )
    return fits, before


def finish(
    connection: sqlite3.Connection,
    *,
    reservation_id: str,
    state: str,
    now: int,
    attempt: dict[str, object] | None,
) -> str:
    """Settle or release a reservation; return "ok", "expired", "missing" or "finished".

    A settle after the TTL still adds the charge and writes the row, even when another
    transaction has already given the hold back, because the provider billed the call
    all the same. An already settled or released reservation gets nothing, so a second
    settle cannot charge twice.
    """
    charged = int(attempt["charged_nano"]) if attempt is not None else 0  # type: ignore[call-overload]
    with immediate(connection):
        row = connection.execute(
            "SELECT state, expires_at, amount_nano, window_ids, reserved_at FROM sluicegate_reservations WHERE id = ?",
            (reservation_id,),
        ).fetchone()
        if row is None:
            return "missing"
        held_state, expires_at, amount, ids, reserved_at = row
        if held_state not in ("held", "expired"):
            return "finished"
        in_time = held_state == "held" and expires_at > now
        give_back = amount if held_state == "held" else 0
        connection.executemany(
            "UPDATE sluicegate_windows SET reserved_nano = reserved_nano - ?, spent_nano = spent_nano + ? WHERE id = ?",
            [(give_back, charged, window_id) for window_id in json.loads(ids)],
        )
        connection.execute(
            "UPDATE sluicegate_reservations SET state = ?, finished_at = ? WHERE id = ?",
            (state if in_time else "expired_finished", now, reservation_id),
        )
        if attempt is not None:
            insert_attempt(connection, attempt, reservation_id=reservation_id, created_at=now, window_at=reserved_at)
    return "ok" if in_time else "expired"


def record(
    connection: sqlite3.Connection,
    *,
    plans: Sequence[_accounting.WindowPlan],
    now: int,
    attempt: dict[str, object],
) -> None:
    """Write a row without a reservation, adding its charge to the plans' windows."""
    charged = int(attempt["charged_nano"])  # type: ignore[call-overload]
    with immediate(connection):
        if charged > 0 and plans:
            ids = window_ids(connection, plans, now=now)
            connection.executemany(
                "UPDATE sluicegate_windows SET spent_nano = spent_nano + ? WHERE id = ?",
                [(charged, window_id) for window_id in ids],
            )
        insert_attempt(connection, attempt, reservation_id=None, created_at=now, window_at=now)


def insert_attempt(
    connection: sqlite3.Connection,
    attempt: dict[str, object],
    *,
    reservation_id: str | None,
    created_at: int,
    window_at: int,
) -> None:
    """Write one attempt row from its document (see ``_accounting.attempt_document``)."""
    values = [json.dumps(attempt[column]) if column == "signals" else attempt[column] for column in _ATTEMPT_COLUMNS]
    connection.execute(_INSERT_ATTEMPT, (created_at, window_at, reservation_id, *values))


def budget_counters(
    connection: sqlite3.Connection, plans: Sequence[_accounting.WindowPlan], *, now: int
) -> list[tuple[int, int]]:
    """Return each plan's ``(spent_nano, reserved_nano)`` without holds whose TTL has passed; nothing is written."""
    result = []
    with contextlib.closing(connection.cursor()) as cursor:
        cursor.execute("BEGIN")  # one snapshot for every read
        try:
            for plan in plans:
                result.append(_live_counters(cursor, plan, now=now))
        finally:
            cursor.execute("COMMIT")
    return result


def _live_counters(cursor: sqlite3.Cursor, plan: _accounting.WindowPlan, *, now: int) -> tuple[int, int]:
    row = cursor.execute(
        "SELECT id, spent_nano, reserved_nano FROM sluicegate_windows"
        " WHERE namespace = ? AND period = ? AND time_zone = ? AND window_start = ?",
        (plan.key.namespace, plan.key.period, plan.key.time_zone, to_micros(plan.key.start)),
    ).fetchone()
    if row is None:
        return 0, 0
    window_id, spent, reserved = row
    expired = cursor.execute(
        "SELECT coalesce(sum(r.amount_nano), 0) FROM sluicegate_reservations AS r, json_each(r.window_ids) AS held"
        " WHERE r.namespace = ? AND r.state = 'held' AND r.expires_at <= ? AND held.value = ?",
        (plan.key.namespace, now, window_id),
    ).fetchone()[0]
    return int(spent), int(reserved) - int(expired)
