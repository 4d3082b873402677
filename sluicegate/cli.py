"""The ``sluicegate`` command line: one entry point, a subcommand per area.

Each area keeps its own commands module (``sluicegate.<area>.commands``) with
``add_parser(subparsers)``; this file only wires them together, so the gateway and the
operator stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, imported lazily so that `sluicegate classify` does not import kopf.
_COMMAND_MODULES = (
    "sluicegate.api.commands",
    "sluicegate.routing.commands",
    "sluicegate.ledger.commands",
    "sluicegate.gateway.commands",
    "sluicegate.operator.commands",
    "sluicegate.evaluation.commands",
    "sluicegate.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="sluicegate",
        description="Route LLM calls local or cloud and keep every namespace inside its cost ceiling.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
