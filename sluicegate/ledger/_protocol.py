"""The Ledger protocol: two-phase budget accounting shared by every gateway replica.

A call is admitted in two phases. **Reserve** holds the call's estimated cost against
every budget of its namespace at once: all have room, or nothing is held. **Settle**
turns the hold into what the provider billed (``reserved -= held``, ``spent += charged``),
and **release** returns it unused. A hold that is neither settled nor released within its
TTL expires, and whoever sees it expired gives it back, so a crashed gateway's holds
return. **Record** writes an attempt that had no reservation: a refusal, a cache hit or a
$0 call.

Exceptions::

    LedgerError
    +-- LedgerUnavailable      the database cannot be reached; callers fail closed
    +-- BudgetExceeded         a budget lacks room; carries every budget that does
    +-- ReservationNotFound    settle, release or renew of an unknown or finished hold
        +-- ReservationExpired the hold's TTL had passed; a settle still recorded its charge

Amounts are integer nano-USD. Timestamps are timezone-aware UTC datetimes from the
ledger's clock (``Ledger.now``), which is the database's ``now()`` unless a test replaces it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Sequence
from typing import NewType, Protocol

from sluicegate import api

ReservationId = NewType("ReservationId", str)
RequestId = NewType("RequestId", str)


class LedgerError(Exception):
    """Base of every ledger failure."""


class LedgerUnavailable(LedgerError):
    """The ledger's database cannot be reached or did not answer in time."""


class ReservationNotFound(LedgerError):
    """A reservation that does not exist, or was already settled, released or expired."""


class ReservationExpired(ReservationNotFound):
    """A settle or release that came after the reservation's TTL had passed.

    The provider billed the call all the same, so the ledger still added the attempt's
    ``charged_nano`` to spent on the reservation's windows and wrote the attempt row
    (``recorded`` is True) before raising this. Do not record the attempt again.
    """

    def __init__(self, message: str, *, reservation_id: str, recorded: bool) -> None:
        super().__init__(message)
        self.reservation_id = reservation_id
        self.recorded = recorded


@dataclasses.dataclass(frozen=True)
class BudgetRef:
    """One budget as the ledger needs it: identity, ceiling in nano-USD and window rules."""

    namespace: str
    name: str
    ceiling_nano: int
    period: api.Period
    time_zone: str
    on_exceeded: api.OnExceeded

    @classmethod
    def from_budget(cls, budget: api.LLMBudget) -> BudgetRef:
        """Build from a validated LLMBudget document."""
        return cls(
            namespace=budget.metadata.namespace or "",
            name=budget.metadata.name,
            ceiling_nano=budget.spec.ceiling_nano,
            period=budget.spec.period,
            time_zone=budget.spec.time_zone,
            on_exceeded=budget.spec.on_exceeded,
        )


@dataclasses.dataclass(frozen=True)
class BudgetState:
    """A budget's current window as read from the ledger."""

    budget: BudgetRef
    window_start: datetime.datetime
    window_end: datetime.datetime | None
    spent_nano: int
    reserved_nano: int

    @property
    def remaining_nano(self) -> int:
        """What is left to reserve; never negative."""
        return max(0, self.budget.ceiling_nano - self.spent_nano - self.reserved_nano)


class BudgetExceeded(LedgerError):
    """A reservation that does not fit; ``lacking`` lists each budget without room."""

    def __init__(self, *, namespace: str, amount_nano: int, lacking: Sequence[BudgetState]) -> None:
        self.namespace = namespace
        self.amount_nano = amount_nano
        self.lacking = tuple(lacking)
        names = ", ".join(
            f"{state.budget.name} (spent ${api.format_usd(state.spent_nano)}, reserved "
            f"${api.format_usd(state.reserved_nano)}, ceiling ${api.format_usd(state.budget.ceiling_nano)})"
            for state in self.lacking
        )
        super().__init__(f"namespace {namespace!r} cannot reserve ${api.format_usd(amount_nano)}: no room in {names}")


@dataclasses.dataclass(frozen=True)
class Reservation:
    """An amount held against every budget of a namespace until settled, released or expired."""

    id: ReservationId
    namespace: str
    amount_nano: int
    reserved_at: datetime.datetime
    expires_at: datetime.datetime


class Outcome(str, enum.Enum):
    """The end state of an attempt."""

    OK = "ok"
    REJECTED = "rejected"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_TRUNCATED = "upstream_truncated"
    CLIENT_DISCONNECTED = "client_disconnected"
    CACHE_HIT = "cache_hit"
    LOOP_DETECTED = "loop_detected"


