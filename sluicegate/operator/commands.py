"""``sluicegate operator``: run the kopf operator, render what it would create, print its RBAC.

``render`` and ``rbac`` are pure: they read files, print YAML and never contact a cluster,
so their output can be reviewed or committed for GitOps.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from sluicegate import api
from sluicegate.operator import _rbac, _rendering, _snapshot
from sluicegate.operator._settings import OperatorSettings, SettingsError, build_settings

EXIT_INVALID = 1
EXIT_USAGE = 2
RBAC_HEADER = (
    "# The sluicegate operator's RBAC, written by `sluicegate operator rbac`; docs/operations.md gives each rule's reason.\n"
)


def add_parser(subparsers: Any) -> None:
    """Register ``sluicegate operator`` and its subcommands."""
    parser = subparsers.add_parser(
        "operator", help="the Kubernetes operator", description="Run the sluicegate operator or print what it manages."
    )
    commands = parser.add_subparsers(dest="operator_command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the operator against the current cluster (in-cluster or kubeconfig)")
    _add_common(run)
    run.add_argument("--ledger", help="shared ledger URL, postgresql://... (env SLUICEGATE_LEDGER_URL; required)")
    run.add_argument("--resync-seconds", type=float,
                     help="seconds between full reconciliations (env SLUICEGATE_RESYNC_SECONDS; default 60)")
    run.add_argument("--status-interval-seconds", type=float,
                     help="seconds between ledger reads per LLMBudget (env SLUICEGATE_STATUS_INTERVAL_SECONDS; default 30)")
    run.add_argument("--liveness", metavar="URL",
                     help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz (env SLUICEGATE_OPERATOR_LIVENESS)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level")
    run.set_defaults(handler=run_operator)

    render = commands.add_parser(
        "render", help="print every object the operator would create for a file or folder of resources"
    )
    render.add_argument("--config", required=True, metavar="PATH",
                        help="YAML file or folder of LLMBudget and RoutePolicy documents")
    render.add_argument("--include-rbac", action="store_true", help="also print the operator's ClusterRole and Role")
    _add_common(render)
    render.set_defaults(handler=render_objects)

    rbac = commands.add_parser("rbac", help="print the operator's ClusterRole, Role and their bindings")
    rbac.add_argument("--namespace", help="the operator's namespace (env SLUICEGATE_OPERATOR_NAMESPACE; default sluicegate-system)")
    rbac.add_argument("--service-account", default=_rbac.OPERATOR_NAME, help="the operator's ServiceAccount (default sluicegate-operator)")
    rbac.set_defaults(handler=print_rbac)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace",
                        help="the operator's namespace, where the gateway fleet runs (env SLUICEGATE_OPERATOR_NAMESPACE; "
                             "default sluicegate-system)")
    parser.add_argument("--default-policy-namespace",
                        help="namespace of the fallback RoutePolicy named default (env SLUICEGATE_DEFAULT_POLICY_NAMESPACE; "
                             "default sluicegate-system)")
    parser.add_argument("--fleet-config", metavar="PATH",
                        help="YAML file with the gateway and ollama fleet settings (env SLUICEGATE_FLEET_CONFIG)")


def _settings(args: argparse.Namespace) -> OperatorSettings:
    return build_settings(
        namespace=args.namespace,
        default_policy_namespace=args.default_policy_namespace,
        ledger_url=getattr(args, "ledger", None),
        fleet_config=args.fleet_config,
        resync_seconds=getattr(args, "resync_seconds", None),
        status_interval_seconds=getattr(args, "status_interval_seconds", None),
        liveness_endpoint=getattr(args, "liveness", None),
    )


def dump_yaml(objects: Iterable[Any]) -> str:
    """Write objects as multi-document YAML."""
    return yaml.safe_dump_all(list(objects), sort_keys=False, width=120)


def read_documents(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """Read every YAML document of a file, or of the .yaml/.yml/.json files in a folder (sorted)."""
    root = pathlib.Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml", ".json") and not p.name.startswith("."))
    elif root.is_file():
        files = [root]
    else:
        raise api.ConfigError(f"{root}: no such file or folder; pass the YAML file or folder of LLMBudget and RoutePolicy documents")
    documents: list[dict[str, Any]] = []
    for file in files:
        try:
            loaded = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise api.ConfigError(f"{file}: cannot read YAML: {error}") from error
        documents.extend(document for document in loaded if isinstance(document, dict))
    return documents


def render_objects(args: argparse.Namespace) -> int:
    """Print the objects the operator would create; exit 1 when a resource is invalid."""
    try:
        settings = _settings(args)
        documents = read_documents(args.config)
    except (SettingsError, api.ConfigError) as error:
        print(f"sluicegate operator render: {error}", file=sys.stderr)
        return EXIT_USAGE

    # Without a cluster there are no creation times: the first policy by name wins a conflict,
    # and every referenced Secret is assumed to exist (mirrors are printed without data).
    resources = _snapshot.Resources.from_documents(documents)
    snapshot = _snapshot.build(resources, settings=settings, secrets=None)
    objects = _rendering.render_all(snapshot, settings=settings, secret_data=None)
    if args.include_rbac:
        objects.extend(_rbac.render(namespace=settings.namespace))
    sys.stdout.write(dump_yaml(objects))

    invalid = False
    for verdict in sorted(snapshot.verdicts.values(), key=lambda verdict: verdict.ref):
        if verdict.ready:
            continue
        for condition in verdict.conditions:
            if condition["status"] != "True":
                print(f"{verdict.ref.kind} {verdict.ref}: {condition['reason']}: {condition['message']}", file=sys.stderr)
        invalid = invalid or verdict.error is not None
    return EXIT_INVALID if invalid else 0


def print_rbac(args: argparse.Namespace) -> int:
    """Print the ClusterRole, Role and bindings."""
    try:
        settings = build_settings(namespace=args.namespace)
    except SettingsError as error:
        print(f"sluicegate operator rbac: {error}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(RBAC_HEADER)
    sys.stdout.write(dump_yaml(_rbac.render(namespace=settings.namespace, service_account=args.service_account)))
    return 0


def run_operator(args: argparse.Namespace) -> int:
    """Run the operator until it is stopped."""
    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"sluicegate operator run: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.ledger_url:
        print("sluicegate operator run: no ledger URL; set --ledger or SLUICEGATE_LEDGER_URL to the shared PostgreSQL ledger",
              file=sys.stderr)
        return EXIT_USAGE

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(settings))
    return 0


async def run(settings: OperatorSettings, *, stop_flag: Any = None, ready_flag: Any = None, memo: Any = None) -> None:
    """Run kopf with sluicegate's handlers, cluster-wide, as the only operator instance.

    ``stop_flag``, ``ready_flag`` and ``memo`` (with a prepared context) are for tests that
    run the operator in a thread.
    """
    import kopf

    from sluicegate.operator import _handlers

    await kopf.operator(
        registry=_handlers.build_registry(settings),
        clusterwide=True,
        # One replica, as the chart deploys it, so no peering objects are needed.
        standalone=True,
        liveness_endpoint=settings.liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memo=memo if memo is not None else kopf.Memo(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sluicegate operator`` alone, for debugging."""
    parser = argparse.ArgumentParser(prog="sluicegate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result
