"""``sluicegate crds``: write the CustomResourceDefinitions, one file per kind.

The files under ``crds/`` in the repository are this command's output; a test fails when
they are stale, so run ``sluicegate crds`` after changing a model in ``sluicegate.api``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from sluicegate.api import _crds


def add_parser(subparsers: Any) -> None:
    """Register ``sluicegate crds``."""
    parser = subparsers.add_parser(
        "crds",
        help="write the LLMBudget and RoutePolicy CustomResourceDefinitions",
        description="Write the CRDs of LLMBudget and RoutePolicy as YAML, one file per kind.",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        default="crds",
        help="folder to write llmbudgets.sluicegate.io.yaml and routepolicies.sluicegate.io.yaml to; "
        "'-' prints both to standard output (default: crds)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write every CRD into ``args.output``; return the exit code."""
    documents = {name: _crds.dump_crd(crd) for name, crd in _crds.custom_resource_definitions().items()}
    if args.output == "-":
        sys.stdout.write("---\n".join(documents.values()))
        return 0

    folder = pathlib.Path(args.output)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in documents.items():
            (folder / name).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"sluicegate crds: cannot write to {folder}: {error}; pass a writable folder with --output", file=sys.stderr)
        return 1
    for name in documents:
        print(folder / name)
    return 0
