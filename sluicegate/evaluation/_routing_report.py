"""Rendering a routing evaluation as text or JSON for ``sluicegate eval routing``.

Shares and rates print as percentages with one decimal; money prints as USD with the
nano-USD precision the ledger keeps. A random router's confusion counts are expected
values, so they print with one decimal.
"""

from __future__ import annotations

from typing import Any

from sluicegate import api
from sluicegate.evaluation import _routing_eval
from sluicegate.evaluation._routing_eval import CHARS_PER_TOKEN, TEMPLATE_TOKENS

CPT_TARGETS = (0.5, 0.8)


def format_text(
    evaluation: _routing_eval.Evaluation,
    *,
    source: str,
    settings: api.Classifier,
    prices: str,
    sweep: _routing_eval.Sweep | None = None,
) -> str:
    """Render the evaluation, and the sweep when given, as a plain-text report."""
    router, random = evaluation.router, evaluation.random
    lines = [
        f"routing evaluation of {source}",
        f"rows: {evaluation.rows}" + (f" ({evaluation.excluded} contaminated rows excluded)" if evaluation.excluded else ""),
        f"classifier: complexAtSignals {settings.complex_at_signals}, longPromptChars {settings.long_prompt_chars}, "
        f"{len(settings.extra_complex_patterns)} extra patterns",
        "",
        'confusion matrix ("complex" is the positive class):',
        f"  {'':14}{'labeled complex':>17}{'labeled simple':>16}",
        f"  {'routed cloud':14}{router.confusion.true_positive:>17.0f}{router.confusion.false_positive:>16.0f}",
        f"  {'routed local':14}{router.confusion.false_negative:>17.0f}{router.confusion.true_negative:>16.0f}",
        "",
        f"  {'':28}{'classifier':>12}{'random router':>15}",
    ]
    rows = [
        ("cloud share", _percent(router.cloud_share), _percent(random.cloud_share)),
        ("precision", _percent(router.confusion.precision), _percent(random.confusion.precision)),
        ("recall", _percent(router.confusion.recall), _percent(random.confusion.recall)),
        ("quality (share correct)", _percent(router.quality), _percent(random.quality)),
        ("PGR (quality recovered)", _percent(router.pgr), _percent(random.pgr)),
        ("estimated cost (USD)", _usd(router.cost_nano), _usd(random.cost_nano)),
        ("cost saved vs all-cloud", _percent(evaluation.cost_saved), _percent(evaluation.random_cost_saved)),
    ]
    lines.extend(f"  {name:28}{ours:>12}{theirs:>15}" for name, ours, theirs in rows)
    lines.extend(
        [
            "",
            f"quality of all-cloud (strong model): {_percent(evaluation.strong_quality)}; "
            f"of all-local (weak model): {_percent(evaluation.weak_quality)}",
            f"all-cloud cost: {_usd(evaluation.all_cloud_nano)} USD; all-local cost: {_usd(evaluation.all_local_nano)} USD",
            f"cost model (an estimate): prompt tokens = ceil(characters / {CHARS_PER_TOKEN}) + {TEMPLATE_TOKENS}, "
            f"{evaluation.output_tokens} output tokens per answer; {prices}",
            "the random router sends each prompt to cloud with the classifier's cloud share; its figures are expected values",
        ]
    )
    if sweep is not None:
        lines.extend(["", *format_sweep(sweep)])
    return "\n".join(lines) + "\n"


def format_sweep(sweep: _routing_eval.Sweep) -> list[str]:
    """Render the sweep's points (frontier marked with *) and CPT values as lines of text."""
    frontier = {id(point) for point in sweep.frontier}
    lines = [
        "sweep: PGR against cloud share over classifier thresholds (* marks the frontier)",
        f"  {'complexAtSignals':>16}{'longPromptChars':>17}{'cloud share':>13}{'PGR':>9}{'random PGR':>12}",
    ]
    for point in sweep.points:
        mark = "*" if id(point) in frontier else " "
        lines.append(
            f"{mark} {point.complex_at_signals:>16}{point.long_prompt_chars:>17}"
            f"{_percent(point.cloud_share):>13}{_percent(point.pgr):>9}{_percent(point.cloud_share):>12}"
        )
    for target in CPT_TARGETS:
        cost = sweep.cost_to_perform(target)
        reached = f"{_percent(cost)} of requests sent to cloud" if cost is not None else "not reached by any setting"
        lines.append(f"CPT({target:.0%}): {reached} (random router: {target:.0%})")
    return lines


def to_json(
    evaluation: _routing_eval.Evaluation,
    *,
    source: str,
    settings: api.Classifier,
    sweep: _routing_eval.Sweep | None = None,
) -> dict[str, Any]:
    """Build the JSON document of ``--format json``: shares as fractions, money as USD strings."""
    document: dict[str, Any] = {
        "source": source,
        "rows": evaluation.rows,
        "excludedContaminated": evaluation.excluded,
        "classifier": settings.to_raw(),
        "strongQuality": evaluation.strong_quality,
        "weakQuality": evaluation.weak_quality,
        "allCloudCostUSD": api.format_usd(evaluation.all_cloud_nano),
        "allLocalCostUSD": api.format_usd(evaluation.all_local_nano),
        "costModel": {
            "charsPerToken": CHARS_PER_TOKEN,
            "templateTokens": TEMPLATE_TOKENS,
            "outputTokens": evaluation.output_tokens,
        },
        "router": _result_json(evaluation.router, cost_saved=evaluation.cost_saved),
        "random": _result_json(evaluation.random, cost_saved=evaluation.random_cost_saved),
    }
    if sweep is not None:
        frontier = {id(point) for point in sweep.frontier}
        document["sweep"] = {
            "points": [
                {**_result_json(point, cost_saved=None), "frontier": id(point) in frontier} for point in sweep.points
            ],
            "costToPerform": {f"{target:.0%}": sweep.cost_to_perform(target) for target in CPT_TARGETS},
        }
    return document


def _result_json(result: _routing_eval.RouterResult, *, cost_saved: float | None) -> dict[str, Any]:
    confusion = result.confusion
    document: dict[str, Any] = {
        "confusion": {
            "truePositive": confusion.true_positive,
            "falsePositive": confusion.false_positive,
            "falseNegative": confusion.false_negative,
            "trueNegative": confusion.true_negative,
        },
        "precision": confusion.precision,
        "recall": confusion.recall,
        "cloudShare": result.cloud_share,
        "quality": result.quality,
        "pgr": result.pgr,
        "costUSD": api.format_usd(result.cost_nano),
    }
    if cost_saved is not None:
        document["costSaved"] = cost_saved
    if result.complex_at_signals is not None:
        document["complexAtSignals"] = result.complex_at_signals
        document["longPromptChars"] = result.long_prompt_chars
    return document


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _usd(nano: int) -> str:
    return api.format_usd(nano)
