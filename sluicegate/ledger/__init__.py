"""The budget ledger: the Ledger protocol and its PostgreSQL and SQLite backends."""

from sluicegate.ledger._clock import Clock
from sluicegate.ledger._connect import connect
from sluicegate.ledger._postgres import PostgresLedger
from sluicegate.ledger._postgres import create_pool as create_postgres_pool
from sluicegate.ledger._protocol import (
    ApiKeyInfo,
    Attempt,
    AttemptRow,
    BudgetExceeded,
    BudgetRef,
    BudgetState,
    Decision,
    Ledger,
    LedgerError,
    LedgerUnavailable,
    Outcome,
    ReportRow,
    RequestId,
    Reservation,
    ReservationExpired,
    ReservationId,
    ReservationNotFound,
    UsageSource,
)
from sluicegate.ledger._sqlite import SqliteLedger
from sluicegate.ledger._windows import TOTAL_WINDOW_START, WindowKey, window_bounds, window_key

__all__ = [
    "ApiKeyInfo",
    "Attempt",
    "AttemptRow",
    "BudgetExceeded",
    "BudgetRef",
    "BudgetState",
    "Clock",
    "Decision",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "Outcome",
    "PostgresLedger",
    "ReportRow",
    "RequestId",
    "Reservation",
    "ReservationExpired",
    "ReservationId",
    "ReservationNotFound",
    "SqliteLedger",
    "TOTAL_WINDOW_START",
    "UsageSource",
    "WindowKey",
    "connect",
    "create_postgres_pool",
    "window_bounds",
    "window_key",
]
