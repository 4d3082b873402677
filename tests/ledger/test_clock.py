"""The ledger clock (``sluicegate.ledger._clock``) without a database.

Covers: OffsetClock reading its source once per refresh period, interpolating with the
monotonic clock, never going backwards, and naive datetimes being rejected.
"""

from __future__ import annotations

import datetime

import pytest

from sluicegate.ledger import _clock

BASE = datetime.datetime(2025, 3, 14, 12, 0, tzinfo=datetime.timezone.utc)


class Source:
    """A clock source that counts its reads and returns ``value``."""

    def __init__(self) -> None:
        self.reads = 0
        self.value = BASE

    async def __call__(self) -> datetime.datetime:
        self.reads += 1
        return self.value


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(_clock.time, "monotonic", lambda: now[0])
    return now


async def test_offset_clock_reads_source_once_per_period(monotonic: list[float]) -> None:
    source = Source()
    clock = _clock.OffsetClock(source, refresh_seconds=30)
    assert await clock() == BASE
    monotonic[0] += 10
    assert await clock() == BASE + datetime.timedelta(seconds=10)
    assert source.reads == 1
    monotonic[0] += 25
    source.value = BASE + datetime.timedelta(seconds=36)
    assert await clock() == BASE + datetime.timedelta(seconds=36)
    assert source.reads == 2


async def test_offset_clock_never_goes_backwards(monotonic: list[float]) -> None:
    source = Source()
    clock = _clock.OffsetClock(source, refresh_seconds=30)
    await clock()
    monotonic[0] += 29
    assert await clock() == BASE + datetime.timedelta(seconds=29)
    monotonic[0] += 2
    source.value = BASE + datetime.timedelta(seconds=27)  # the re-read finds the source behind
    assert await clock() == BASE + datetime.timedelta(seconds=29)
    monotonic[0] += 3
    assert await clock() == BASE + datetime.timedelta(seconds=30)
    assert source.reads == 2


async def test_offset_clock_rejects_naive_source() -> None:
    async def naive() -> datetime.datetime:
        return datetime.datetime(2025, 3, 14, 12, 0)

    with pytest.raises(ValueError, match="naive datetime"):
        await _clock.OffsetClock(naive)()


async def test_host_clock_is_aware_utc() -> None:
    value = await _clock.host_clock()
    assert value.utcoffset() == datetime.timedelta(0)
