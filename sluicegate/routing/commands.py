"""``sluicegate classify``: show the route a prompt would take and the signals behind it.

The command runs the same classifier as the gateway, with the default thresholds or
those of a RoutePolicy file, so a platform team can check a policy before applying it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sluicegate import api
from sluicegate.routing import _classifier

# The route each tier takes when the policy has a cloud route.
ROUTES = {_classifier.Tier.SIMPLE: "local", _classifier.Tier.COMPLEX: "cloud"}


class PolicyChoiceError(ValueError):
    """A policy file that holds no RoutePolicy, or several and no namespace to pick one."""


def add_parser(subparsers: Any) -> None:
    """Register ``classify`` on the top-level subparsers."""
    parser = subparsers.add_parser(
        "classify",
        help="show the route (local or cloud) a prompt would take, and why",
        description=(
            "Classify TEXT as the gateway would, with zero tokens, and print the route "
            "(simple -> local, complex -> cloud) with the signals that fired."
        ),
    )
    parser.add_argument("text", metavar="TEXT", help="the prompt, as one user message; '-' reads it from standard input")
    add_policy_arguments(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(handler=run)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--policy`` and ``--namespace``, shared with the evaluation commands."""
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="RoutePolicy YAML file or folder whose classifier settings to use (default: the built-in defaults)",
    )
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace whose RoutePolicy to use when --policy contains several",
    )


def load_policy(path: str, *, namespace: str | None) -> api.RoutePolicy:
    """Load the one RoutePolicy a command should use from a YAML file or folder.

    Raises api.ConfigError for a file that does not load, and PolicyChoiceError when the
    file has no RoutePolicy, or several and ``namespace`` does not pick one.
    """
    config = api.load_path(path)
    if not config.policies:
        raise PolicyChoiceError(f"{path}: the file has no RoutePolicy document; pass a file that defines one")
    found = {policy.metadata.namespace or "": policy for policy in config.policies}
    if namespace is not None:
        if namespace not in found:
            raise PolicyChoiceError(
                f"{path}: no RoutePolicy for namespace {namespace!r}; choose one of: {', '.join(sorted(found))}"
            )
        return found[namespace]
    if len(found) > 1:
        raise PolicyChoiceError(
            f"{path}: the file has RoutePolicies for {len(found)} namespaces ({', '.join(sorted(found))}); "
            "pick one with --namespace"
        )
    return config.policies[0]


def run(args: argparse.Namespace) -> int:
    """Classify the prompt and print the route; return the exit code."""
    try:
        policy = load_policy(args.policy, namespace=args.namespace) if args.policy else None
    except (api.ConfigError, PolicyChoiceError) as error:
        print(f"sluicegate classify: {error}", file=sys.stderr)
        return 1

    text = sys.stdin.read() if args.text == "-" else args.text
    settings = policy.spec.classifier if policy else api.Classifier()
    result = _classifier.classify_text(text, settings=settings)
    has_cloud = policy is None or policy.spec.cloud is not None
    route = ROUTES[result.tier] if has_cloud else "local"

    if args.format == "json":
        document = {
            "route": route,
            "tier": result.tier.value,
            "signals": list(result.signals),
            "complexAtSignals": settings.complex_at_signals,
        }
        print(json.dumps(document))
        return 0

    print(f"route: {route} ({result.tier.value})")
    fired = ", ".join(result.signals) if result.signals else "none"
    print(f"signals: {fired} ({len(result.signals)} of {settings.complex_at_signals} needed for cloud)")
    if not has_cloud and result.tier is _classifier.Tier.COMPLEX:
        print("note: the policy has no cloud route, so complex requests are served locally")
    return 0
