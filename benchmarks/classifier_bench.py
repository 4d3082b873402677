"""Measure how long the zero-token classifier takes per request.

The gateway classifies every request before anything else, so this is a floor on its
added latency. Each case runs ``classify`` many times on one prompt and reports the median
and the 99th percentile of single calls, timed with ``time.perf_counter_ns``. The garbage
collector stays on, as it is in the gateway.

Run: ``python benchmarks/classifier_bench.py [--runs N]``. It prints a Markdown table for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate import api, routing

SHORT_PROMPT = (
    "Our checkout page got slow after the last deploy. Compare caching the cart in Redis with "
    "adding an index on orders.user_id, and tell me which to try first and what to measure."
)[:200]

_PROSE = (
    "The quarterly report covers revenue, churn and support volume for every region. "
    "Numbers are final except for the last week, which finance will confirm on Monday. "
)
_CODE = (
    "def total(orders):\n"
    "    result = 0\n"
    "    for order in orders:\n"
    "        if order.status == 'paid':\n"
    "            result += order.amount\n"
    "    return result\n"
)


def _long_prompt(size: int, *, code: bool = True) -> str:
    # A request at both edges and a paste in the middle, as agents send. With prose alone,
    # every code check reads the whole window because none finds code early.
    head = "Review the text below and explain why the totals drift.\n"
    tail = "\nWhat is the root cause?"
    body = ""
    while len(head) + len(body) + len(tail) < size:
        body += _PROSE + (_CODE if code else "")
    return head + body[: size - len(head) - len(tail)] + tail


def _conversation(size: int) -> list[dict[str, Any]]:
    turn = _long_prompt(size // 8)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful reviewer."}]
    for _ in range(3):
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    messages.append({"role": "user", "content": SHORT_PROMPT})
    return messages


def measure(messages: Sequence[Mapping[str, Any]], *, runs: int, settings: api.Classifier) -> tuple[float, float]:
    """Return the median and 99th percentile of one classify call, in microseconds."""
    for _ in range(min(runs, 1000)):
        routing.classify(messages=messages, settings=settings)
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        routing.classify(messages=messages, settings=settings)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples) / 1000, p99 / 1000


def main() -> None:
    """Run every case and print the results as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="timed calls per case (default: 20000)")
    args = parser.parse_args()

    defaults = api.Classifier()
    patterns = api.Classifier(extra_complex_patterns=[r"(?i)\bcontract\b", r"\bGDPR\b", r"(?i)invoice #\d+"])
    cases = [
        ("200-character prompt", [{"role": "user", "content": SHORT_PROMPT}], defaults),
        ("8 KB prompt, prose and code", [{"role": "user", "content": _long_prompt(8192)}], defaults),
        ("8 KB prompt, prose only", [{"role": "user", "content": _long_prompt(8192, code=False)}], defaults),
        ("8 KB prompt, 3 extra patterns", [{"role": "user", "content": _long_prompt(8192)}], patterns),
        ("8 KB conversation of 8 messages", _conversation(8192), defaults),
        ("64 KB prompt", [{"role": "user", "content": _long_prompt(65536)}], defaults),
    ]
    print(f"Python {platform.python_version()}, {args.runs} timed calls per case\n")
    print("| case | median (us) | p99 (us) |")
    print("| --- | ---: | ---: |")
    for name, messages, settings in cases:
        median, p99 = measure(messages, runs=args.runs, settings=settings)
        print(f"| {name} | {median:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
