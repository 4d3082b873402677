"""``sluicegate keys`` and ``sluicegate ledger``: API keys and spend reports on the command line.

Every command opens the ledger named by ``--ledger``, else ``SLUICEGATE_LEDGER_URL``, else
``sqlite:///./sluicegate-ledger.db``, applies missing migrations, and closes it again.
Output meant for scripts goes to stdout (a new key, a JSON report); everything meant for
a person reading along goes to stderr. Exit codes: 0 success, 1 a ledger or lookup
failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import pathlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sluicegate import api
from sluicegate.ledger._connect import connect, redact_url, sqlite_path
from sluicegate.ledger._protocol import AttemptRow, BudgetRef, Ledger, LedgerError, ReportRow

DEFAULT_LEDGER_URL = "sqlite:///./sluicegate-ledger.db"

_Command = Callable[[argparse.Namespace, Ledger], Awaitable[int]]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Settings of the ledger commands that may come from the environment."""

    # SLUICEGATE_LEDGER_URL; an environment variable keeps a DSN's password out of process
    # lists. Defaults to a SQLite file in the working directory, the standalone default.
    ledger_url: str = DEFAULT_LEDGER_URL


def settings() -> Settings:
    """Read the commands' settings from the environment."""
    return Settings(ledger_url=os.getenv("SLUICEGATE_LEDGER_URL") or DEFAULT_LEDGER_URL)


def add_parser(subparsers: Any) -> None:
    """Register ``keys`` and ``ledger`` on the top-level ``sluicegate`` parser."""
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys", description="Manage the API keys of namespaces.")
    key_actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)

    create = key_actions.add_parser(
        "create", help="create a key and print it once", description="Create an API key; stdout gets only the key."
    )
    create.add_argument("--namespace", required=True, help="namespace the key belongs to")
    _add_ledger_option(create)
    create.set_defaults(handler=_handler(_create_key))

    listing = key_actions.add_parser("list", help="list key ids, never the keys", description="List API keys without secrets.")
    listing.add_argument("--namespace", help="list only this namespace's keys")
    _add_ledger_option(listing)
    listing.set_defaults(handler=_handler(_list_keys))

    revoke = key_actions.add_parser("revoke", help="revoke a key by id", description="Revoke an API key by its id.")
    revoke.add_argument("key_id", metavar="KEY_ID", help="id printed by `keys create` and `keys list`")
    _add_ledger_option(revoke)
    revoke.set_defaults(handler=_handler(_revoke_key))

    ledger = subparsers.add_parser("ledger", help="report spend and manage the ledger", description="Inspect the budget ledger.")
    ledger_actions = ledger.add_subparsers(dest="ledger_action", metavar="ACTION", required=True)

    report = ledger_actions.add_parser(
        "report",
        help="print spend per namespace, budget window, route and model",
        description="Print spend per namespace, budget window, route and model, in USD.",
    )
    report.add_argument("--namespace", help="report only this namespace")
    report.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    report.add_argument(
        "--config",
        metavar="PATH",
        help="YAML file or folder of LLMBudget documents whose windows to report; "
        "default: the budgets the gateway last stored in the ledger",
    )
    _add_ledger_option(report)
    report.set_defaults(handler=_handler(_report))

    attempts = ledger_actions.add_parser(
        "attempts",
        help="print attempt rows, newest first",
        description="Print the ledger's attempt rows, newest first: one per call attempt, refusal or cache hit.",
    )
    attempts.add_argument("--namespace", help="only this namespace's rows")
    attempts.add_argument("--request-id", help="only the rows of this request (the X-Sluicegate-Request-Id header)")
    attempts.add_argument("--limit", type=int, default=50, help="newest rows to read (default: 50)")
    attempts.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    _add_ledger_option(attempts)
    attempts.set_defaults(handler=_handler(_attempts))

    migrate = ledger_actions.add_parser(
        "migrate", help="create or upgrade the ledger schema", description="Apply missing ledger migrations."
    )
    _add_ledger_option(migrate)
    migrate.set_defaults(handler=_handler(_migrated))


def _add_ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        metavar="URL",
        help="postgresql://... or sqlite:///PATH (default: $SLUICEGATE_LEDGER_URL, else " + DEFAULT_LEDGER_URL + ")",
    )


def _handler(command: _Command) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        url = args.ledger or settings().ledger_url
        args.ledger_url = url
        try:
            ledger = connect(url)
            _check_sqlite_exists(url, creates=command in (_create_key, _migrated))
        except ValueError as error:
            return _fail(str(error), code=2)
        try:
            return asyncio.run(_run(command, args, ledger))
        except LedgerError as error:
            return _fail(f"ledger {redact_url(url)}: {error}", code=1)
        except (ValueError, api.ConfigError) as error:
            return _fail(str(error), code=2)

    return handle


def _check_sqlite_exists(url: str, *, creates: bool) -> None:
    # Reading commands must not create an empty SQLite ledger beside the real one and report nothing.
    if creates or not url.lower().startswith("sqlite:///") or sqlite_path(url) == ":memory:":
        return
    path = pathlib.Path(sqlite_path(url))
    if not path.exists():
        raise ValueError(
            f"no ledger at {path.resolve()}: pass the gateway's ledger with --ledger URL (or SLUICEGATE_LEDGER_URL), "
            "or run this in the folder where the gateway keeps sluicegate-ledger.db"
        )


async def _run(command: _Command, args: argparse.Namespace, ledger: Ledger) -> int:
    try:
        await ledger.migrate()
        return await command(args, ledger)
    finally:
        await ledger.close()


