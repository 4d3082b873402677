"""The ledger's clock: one replaceable coroutine that returns an aware UTC datetime.

Windows and TTLs are decided by this clock, never by each caller's host clock, so every
gateway replica puts a call made at 23:59:59 in the same window. On PostgreSQL the clock
is the server's ``clock_timestamp()``. Reading it on every reserve would cost a round
trip, so ``OffsetClock`` reads it once and then adds the progress of ``time.monotonic()``,
re-reading every 30 seconds to follow server clock adjustments.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], Awaitable[datetime.datetime]]

# How often OffsetClock re-reads its source. Host and server clocks drift apart by
# milliseconds per hour at most, so 30 seconds keeps the error far below a window's size
# while adding one query per 30 seconds per process.
DEFAULT_REFRESH_SECONDS = 30.0


def require_aware(value: datetime.datetime, *, source: str) -> datetime.datetime:
    """Return ``value`` in UTC; raise ValueError if it has no time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{source} returned the naive datetime {value.isoformat()}: return an aware UTC datetime")
    return value.astimezone(datetime.timezone.utc)


async def host_clock() -> datetime.datetime:
    """Return the host's current time in UTC (the SQLite ledger's clock)."""
    return datetime.datetime.now(datetime.timezone.utc)


class OffsetClock:
    """A clock that reads ``source`` once per ``refresh_seconds`` and interpolates with ``time.monotonic()``.

    The value never goes backwards within one OffsetClock, even when a re-read finds the
    source a few milliseconds behind the interpolation.
    """

    def __init__(self, source: Clock, *, refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> None:
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._base: datetime.datetime | None = None
        self._base_monotonic = 0.0
        self._refreshing = False
        self._last = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

    async def __call__(self) -> datetime.datetime:
        stale = time.monotonic() - self._base_monotonic >= self._refresh_seconds
        if self._base is None or (stale and not self._refreshing):
            await self._refresh()
        assert self._base is not None  # set by _refresh, which raises otherwise
        value = self._base + datetime.timedelta(seconds=time.monotonic() - self._base_monotonic)
        self._last = max(self._last, value)
        return self._last

    async def _refresh(self) -> None:
        self._refreshing = True
        try:
            before = time.monotonic()
            value = require_aware(await self._source(), source="the clock source")
            after = time.monotonic()
        finally:
            self._refreshing = False
        # The server read its clock somewhere inside the round trip; its middle is the best guess.
        self._base = value
        self._base_monotonic = (before + after) / 2
