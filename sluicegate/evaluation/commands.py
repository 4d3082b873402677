"""``sluicegate eval routing`` and ``sluicegate replay``: offline checks of routing.

``eval routing`` scores the classifier on a labeled-prompt file; ``replay`` sends a
workload file through a running gateway and reports routes, rejections, spend and
latency. Both print their report and return 0. Bad input prints one error line that
names the value and the fix, and returns 1, as does a replay in which no request got an
HTTP response.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
from typing import Any

from sluicegate import api
from sluicegate.evaluation import _replay, _replay_html, _routing_eval, _routing_report
from sluicegate.routing import _pricing
from sluicegate.routing import commands as routing_commands


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` (with ``routing``) and ``replay`` on the top-level subparsers."""
    evaluation = subparsers.add_parser("eval", help="evaluate routing offline on labeled prompts")
    kinds = evaluation.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    _add_routing_parser(kinds)
    _add_replay_parser(subparsers)


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
        help=f"output tokens assumed per response for the cost estimate (default: {_routing_eval.DEFAULT_OUTPUT_TOKENS})",
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
            f"invalid --output-tokens {args.output_tokens}: pass 0 or more tokens per response"
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


def _add_replay_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="send a workload through a running gateway and report routes, spend and latency",
        description=(
            "Send every line of a JSONL workload (OpenAI chat request bodies, or objects with a "
            "prompt field) to the gateway, non-streamed, and report the routes, decisions, "
            "escalations, rejections, spend against all-cloud, and latency per route."
        ),
    )
    parser.add_argument("file", metavar="FILE.jsonl", help="the workload, e.g. data/routellm_gsm8k.jsonl")
    parser.add_argument("--gateway", required=True, metavar="URL", help="gateway base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", required=True, metavar="KEY", help="the namespace's API key (sluicegate keys create)")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight at once (default: 4)")
    parser.add_argument("--model", default="auto", help="model for prompt lines and bodies that name none (default: auto)")
    parser.add_argument("--limit", type=int, metavar="N", help="send only the first N requests")
    parser.add_argument("--html", metavar="OUT", help="also write the report as one self-contained HTML page to OUT")
    routing_commands.add_policy_arguments(parser)
    parser.add_argument("--cloud-price-input", metavar="USD", help="cloud price per million prompt tokens, e.g. 2.00")
    parser.add_argument("--cloud-price-output", metavar="USD", help="cloud price per million output tokens, e.g. 8.00")
    parser.add_argument(
        "--total-timeout", type=float, default=600.0, metavar="SECONDS", help="stop the whole replay after this long (default: 600)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=300.0, metavar="SECONDS", help="give up on one request after this long (default: 300)"
    )
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """Replay the workload through the gateway and print the report; return the exit code."""
    try:
        _check_replay_numbers(args)
        cloud_prices = _cloud_prices(args)
        requests = _replay.load_requests(args.file, model=args.model, limit=args.limit)
        _replay.completions_url(args.gateway)
    except (_replay.ReplayError, api.ConfigError, routing_commands.PolicyChoiceError, _pricing.PricingError) as error:
        print(f"sluicegate replay: {error}", file=sys.stderr)
        return 1

    run = asyncio.run(
        _replay.replay(
            requests,
            gateway=args.gateway,
            key=args.key,
            concurrency=args.concurrency,
            total_timeout_seconds=args.total_timeout,
            request_timeout_seconds=args.request_timeout,
        )
    )
    report = _replay.summarize(run, cloud_prices=cloud_prices)
    print(_replay.format_text(report), end="")
    if args.html:
        page = _replay_html.render(report, title=f"sluicegate replay of {pathlib.Path(args.file).name}")
        try:
            pathlib.Path(args.html).write_text(page, encoding="utf-8")
        except OSError as error:
            print(f"sluicegate replay: cannot write the HTML report to {args.html}: {error}", file=sys.stderr)
            return 1

    if run.outcomes and all(outcome.status is None for outcome in run.outcomes):
        print(
            f"sluicegate replay: no request got an HTTP response from {args.gateway}; "
            "check that the gateway runs there (sluicegate gateway --config ...)",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_replay_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise _replay.ReplayError(f"invalid --concurrency {args.concurrency}: pass 1 or more requests in flight")
    if args.limit is not None and args.limit < 1:
        raise _replay.ReplayError(f"invalid --limit {args.limit}: pass 1 or more requests")
    for option, value in (("--total-timeout", args.total_timeout), ("--request-timeout", args.request_timeout)):
        if not value > 0:
            raise _replay.ReplayError(f"invalid {option} {value}: pass a positive number of seconds")


def _cloud_prices(args: argparse.Namespace) -> _pricing.PriceTable | None:
    explicit = (args.cloud_price_input, args.cloud_price_output)
    if any(price is not None for price in explicit):
        if args.policy:
            raise _replay.ReplayError("pass either --policy or --cloud-price-input/--cloud-price-output, not both")
        if None in explicit:
            raise _replay.ReplayError("pass both --cloud-price-input and --cloud-price-output (USD per million tokens)")
        for option, value in zip(("--cloud-price-input", "--cloud-price-output"), explicit):
            try:
                api.parse_usd(value)
            except api.MoneyError as error:
                raise _replay.ReplayError(f"{option}: {error}") from None
        return _pricing.PriceTable.from_price(api.Price(input=args.cloud_price_input, output=args.cloud_price_output))
    if not args.policy:
        return None
    policy = routing_commands.load_policy(args.policy, namespace=args.namespace)
    if policy.spec.cloud is None:
        raise routing_commands.PolicyChoiceError(
            f"{args.policy}: RoutePolicy {policy.metadata.namespace}/{policy.metadata.name} has no cloud route to price "
            "the all-cloud comparison; pass --cloud-price-input and --cloud-price-output instead"
        )
    return _pricing.PriceTable.from_price(policy.spec.cloud.price_usd_per_million_tokens)