def _fail(message: str, *, code: int) -> int:
    print(f"sluicegate: error: {message}", file=sys.stderr)
    return code


async def _create_key(args: argparse.Namespace, ledger: Ledger) -> int:
    key_id, key = await ledger.create_api_key(args.namespace)
    print(key)
    print(f"created key {key_id} for namespace {args.namespace} in ledger {redact_url(args.ledger_url)}; "
          "the key is shown only this once", file=sys.stderr)
    return 0


async def _list_keys(args: argparse.Namespace, ledger: Ledger) -> int:
    keys = await ledger.list_api_keys(args.namespace)
    rows = [[key.key_id, key.namespace, _timestamp(key.created_at), _timestamp(key.revoked_at)] for key in keys]
    print(_table(["KEY ID", "NAMESPACE", "CREATED", "REVOKED"], rows))
    return 0


async def _revoke_key(args: argparse.Namespace, ledger: Ledger) -> int:
    if not await ledger.revoke_api_key(args.key_id):
        return _fail(f"no unrevoked API key with id {args.key_id!r}; run `sluicegate keys list` to see the ids", code=1)
    print(f"revoked key {args.key_id}", file=sys.stderr)
    return 0


async def _report(args: argparse.Namespace, ledger: Ledger) -> int:
    budgets: list[BudgetRef] | None = None
    if args.config:
        budgets = [BudgetRef.from_budget(budget) for budget in api.load_path(args.config).budgets]
    rows = await ledger.report(namespace=args.namespace, budgets=budgets)
    if args.format == "json":
        print(json.dumps([_report_document(row) for row in rows], indent=2))
    else:
        print(_report_table(rows))
    return 0


async def _attempts(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.limit < 1:
        return _fail(f"invalid --limit {args.limit}: pass 1 or more rows", code=2)
    # NOTE: a request id is matched among the newest rows read, so an old request needs a larger --limit.
    limit = args.limit if args.request_id is None else max(args.limit, 100_000)
    rows = [row for row in await ledger.attempts(namespace=args.namespace, limit=limit)
            if args.request_id is None or row.attempt.request_id == args.request_id]
    if args.request_id is not None and not rows:
        return _fail(f"no attempt rows for request {args.request_id!r} in this ledger", code=1)
    if args.format == "json":
        print(json.dumps([_attempt_document(row) for row in rows], indent=2))
        return 0
    table = [[_timestamp(row.created_at), row.attempt.request_id, row.attempt.namespace, row.attempt.route or "-",
              row.attempt.model, row.attempt.decision.value, row.attempt.outcome.value, row.attempt.usage_source.value,
              str(row.attempt.prompt_tokens), str(row.attempt.completion_tokens), api.format_usd(row.attempt.estimated_nano),
              api.format_usd(row.attempt.charged_nano)] for row in rows]
    print(_table(["CREATED", "REQUEST ID", "NAMESPACE", "ROUTE", "MODEL", "DECISION", "OUTCOME", "USAGE",
                  "PROMPT TOKENS", "COMPLETION TOKENS", "HELD USD", "CHARGED USD"], table))
    return 0


def _attempt_document(row: AttemptRow) -> dict[str, object]:
    attempt = row.attempt
    return {
        "createdAt": _timestamp(row.created_at), "requestId": attempt.request_id, "attemptId": attempt.attempt_id,
        "namespace": attempt.namespace, "route": attempt.route, "provider": attempt.provider, "model": attempt.model,
        "decision": attempt.decision.value, "outcome": attempt.outcome.value, "usageSource": attempt.usage_source.value,
        "promptTokens": attempt.prompt_tokens, "cachedTokens": attempt.cached_tokens,
        "completionTokens": attempt.completion_tokens, "heldUSD": api.format_usd(attempt.estimated_nano),
        "chargedUSD": api.format_usd(attempt.charged_nano), "escalatedFrom": attempt.escalated_from,
        "latencyMs": round(attempt.latency_ms, 3), "signals": list(attempt.signals), "error": attempt.error,
    }


async def _migrated(args: argparse.Namespace, ledger: Ledger) -> int:
    print("the ledger schema is up to date", file=sys.stderr)
    return 0


def _report_document(row: ReportRow) -> dict[str, object]:
    return {
        "namespace": row.namespace,
        "budget": row.budget,
        "period": row.period,
        "windowStart": _timestamp(row.window_start),
        "windowEnd": _timestamp(row.window_end) or None,
        "route": row.route,
        "model": row.model,
        "calls": row.calls,
        "promptTokens": row.prompt_tokens,
        "completionTokens": row.completion_tokens,
        "estimatedUSD": api.format_usd(row.estimated_nano),
        "chargedUSD": api.format_usd(row.charged_nano),
    }


def _report_table(rows: Sequence[ReportRow]) -> str:
    header = ["NAMESPACE", "BUDGET", "PERIOD", "WINDOW START", "WINDOW END", "ROUTE", "MODEL", "CALLS",
              "PROMPT TOKENS", "COMPLETION TOKENS", "HELD USD", "CHARGED USD"]  # fmt: skip
    cells = [
        [
            row.namespace,
            row.budget or "-",
            row.period,
            _timestamp(row.window_start),
            _timestamp(row.window_end) or "-",
            row.route or "-",
            row.model or "-",
            str(row.calls),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            api.format_usd(row.estimated_nano),
            api.format_usd(row.charged_nano),
        ]
        for row in rows
    ]
    return _table(header, cells)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in [header, *rows]]
    return "\n".join(lines)


def _timestamp(value: datetime.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
