"""The ledger under several processes at once, on PostgreSQL and on one shared SQLite file.

Covers: 4 processes x 100 concurrent $0.10 reservations against one $5.00 budget
(exactly 50 succeed, spent + reserved never passes the ceiling while a sampler reads,
exact final totals); holds of a process killed with SIGKILL coming back after their TTL;
4 processes migrating one empty database at once; migrations run twice.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import sys

import pytest

from sluicegate import api, ledger
from sluicegate.ledger import _migrations
from .conftest import query

WORKER = pathlib.Path(__file__).with_name("ledger_worker.py")
PROCESSES = 4
CALLS_PER_PROCESS = 100
AMOUNT = api.parse_usd("0.10")
CEILING = api.parse_usd("5.00")


def total_budget() -> ledger.BudgetRef:
    return ledger.BudgetRef(
        namespace="team-a",
        name="total",
        ceiling_nano=CEILING,
        period=api.Period.TOTAL,
        time_zone="UTC",
        on_exceeded=api.OnExceeded.REJECT,
    )


async def start_worker(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    return line.decode().strip()


async def start_together(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        assert await read_line(worker) == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()


async def test_concurrent_reservations_never_pass_ceiling(ledger_url: str) -> None:
    sampler = ledger.connect(ledger_url)
    await sampler.migrate()
    workers = [await start_worker("contend", ledger_url, "--count", str(CALLS_PER_PROCESS)) for _ in range(PROCESSES)]
    samples: list[tuple[int, int]] = []
    try:
        await start_together(workers)
        finished = asyncio.gather(*(read_line(worker) for worker in workers))
        while not finished.done():
            [state] = await sampler.budget_states([total_budget()])
            samples.append((state.spent_nano, state.reserved_nano))
            await asyncio.sleep(0.001)
        results = [json.loads(line) for line in await finished]
        [final] = await sampler.budget_states([total_budget()])
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
        await sampler.close()

    assert sum(result["reserved"] for result in results) == 50
    assert sum(result["rejected"] for result in results) == PROCESSES * CALLS_PER_PROCESS - 50
    assert samples, "the sampler read nothing while the workers ran"
    assert any(reserved > 0 for _, reserved in samples), "no sample saw a hold in flight"
    over = [sample for sample in samples if sample[0] + sample[1] > CEILING]
    assert over == []
    assert (final.spent_nano, final.reserved_nano) == (CEILING, 0)
    charged = await query(ledger_url, "SELECT count(*), sum(charged_nano) FROM sluicegate_attempts WHERE outcome = 'ok'")
    assert charged == [(50, CEILING)]
    assert await query(ledger_url, "SELECT count(*) FROM sluicegate_attempts") == [(PROCESSES * CALLS_PER_PROCESS,)]


async def test_killed_process_holds_return_after_ttl(ledger_url: str) -> None:
    observer = ledger.connect(ledger_url)
    await observer.migrate()

    async def after_ttl() -> datetime.datetime:
        return await observer.now() + datetime.timedelta(seconds=61)

    later = ledger.connect(ledger_url, clock=after_ttl)
    holder = await start_worker("hold", ledger_url, "--count", "3", "--amount-nano", str(CEILING // 3), "--ttl", "60")
    try:
        held_ids = json.loads(await read_line(holder))
        holder.kill()  # SIGKILL: the process cannot release anything
        assert await holder.wait() == -9

        [now_state] = await observer.budget_states([total_budget()])
        assert now_state.reserved_nano == 3 * (CEILING // 3)
        with pytest.raises(ledger.BudgetExceeded):
            await observer.reserve(namespace="team-a", budgets=[total_budget()], amount_nano=CEILING // 3, ttl_seconds=60)

        [later_state] = await later.budget_states([total_budget()])
        assert later_state.reserved_nano == 0
        await later.reserve(namespace="team-a", budgets=[total_budget()], amount_nano=CEILING, ttl_seconds=60)
        ids = ", ".join(f"'{held_id}'" for held_id in held_ids)
        states = await query(ledger_url, f"SELECT state FROM sluicegate_reservations WHERE id IN ({ids})")
        assert states == [("expired",)] * 3
        assert await query(ledger_url, "SELECT reserved_nano FROM sluicegate_windows") == [(CEILING,)]
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await later.close()
        await observer.close()


async def test_concurrent_migrations_apply_once(ledger_url: str) -> None:
    workers = [await start_worker("migrate", ledger_url) for _ in range(PROCESSES)]
    try:
        await start_together(workers)
        outputs = await asyncio.gather(*(read_line(worker) for worker in workers))
        codes = await asyncio.gather(*(worker.wait() for worker in workers))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert outputs == ["migrated"] * PROCESSES
    assert codes == [0] * PROCESSES
    backend = "postgres" if ledger_url.startswith("postgresql") else "sqlite"
    expected = [(migration.version, migration.title) for migration in _migrations.migrations(backend)]
    assert await query(ledger_url, "SELECT version, title FROM sluicegate_schema_version ORDER BY version") == expected


async def test_migrate_twice_changes_nothing(ledger_url: str) -> None:
    target = ledger.connect(ledger_url)
    try:
        await target.migrate()
        key_id, key = await target.create_api_key("team-a")
        await target.migrate()
        assert await target.resolve_api_key(key) == "team-a"
    finally:
        await target.close()
    backend = "postgres" if ledger_url.startswith("postgresql") else "sqlite"
    count = len(_migrations.migrations(backend))
    assert await query(ledger_url, "SELECT count(*) FROM sluicegate_schema_version") == [(count,)]


async def test_newer_schema_is_refused(ledger_url: str) -> None:
    target = ledger.connect(ledger_url)
    try:
        await target.migrate()
        applied_at = "0" if ledger_url.startswith("sqlite") else "now()"
        await query(
            ledger_url,
            f"INSERT INTO sluicegate_schema_version (version, title, applied_at) VALUES (999, 'future', {applied_at})",
        )
        with pytest.raises(ledger.LedgerError, match="version 999, newer than this sluicegate knows"):
            await target.migrate()
    finally:
        await target.close()
