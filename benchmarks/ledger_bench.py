"""Measure ledger throughput: reservations per second on PostgreSQL and on SQLite.

Each scenario runs ``--tasks`` concurrent asyncio tasks in one process until
``--operations`` operations are done, against namespaces that each have a Daily and a
Monthly budget (two window counters per call) with ceilings too high to be reached:

* ``reserve+settle``: a reserve followed by a settle that writes the attempt row;
  the number reported is pairs per second;
* ``reserve``: reserves only, each left held until its TTL;

on one namespace (every task contends for the same window rows) and spread over 100
namespaces. PostgreSQL runs in a temporary database created on ``--postgres-url`` and
dropped afterwards; SQLite in a temporary file.

Each scenario runs ``--repeat`` times and the median rate is reported with the range,
because other work on a small machine moves single runs by a factor of two or more.

Usage: ``python benchmarks/ledger_bench.py [--tasks 16] [--operations 4000] [--repeat 3] [--markdown]``.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

import asyncpg

from sluicegate import api, ledger

NAMESPACE_COUNT = 100


def budgets_of(namespace: str) -> list[ledger.BudgetRef]:
    return [
        ledger.BudgetRef(namespace, name, api.parse_usd("1000000"), api.Period(period), "UTC", api.OnExceeded.REJECT)
        for name, period in (("daily", "Daily"), ("monthly", "Monthly"))
    ]


def attempt_of(namespace: str, index: int) -> ledger.Attempt:
    return ledger.Attempt(
        request_id=ledger.RequestId(f"bench-{index}"),
        attempt_id=f"bench-{index}-1",
        namespace=namespace,
        route="cloud",
        provider="openai",
        model="gpt-4.1",
        decision=ledger.Decision.CLASSIFIED,
        outcome=ledger.Outcome.OK,
        prompt_tokens=1200,
        completion_tokens=300,
        estimated_nano=5_000_000,
        charged_nano=4_200_000,
        latency_ms=850.0,
        signals=("code",),
    )


async def run_scenario(target: ledger.Ledger, *, namespaces: int, settle: bool, tasks: int, operations: int) -> tuple[float, float]:
    """Return (operations per second, median latency in ms) of one scenario."""
    names = [f"bench-{uuid.uuid4().hex[:8]}-{index}" for index in range(namespaces)]
    budgets = {name: budgets_of(name) for name in names}
    for name in names:  # create the window rows outside the measurement
        await target.reserve(namespace=name, budgets=budgets[name], amount_nano=0, ttl_seconds=1)
    counter = iter(range(operations))
    latencies: list[float] = []

    async def worker() -> None:
        for index in counter:
            name = names[index % namespaces]
            started = time.perf_counter()
            reservation = await target.reserve(namespace=name, budgets=budgets[name], amount_nano=5_000_000, ttl_seconds=300)
            if settle:
                await target.settle(reservation, attempt_of(name, index))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    return operations / elapsed, statistics.median(latencies) * 1000


Row = tuple[str, str, str, list[float], float]


async def bench_backend(label: str, url: str, args: argparse.Namespace) -> list[Row]:
    """Run every scenario ``--repeat`` times; return the rates of the runs and the median latency of the middle run."""
    target = ledger.connect(url)
    rows = []
    try:
        await target.migrate()
        for scope, namespaces in (("1 namespace", 1), (f"{NAMESPACE_COUNT} namespaces", NAMESPACE_COUNT)):
            for operation, settle in (("reserve+settle", True), ("reserve", False)):
                runs = [
                    await run_scenario(target, namespaces=namespaces, settle=settle, tasks=args.tasks, operations=args.operations)
                    for _ in range(args.repeat)
                ]
                runs.sort()
                rates = [rate for rate, _ in runs]
                median_latency = runs[len(runs) // 2][1]
                rows.append((label, scope, operation, rates, median_latency))
                print(
                    f"{label:10} {scope:14} {operation:15} {statistics.median(rates):8.0f}/s "
                    f"(runs {', '.join(f'{rate:.0f}' for rate in rates)})  median latency {median_latency:6.2f} ms",
                    file=sys.stderr,
                )
    finally:
        await target.close()
    return rows


async def main(args: argparse.Namespace) -> None:
    database = f"sg_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.postgres_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    rows = []
    try:
        base, _, _ = args.postgres_url.rpartition("/")
        rows += await bench_backend("PostgreSQL", f"{base}/{database}", args)
        with tempfile.TemporaryDirectory() as folder:
            rows += await bench_backend("SQLite", f"sqlite:///{pathlib.Path(folder) / 'ledger.db'}", args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    if args.markdown:
        print(f"| backend | namespaces | operation | per second, median of {args.repeat} | range | median latency |")
        print("| --- | --- | --- | ---: | ---: | ---: |")
        for label, scope, operation, rates, latency in rows:
            spread = f"{min(rates):,.0f}–{max(rates):,.0f}"
            print(f"| {label} | {scope} | {operation} | {statistics.median(rates):,.0f} | {spread} | {latency:.2f} ms |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server on which a temporary database is created (default: %(default)s)",
    )
    parser.add_argument("--tasks", type=int, default=16, help="concurrent asyncio tasks (default: %(default)s)")
    parser.add_argument("--operations", type=int, default=4000, help="operations per scenario (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scenario (default: %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table on stdout")
    asyncio.run(main(parser.parse_args()))
