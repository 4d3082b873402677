"""``sluicegate gateway``: serve the OpenAI-compatible API on uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import uvicorn

from sluicegate import api, ledger
from sluicegate.gateway import _app, _reload, _runtime, _settings

logger = logging.getLogger("sluicegate.gateway")


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the ``gateway`` subcommand."""
    parser = subparsers.add_parser(
        "gateway",
        help="serve the OpenAI-compatible gateway",
        description="Serve POST /v1/chat/completions, routing each request local or cloud inside every namespace's budget.",
    )
    parser.add_argument("--config", help="YAML file or folder of LLMBudget and RoutePolicy documents (env SLUICEGATE_CONFIG)")
    parser.add_argument("--ledger", help="ledger URL, postgresql://... or sqlite:///path "
                                         f"(env SLUICEGATE_LEDGER_URL; default {_settings.DEFAULT_LEDGER_URL})")
    parser.add_argument("--secrets-dir", help="folder of provider keys laid out as <namespace>/<secret>/<key> (env SLUICEGATE_SECRETS_DIR)")
    parser.add_argument("--host", help="listen address (env SLUICEGATE_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (env SLUICEGATE_PORT; default 8080)")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes (env SLUICEGATE_WORKERS; default 1)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level")
    parser.set_defaults(handler=run)


async def _migrate(ledger_url: str) -> None:
    store = ledger.connect(ledger_url)
    try:
        await store.migrate()
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    """Validate the config, then serve until interrupted."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = _settings.from_environment(config_path=args.config, ledger_url=args.ledger, secrets_dir=args.secrets_dir,
                                              host=args.host, port=args.port, workers=args.workers)
        # Fail fast, before binding the port, on a config that cannot serve.
        _reload.load_runtime(settings.config_path, pool=_runtime.ClientPool(), secrets_dir=settings.secrets_dir)
    except (ValueError, api.ConfigError) as error:
        print(f"sluicegate gateway: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_migrate(settings.ledger_url))
    except ledger.LedgerError as error:
        print(f"sluicegate gateway: cannot open the ledger {_app._redact(settings.ledger_url)}: {error}; "
              "start the database, or pass the right URL with --ledger (SLUICEGATE_LEDGER_URL)", file=sys.stderr)
        return 1

    common = {"host": settings.host, "port": settings.port, "log_level": args.log_level, "access_log": False,
              "loop": "uvloop", "http": "httptools", "timeout_graceful_shutdown": int(settings.shutdown_drain_seconds)}
    if settings.workers > 1:
        # Workers build their app from the environment, so hand the resolved settings down that way.
        os.environ.update({"SLUICEGATE_CONFIG": str(settings.config_path), "SLUICEGATE_LEDGER_URL": settings.ledger_url})
        if settings.secrets_dir is not None:
            os.environ["SLUICEGATE_SECRETS_DIR"] = str(settings.secrets_dir)
        uvicorn.run("sluicegate.gateway._app:app_factory", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(_app.create_app(settings), **common)
    return 0
