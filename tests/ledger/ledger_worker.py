"""A ledger client that the concurrency tests run as a separate process.

Usage: ``python ledger_worker.py MODE URL [options]``, where MODE is

* ``contend``: print "ready", wait for a line on stdin, then run ``--count`` concurrent
  reserve-then-settle calls of ``--amount-nano`` against one Total budget with
  ``--ceiling-nano``; print ``{"reserved": ..., "rejected": ...}`` as JSON;
* ``hold``: reserve ``--count`` holds of ``--amount-nano`` with ``--ttl`` seconds, print
  their ids as a JSON list, then wait on stdin until killed (at most 120 seconds);
* ``migrate``: print "ready", wait for a line on stdin, migrate, print "migrated".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sluicegate import api, ledger

NAMESPACE = "team-a"
HOLD_LIMIT_SECONDS = 120


def total_budget(ceiling_nano: int) -> ledger.BudgetRef:
    return ledger.BudgetRef(
        namespace=NAMESPACE,
        name="total",
        ceiling_nano=ceiling_nano,
        period=api.Period.TOTAL,
        time_zone="UTC",
        on_exceeded=api.OnExceeded.REJECT,
    )


def attempt(index: int, *, charged_nano: int, outcome: ledger.Outcome) -> ledger.Attempt:
    return ledger.Attempt(
        request_id=ledger.RequestId(f"request-{index}"),
        attempt_id=f"attempt-{index}",
        namespace=NAMESPACE,
        route="cloud",
        provider="openai",
        model="gpt-4.1",
        decision=ledger.Decision.CLASSIFIED,
        outcome=outcome,
        estimated_nano=charged_nano,
        charged_nano=charged_nano,
    )


async def wait_for_go() -> None:
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)


async def contend(target: ledger.Ledger, args: argparse.Namespace) -> None:
    budget = total_budget(args.ceiling_nano)
    await target.migrate()
    await target.budget_states([budget])  # open connections before the start signal
    await wait_for_go()

    async def one(index: int) -> bool:
        try:
            reservation = await target.reserve(
                namespace=NAMESPACE, budgets=[budget], amount_nano=args.amount_nano, ttl_seconds=60
            )
        except ledger.BudgetExceeded:
            await target.record(attempt(index, charged_nano=0, outcome=ledger.Outcome.REJECTED))
            return False
        await asyncio.sleep(0.002)  # keep the hold while other calls reserve
        await target.settle(reservation, attempt(index, charged_nano=args.amount_nano, outcome=ledger.Outcome.OK))
        return True

    results = await asyncio.gather(*(one(index) for index in range(args.count)))
    print(json.dumps({"reserved": sum(results), "rejected": len(results) - sum(results)}), flush=True)


async def hold(target: ledger.Ledger, args: argparse.Namespace) -> None:
    budget = total_budget(args.ceiling_nano)
    await target.migrate()
    held = [
        await target.reserve(namespace=NAMESPACE, budgets=[budget], amount_nano=args.amount_nano, ttl_seconds=args.ttl)
        for _ in range(args.count)
    ]
    print(json.dumps([reservation.id for reservation in held]), flush=True)
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), timeout=HOLD_LIMIT_SECONDS)


async def migrate(target: ledger.Ledger, args: argparse.Namespace) -> None:
    await wait_for_go()
    await target.migrate()
    print("migrated", flush=True)


async def main(args: argparse.Namespace) -> None:
    target = ledger.connect(args.url)
    try:
        await {"contend": contend, "hold": hold, "migrate": migrate}[args.mode](target, args)
    finally:
        await target.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("contend", "hold", "migrate"))
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--amount-nano", type=int, default=100_000_000)
    parser.add_argument("--ceiling-nano", type=int, default=5_000_000_000)
    parser.add_argument("--ttl", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
