"""Routing evaluation: how well the classifier's routes match labeled prompts.

Input is a JSONL file of labeled prompts, one object per line, as in ``data/``:
``prompt``, ``label`` (``simple`` or ``complex``), ``strong_correct`` and
``weak_correct`` (did the cloud model, and the local model, answer correctly), and
optionally ``id`` and ``routellm_contaminated``. Each prompt is classified as a single
user message by the real classifier with a policy's settings, and the routes are scored
with "complex" as the positive class:

- the confusion matrix, precision and recall against ``label``;
- the share of requests sent to cloud;
- quality, the share answered correctly when each prompt gets the answer of the model it
  was routed to, and PGR (performance gap recovered),
  ``(router quality - weak quality) / (strong quality - weak quality)``;
- cost against sending everything to cloud, from prompt lengths and the policy's prices;
- a random router that sends the same share to cloud, as expected values: its PGR equals
  its cloud share, so a useful router lies above that diagonal.

The cost model is an estimate, because the files contain no token counts. A prompt is
``ceil(characters / 4)`` tokens (the usual average for English text under BPE tokenizers)
plus ``TEMPLATE_TOKENS`` for the chat template. Every answer is ``output_tokens`` tokens
on both routes. Money stays in integer nano-USD.

Reading the file is the only I/O here; the command module prints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sluicegate import api, routing
from sluicegate.routing import _pricing

# Tokens of chat template around one user message: 4 for the message, 3 to prime the reply.
TEMPLATE_TOKENS = 7
CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 200

# Prices used when no policy is given: the cloud route of the documented example
# RoutePolicy (gpt-4.1 list prices) and a $0 local route.
DEFAULT_CLOUD_PRICE = api.Price(input="2.00", output="8.00")
DEFAULT_LOCAL_PRICE = api.Price(input="0", output="0")

_REQUIRED_FIELDS = ("prompt", "label", "strong_correct", "weak_correct")

_T = TypeVar("_T")


class EvaluationDataError(ValueError):
    """A labeled-prompt file that cannot be evaluated; the message names the file, line and fix."""


@dataclasses.dataclass(frozen=True)
class LabeledPrompt:
    """One row of a labeled-prompt file."""

    id: str
    prompt: str
    label: routing.Tier
    strong_correct: bool
    weak_correct: bool
    contaminated: bool = False


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Prices and the token assumptions that turn a prompt into an estimated cost."""

    cloud: _pricing.PriceTable
    local: _pricing.PriceTable
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    @classmethod
    def from_prices(cls, *, cloud: api.Price, local: api.Price, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> CostModel:
        """Build from USD-per-million prices, e.g. a RoutePolicy's routes."""
        if output_tokens < 0:
            raise EvaluationDataError(f"invalid output tokens {output_tokens}: use 0 or more tokens per answer")
        return cls(
            cloud=_pricing.PriceTable.from_price(cloud),
            local=_pricing.PriceTable.from_price(local),
            output_tokens=output_tokens,
        )

    def call_nano(self, prices: _pricing.PriceTable, *, prompt_chars: int) -> int:
        """Estimate one call's cost in nano-USD."""
        prompt_tokens = math.ceil(prompt_chars / CHARS_PER_TOKEN) + TEMPLATE_TOKENS
        usage = _pricing.Usage(prompt_tokens=prompt_tokens, completion_tokens=self.output_tokens)
        return _pricing.cost_nano(prices, usage)


@dataclasses.dataclass(frozen=True)
class Confusion:
    """Counts with "complex" as the positive class; a random router's are expected values, so they may be fractional."""

    true_positive: float
    false_positive: float
    false_negative: float
    true_negative: float

    @property
    def precision(self) -> float | None:
        """Share of prompts routed complex that are labeled complex; None when none were routed complex."""
        routed = self.true_positive + self.false_positive
        return self.true_positive / routed if routed else None

    @property
    def recall(self) -> float | None:
        """Share of prompts labeled complex that were routed complex; None when no prompt is labeled complex."""
        positives = self.true_positive + self.false_negative
        return self.true_positive / positives if positives else None


@dataclasses.dataclass(frozen=True)
class RouterResult:
    """The scores of one router over one file."""

    confusion: Confusion
    cloud_share: float
    quality: float
    pgr: float | None
    cost_nano: int
    complex_at_signals: int | None = None
    long_prompt_chars: int | None = None


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The classifier's result beside the baselines it is judged against."""

    rows: int
    excluded: int
    strong_quality: float
    weak_quality: float
    all_cloud_nano: int
    all_local_nano: int
    output_tokens: int
    router: RouterResult
    random: RouterResult

    @property
    def cost_saved(self) -> float | None:
        """Share of the all-cloud cost that the classifier's routes save; None when all-cloud costs $0."""
        return _saved(self.router.cost_nano, self.all_cloud_nano)

    @property
    def random_cost_saved(self) -> float | None:
        """Share of the all-cloud cost that the random router is expected to save."""
        return _saved(self.random.cost_nano, self.all_cloud_nano)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Routers over a grid of classifier thresholds, and the best trade-off among them."""

    points: tuple[RouterResult, ...]
    frontier: tuple[RouterResult, ...]

    def cost_to_perform(self, target_pgr: float) -> float | None:
        """Return CPT(target): the least cloud share that reaches ``target_pgr`` on the frontier.

        Between two frontier points the share is interpolated linearly, which a gateway
        reaches by choosing one of the two settings at random per request. None when no
        point reaches the target.
        """
        previous: RouterResult | None = None
        for point in self.frontier:
            if point.pgr is not None and point.pgr >= target_pgr:
                if previous is None or previous.pgr is None or point.pgr == previous.pgr:
                    return point.cloud_share
                fraction = (target_pgr - previous.pgr) / (point.pgr - previous.pgr)
                return previous.cloud_share + fraction * (point.cloud_share - previous.cloud_share)
            previous = point
        return None


def load_rows(path: str | pathlib.Path, *, exclude_contaminated: bool = False) -> tuple[list[LabeledPrompt], int]:
    """Read a labeled-prompt JSONL file; return the rows kept and the number excluded.

    Blank lines are skipped. Raises EvaluationDataError naming the file and line for a
    missing file, invalid JSON, a missing or mistyped field, or a file with no rows left.
    """
    file = pathlib.Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvaluationDataError(
            f"{file}: no such file; pass a JSONL file with one labeled prompt per line, such as data/routellm_gsm8k.jsonl"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluationDataError(f"{file}: cannot read the file ({error}); pass a UTF-8 JSONL file") from error

    rows: list[LabeledPrompt] = []
    excluded = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = _parse_row(line, where=f"{file}, line {number}")
        if exclude_contaminated and row.contaminated:
            excluded += 1
            continue
        rows.append(row)
    if not rows:
        raise EvaluationDataError(
            f"{file}: no rows to evaluate ({excluded} excluded as contaminated); "
            f"each line needs a JSON object with {', '.join(_REQUIRED_FIELDS)}"
        )
    return rows, excluded


def _parse_row(line: str, *, where: str) -> LabeledPrompt:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        raise EvaluationDataError(f"{where}: invalid JSON ({error.msg} at column {error.colno}); write one JSON object per line") from None
    if not isinstance(raw, dict):
        raise EvaluationDataError(f"{where}: expected a JSON object, got {type(raw).__name__}; write one object per line")

    missing = [field for field in _REQUIRED_FIELDS if field not in raw]
    if missing:
        raise EvaluationDataError(
            f"{where}: missing field {', '.join(repr(field) for field in missing)}; "
            f"each row needs {', '.join(_REQUIRED_FIELDS)}"
        )
    prompt = _typed(raw, "prompt", str, where=where)
    label = _typed(raw, "label", str, where=where)
    if label not in (routing.Tier.SIMPLE.value, routing.Tier.COMPLEX.value):
        raise EvaluationDataError(f"{where}: invalid label {label!r}; expected \"simple\" or \"complex\"")
    return LabeledPrompt(
        id=str(raw.get("id", where)),
        prompt=prompt,
        label=routing.Tier(label),
        strong_correct=_typed(raw, "strong_correct", bool, where=where),
        weak_correct=_typed(raw, "weak_correct", bool, where=where),
        contaminated=_typed(raw, "routellm_contaminated", bool, where=where) if "routellm_contaminated" in raw else False,
    )


def _typed(raw: dict[str, Any], field: str, kind: type[_T], *, where: str) -> _T:
    value = raw[field]
    if not isinstance(value, kind):
        expected = "true or false" if kind is bool else f"a {kind.__name__}"
        raise EvaluationDataError(f"{where}: field {field!r} is {value!r}; expected {expected}")
    return value


def evaluate(rows: Sequence[LabeledPrompt], *, settings: api.Classifier, costs: CostModel, excluded: int = 0) -> Evaluation:
    """Score the classifier with ``settings`` on ``rows``, beside a random router at the same cloud share."""
    if not rows:
        raise EvaluationDataError("no rows to evaluate: pass a file with at least one labeled prompt")
    prepared = _prepare(rows, costs)
    routes = [routing.classify_text(row.prompt, settings=settings).tier is routing.Tier.COMPLEX for row in rows]
    router = _score(prepared, routes, settings=settings)
    return Evaluation(
        rows=len(rows),
        excluded=excluded,
        strong_quality=prepared.strong_quality,
        weak_quality=prepared.weak_quality,
        all_cloud_nano=prepared.all_cloud_nano,
        all_local_nano=prepared.all_local_nano,
        output_tokens=costs.output_tokens,
        router=router,
        random=_random_router(prepared, routed=sum(routes)),
    )


def sweep(rows: Sequence[LabeledPrompt], *, settings: api.Classifier, costs: CostModel) -> Sweep:
    """Score the classifier over a grid of ``complexAtSignals`` and ``longPromptChars``.

    ``longPromptChars`` takes the deciles of the file's prompt lengths, the policy's own
    value and one past the longest prompt (the signal off); ``complexAtSignals`` runs from
    1 to one more than the most signals any prompt fires. The frontier keeps the points
    that no other point beats with an equal or lower cloud share. Settings with the same
    result appear once, as the one with the lowest longPromptChars.
    """
    if not rows:
        raise EvaluationDataError("no rows to sweep: pass a file with at least one labeled prompt")
    prepared = _prepare(rows, costs)
    lengths = sorted(len(row.prompt) for row in rows)
    thresholds = sorted({max(1, lengths[len(lengths) * decile // 10]) for decile in range(10)} | {settings.long_prompt_chars, lengths[-1] + 1})
    max_signals = max(len(routing.classify_text(row.prompt, settings=settings.model_copy(update={"long_prompt_chars": 1})).signals) for row in rows)

    # A request is complex when its signal count reaches complexAtSignals, so one
    # classification per longPromptChars serves every complexAtSignals.
    points = []
    for long_prompt_chars in thresholds:
        setting = settings.model_copy(update={"long_prompt_chars": long_prompt_chars})
        counts = [len(routing.classify_text(row.prompt, settings=setting).signals) for row in rows]
        for complex_at_signals in range(1, max_signals + 2):
            routes = [count >= complex_at_signals for count in counts]
            scored = setting.model_copy(update={"complex_at_signals": complex_at_signals})
            points.append(_score(prepared, routes, settings=scored))
    # Settings that route exactly the same share with the same quality are listed once.
    points.sort(key=lambda point: (point.cloud_share, -(point.pgr or 0.0)))
    distinct = list({(point.cloud_share, point.pgr): point for point in reversed(points)}.values())
    distinct.reverse()
    return Sweep(points=tuple(distinct), frontier=tuple(_frontier(distinct)))


def _frontier(points: Iterable[RouterResult]) -> list[RouterResult]:
    frontier: list[RouterResult] = []
    for point in points:
        if point.pgr is None:
            continue
        if not frontier or point.pgr > (frontier[-1].pgr or 0.0):
            if frontier and frontier[-1].cloud_share == point.cloud_share:
                frontier.pop()
            frontier.append(point)
    return frontier


@dataclasses.dataclass(frozen=True)
class _Prepared:
    rows: Sequence[LabeledPrompt]
    cloud_nano: list[int]
    local_nano: list[int]
    strong_quality: float
    weak_quality: float

    @property
    def all_cloud_nano(self) -> int:
        return sum(self.cloud_nano)

    @property
    def all_local_nano(self) -> int:
        return sum(self.local_nano)


def _prepare(rows: Sequence[LabeledPrompt], costs: CostModel) -> _Prepared:
    return _Prepared(
        rows=rows,
        cloud_nano=[costs.call_nano(costs.cloud, prompt_chars=len(row.prompt)) for row in rows],
        local_nano=[costs.call_nano(costs.local, prompt_chars=len(row.prompt)) for row in rows],
        strong_quality=sum(row.strong_correct for row in rows) / len(rows),
        weak_quality=sum(row.weak_correct for row in rows) / len(rows),
    )


def _score(prepared: _Prepared, routes: Sequence[bool], *, settings: api.Classifier) -> RouterResult:
    true_positive = false_positive = false_negative = true_negative = 0
    correct = 0
    cost = 0
    for row, to_cloud, cloud_nano, local_nano in zip(prepared.rows, routes, prepared.cloud_nano, prepared.local_nano):
        labeled_complex = row.label is routing.Tier.COMPLEX
        true_positive += to_cloud and labeled_complex
        false_positive += to_cloud and not labeled_complex
        false_negative += not to_cloud and labeled_complex
        true_negative += not to_cloud and not labeled_complex
        correct += row.strong_correct if to_cloud else row.weak_correct
        cost += cloud_nano if to_cloud else local_nano

    quality = correct / len(prepared.rows)
    return RouterResult(
        confusion=Confusion(
            true_positive=true_positive,
            false_positive=false_positive,
            false_negative=false_negative,
            true_negative=true_negative,
        ),
        cloud_share=(true_positive + false_positive) / len(prepared.rows),
        quality=quality,
        pgr=_pgr(quality, strong=prepared.strong_quality, weak=prepared.weak_quality),
        cost_nano=cost,
        complex_at_signals=settings.complex_at_signals,
        long_prompt_chars=settings.long_prompt_chars,
    )


def _random_router(prepared: _Prepared, *, routed: int) -> RouterResult:
    # Sending each prompt to cloud with probability `share` takes that share of every cell,
    # quality and cost, so expected values need no sampling.
    share = routed / len(prepared.rows)
    positives = sum(row.label is routing.Tier.COMPLEX for row in prepared.rows)
    negatives = len(prepared.rows) - positives
    quality = prepared.weak_quality + share * (prepared.strong_quality - prepared.weak_quality)
    extra_nano = _pricing.ceil_div(routed * (prepared.all_cloud_nano - prepared.all_local_nano), len(prepared.rows))
    return RouterResult(
        confusion=Confusion(
            true_positive=share * positives,
            false_positive=share * negatives,
            false_negative=(1 - share) * positives,
            true_negative=(1 - share) * negatives,
        ),
        cloud_share=share,
        quality=quality,
        pgr=_pgr(quality, strong=prepared.strong_quality, weak=prepared.weak_quality),
        cost_nano=prepared.all_local_nano + extra_nano,
    )


def _pgr(quality: float, *, strong: float, weak: float) -> float | None:
    if strong == weak:
        return None
    return (quality - weak) / (strong - weak)


def _saved(cost_nano: int, all_cloud_nano: int) -> float | None:
    if all_cloud_nano == 0:
        return None
    return 1 - cost_nano / all_cloud_nano
