"""``sluicegate eval routing`` and ``sluicegate replay``: offline checks of routing.

``eval routing`` scores the classifier on a labeled-prompt file; ``replay`` sends a
workload file through a running gateway and reports routes, rejections, spend and
latency. Both print their report and return 0; bad input prints one error line that
names the value and the fix, and returns 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sluicegate import api
from sluicegate.evaluation import _routing_eval, _routing_report
from sluicegate.routing import commands as routing_commands


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` (with ``routing``) and ``replay`` on the top-level subparsers."""
    evaluation = subparsers.add_parser("eval", help="evaluate routing offline on labeled prompts")
    kinds = evaluation.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    _add_routing_parser(kinds)


def _add_routing_parser(kinds: Any) -> None:
    parser = kinds.add_parser(
        "routing",
        help="score the classifier against labeled prompts",
        description=(
            "Classify every prompt of a labeled JSONL file (fields prompt, label, strong_correct, "
            "weak_correct) and report the confusion matrix, precision, recall, the share sent to "
            "cloud, quality recovered (PGR), estimated cost saved, and a random router at the same "
            "cloud share."
        ),
    )
    parser.add_argument("file", metavar="FILE.jsonl", help="labeled prompts, e.g. data/routellm_gsm8k.jsonl")
    routing_commands.add_policy_arguments(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also vary complexAtSignals and longPromptChars and print PGR against cloud share, with CPT(50%%) and CPT(80%%)",
    )
    parser.add_argument(
        "--exclude-contaminated",
        action="store_true",
        help="skip rows marked routellm_contaminated, as the RouteLLM paper's numbers do",
    )
    parser.add_argument(
        "--output-tokens",
        type=int,
        default=_routing_eval.DEFAULT_OUTPUT_TOKENS,
        metavar="N",
        help=f"output tokens assumed per answer for the cost estimate (default: {_routing_eval.DEFAULT_OUTPUT_TOKENS})",
    )
    parser.set_defaults(handler=run_routing)


def run_routing(args: argparse.Namespace) -> int:
    """Evaluate the classifier on a labeled file and print the report; return the exit code."""
    try:
        settings, costs, prices = _evaluation_inputs(args)
        rows, excluded = _routing_eval.load_rows(args.file, exclude_contaminated=args.exclude_contaminated)
    except (api.ConfigError, routing_commands.PolicyChoiceError, _routing_eval.EvaluationDataError) as error:
        print(f"sluicegate eval routing: {error}", file=sys.stderr)
        return 1

    evaluation = _routing_eval.evaluate(rows, settings=settings, costs=costs, excluded=excluded)
    sweep = _routing_eval.sweep(rows, settings=settings, costs=costs) if args.sweep else None
    if args.format == "json":
        document = _routing_report.to_json(evaluation, source=args.file, settings=settings, sweep=sweep)
        print(json.dumps(document, indent=2))
    else:
        print(_routing_report.format_text(evaluation, source=args.file, settings=settings, prices=prices, sweep=sweep), end="")
    return 0


def _evaluation_inputs(args: argparse.Namespace) -> tuple[api.Classifier, _routing_eval.CostModel, str]:
    if args.output_tokens < 0:
        raise _routing_eval.EvaluationDataError(
            f"invalid --output-tokens {args.output_tokens}: pass 0 or more tokens per answer"
        )
    if not args.policy:
        costs = _routing_eval.CostModel.from_prices(
            cloud=_routing_eval.DEFAULT_CLOUD_PRICE, local=_routing_eval.DEFAULT_LOCAL_PRICE, output_tokens=args.output_tokens
        )
        prices = (
            f"cloud ${_routing_eval.DEFAULT_CLOUD_PRICE.input} input / ${_routing_eval.DEFAULT_CLOUD_PRICE.output} output "
            "per million tokens and a $0 local route (defaults; pass --policy for your prices)"
        )
        return api.Classifier(), costs, prices

    policy = routing_commands.load_policy(args.policy, namespace=args.namespace)
    cloud = policy.spec.cloud
    if cloud is None:
        raise routing_commands.PolicyChoiceError(
            f"{args.policy}: RoutePolicy {policy.metadata.namespace}/{policy.metadata.name} has no cloud route, "
            "so every request stays local; evaluate with a policy that has spec.cloud"
        )
    local_price = policy.spec.local.price_usd_per_million_tokens
    cloud_price = cloud.price_usd_per_million_tokens
    costs = _routing_eval.CostModel.from_prices(cloud=cloud_price, local=local_price, output_tokens=args.output_tokens)
    prices = (
        f"cloud ${cloud_price.input} input / ${cloud_price.output} output, local ${local_price.input} / "
        f"${local_price.output} per million tokens (from {args.policy})"
    )
    return policy.spec.classifier, costs, prices