class Decision(str, enum.Enum):
    """The reason the responding route was chosen; the value of the X-Sluicegate-Decision header."""

    CLASSIFIED = "classified"
    FORCED = "forced"
    DOWNGRADED = "downgraded"
    ESCALATED = "escalated"
    CACHE_HIT = "cache_hit"


class UsageSource(str, enum.Enum):
    """The source of an attempt's token counts."""

    PROVIDER = "provider"
    ESTIMATED = "estimated"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One ledger row: a call attempt, a refusal or a cache hit.

    ``charged_nano`` is what counts against budgets; ``estimated_nano`` is what was
    reserved (0 when nothing was), kept beside it so reports can show estimate quality.
    ``escalated_from`` links an escalation to the local attempt that failed.
    """

    request_id: RequestId
    attempt_id: str
    namespace: str
    route: str  # "local", "cloud" or "" when refused before a route was chosen
    provider: str
    model: str
    decision: Decision
    outcome: Outcome
    usage_source: UsageSource = UsageSource.PROVIDER
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    estimated_nano: int = 0
    charged_nano: int = 0
    escalated_from: str | None = None
    latency_ms: float = 0.0
    signals: tuple[str, ...] = ()
    error: str = ""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True)
class AttemptRow:
    """An Attempt as stored, with its ledger timestamp."""

    attempt: Attempt
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself, only its id and owner."""

    key_id: str
    namespace: str
    created_at: datetime.datetime
    revoked_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class ReportRow:
    """Spend of one namespace, budget window, route and model."""

    namespace: str
    budget: str
    period: str
    window_start: datetime.datetime
    window_end: datetime.datetime | None
    route: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    estimated_nano: int
    charged_nano: int


class Ledger(Protocol):
    """Budget accounting that every gateway replica shares; see the module docstring."""

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run at every start and from many processes."""

    async def close(self) -> None:
        """Close connections."""

    async def now(self) -> datetime.datetime:
        """Return the ledger's clock: the database's now(), unless a test replaced it."""

    async def sync_budgets(self, budgets: Sequence[BudgetRef]) -> None:
        """Upsert budget definitions from config; spend counters are never reset by this."""

    async def reserve(
        self,
        *,
        namespace: str,
        budgets: Sequence[BudgetRef],
        amount_nano: int,
        ttl_seconds: float,
    ) -> Reservation:
        """Hold ``amount_nano`` against every budget at once, or raise BudgetExceeded and hold nothing."""

    async def settle(self, reservation: Reservation, attempt: Attempt) -> None:
        """Replace the hold with ``attempt.charged_nano`` in every window it was taken from, and write the row."""

    async def release(self, reservation: Reservation, attempt: Attempt | None = None) -> None:
        """Return the hold unused, and write the row if one is given.

        A row whose ``charged_nano`` is not 0 is charged as ``settle`` would charge it, so
        a call the provider billed is never dropped by releasing instead of settling.
        """

    async def renew(self, reservation: Reservation, *, ttl_seconds: float) -> Reservation:
        """Extend a hold's TTL from now, for long streams."""

    async def record(self, attempt: Attempt, *, budgets: Sequence[BudgetRef] | None = None) -> None:
        """Write a row that has no reservation (a refusal, a cache hit or a $0 call).

        A non-zero ``charged_nano`` is added to spent on the current windows of ``budgets``,
        or of the namespace's budgets stored by ``sync_budgets`` when ``budgets`` is None.
        """

    async def budget_states(self, budgets: Sequence[BudgetRef]) -> list[BudgetState]:
        """Return each budget's current window with its spent and reserved amounts."""

    async def attempts(self, *, namespace: str | None = None, limit: int = 1000) -> list[AttemptRow]:
        """Return the newest attempt rows first."""

    async def create_api_key(self, namespace: str) -> tuple[str, str]:
        """Create a key for ``namespace``; return ``(key_id, key)``. Only the key's hash is stored."""

    async def resolve_api_key(self, key: str) -> str | None:
        """Return the namespace of a valid, unrevoked key, or None."""

    async def list_api_keys(self, namespace: str | None = None) -> list[ApiKeyInfo]:
        """List keys without their secrets."""

    async def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key by id; return False when there is no such unrevoked key."""

    async def report(
        self,
        *,
        namespace: str | None = None,
        budgets: Sequence[BudgetRef] | None = None,
    ) -> list[ReportRow]:
        """Sum charged spend per namespace, budget window, route and model.

        Windows come from ``budgets`` when given, else from the budgets stored by
        ``sync_budgets``. A namespace without budgets is reported under budget "" with
        the Total period.
        """
