"""``sluicegate crds``: write the CustomResourceDefinitions, one file per kind.

The files under ``crds/`` and the Helm chart's copy under ``charts/sluicegate/crds/`` are
this command's output; a test fails when either is stale, so run ``sluicegate crds`` from
the repository's root after changing a model in ``sluicegate.api``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from sluicegate.api import _crds, _reference


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
    parser.add_argument(
        "--chart-crds",
        metavar="DIR",
        default="charts/sluicegate/crds",
        help="the Helm chart's CRD folder, also written when it exists (default: charts/sluicegate/crds)",
    )
    parser.add_argument(
        "--reference",
        metavar="FILE",
        help="also write the Markdown field reference of both kinds to FILE (the repository keeps it in docs/resources.md)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write every CRD into ``args.output``; return the exit code."""
    documents = {name: _crds.dump_crd(crd) for name, crd in _crds.custom_resource_definitions().items()}
    if args.output == "-":
        sys.stdout.write("---\n".join(documents.values()))
        return 0

    folders = [pathlib.Path(args.output)]
    chart_folder = pathlib.Path(args.chart_crds)
    if chart_folder.is_dir() and chart_folder.resolve() != folders[0].resolve():
        folders.append(chart_folder)
    if args.reference:
        try:
            pathlib.Path(args.reference).write_text(_reference.field_reference(), encoding="utf-8")
        except OSError as error:
            print(f"sluicegate crds: cannot write {args.reference}: {error}", file=sys.stderr)
            return 1
        print(args.reference)
    for folder in folders:
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
