"""Replaying a workload through a running gateway, and the report of what happened.

``sluicegate replay`` reads a JSONL workload, sends each line to the gateway's
``/v1/chat/completions`` with bounded concurrency, and records what the gateway's
response headers report about each request: the route that answered
(``X-Sluicegate-Route``), the decision (``X-Sluicegate-Decision``) and the cost
(``X-Sluicegate-Cost-USD``). A line is either an OpenAI chat request body or an object
with a ``prompt`` field, such as the rows of ``data/routellm_*.jsonl``.

Requests are sent non-streamed, because only a non-streamed response carries its cost in
a header. Money is summed in integer nano-USD. The replay as a whole has a time bound:
when it passes, requests in flight are cancelled and the report counts the requests that
never finished.

This module is the only part of ``sluicegate.evaluation`` that talks HTTP; the report is
built from the recorded outcomes with no I/O.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import pathlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from sluicegate import api
from sluicegate.routing import _pricing

ROUTE_HEADER = "X-Sluicegate-Route"
DECISION_HEADER = "X-Sluicegate-Decision"
COST_HEADER = "X-Sluicegate-Cost-USD"
DECISIONS = ("classified", "forced", "downgraded", "escalated", "cache_hit")
REJECTION_CODES = ("budget_exceeded", "loop_detected")

# Headers carry up to nine decimal places: whole nano-USD.
_COST_DECIMALS = 9
_DROPPED_FIELDS = ("stream", "stream_options")


class ReplayError(ValueError):
    """A workload file or option that cannot be replayed; the message names the value and the fix."""


@dataclasses.dataclass(frozen=True)
class ReplayRequest:
    """One workload line as the chat request body to send."""

    line: int
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The gateway's response to one request, as the replay recorded it.

    ``status`` is None when no HTTP response came (a connection error or a timeout), and
    ``error`` then names the transport error. ``finished_seconds`` counts from the start
    of the replay.
    """

    line: int
    status: int | None
    route: str | None
    decision: str | None
    cost_nano: int | None
    usage: _pricing.Usage | None
    error: str | None
    latency_seconds: float
    finished_seconds: float


@dataclasses.dataclass(frozen=True)
class ReplayRun:
    """Every outcome of a replay, in the order the requests finished."""

    outcomes: tuple[Outcome, ...]
    requested: int
    elapsed_seconds: float
    timed_out: bool

    @property
    def unfinished(self) -> int:
        """Requests that had no outcome when the total time bound was reached."""
        return self.requested - len(self.outcomes)


def load_requests(path: str | pathlib.Path, *, model: str, limit: int | None = None) -> list[ReplayRequest]:
    """Read a JSONL workload; ``prompt`` lines become one user message for ``model``.

    A chat request body keeps its own ``model`` and gets ``model`` only when it names none.
    ``stream`` and ``stream_options`` are dropped. Raises ReplayError naming the file and
    line for a missing file, invalid JSON, or a line with neither ``messages`` nor ``prompt``.
    """
    file = pathlib.Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReplayError(f"{file}: no such file; pass a JSONL workload, such as data/routellm_gsm8k.jsonl") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReplayError(f"{file}: cannot read the file ({error}); pass a UTF-8 JSONL file") from error

    requests: list[ReplayRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if limit is not None and len(requests) >= limit:
            break
        if line.strip():
            requests.append(ReplayRequest(line=number, body=_request_body(line, model=model, where=f"{file}, line {number}")))
    if not requests:
        raise ReplayError(f"{file}: the file has no requests; write one JSON object per line")
    return requests


def _request_body(line: str, *, model: str, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        raise ReplayError(f"{where}: invalid JSON ({error.msg} at column {error.colno}); write one JSON object per line") from None
    if not isinstance(raw, dict):
        raise ReplayError(f"{where}: expected a JSON object, got {type(raw).__name__}")

    if "messages" in raw:
        if not isinstance(raw["messages"], list) or not raw["messages"]:
            raise ReplayError(f"{where}: 'messages' must be a non-empty list of chat messages")
        body = {key: value for key, value in raw.items() if key not in _DROPPED_FIELDS}
        body.setdefault("model", model)
        return body
    prompt = raw.get("prompt")
    if isinstance(prompt, str):
        return {"model": model, "messages": [{"role": "user", "content": prompt}]}
    raise ReplayError(
        f"{where}: the line has neither 'messages' (a chat request body) nor a 'prompt' string; write one of them"
    )


def completions_url(gateway: str) -> str:
    """Return the chat completions URL of a gateway base URL, with or without ``/v1``."""
    if not gateway.startswith(("http://", "https://")):
        raise ReplayError(f"invalid gateway URL {gateway!r}: pass the gateway's base URL, e.g. http://127.0.0.1:8080")
    base = gateway.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


async def replay(
    requests: Sequence[ReplayRequest],
    *,
    gateway: str,
    key: str,
    concurrency: int,
    total_timeout_seconds: float,
    request_timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,  # for tests
) -> ReplayRun:
    """Send every request with at most ``concurrency`` in flight, for at most ``total_timeout_seconds``."""
    if concurrency < 1:
        raise ReplayError(f"invalid concurrency {concurrency}: pass 1 or more requests in flight")
    if total_timeout_seconds <= 0 or request_timeout_seconds <= 0:
        raise ReplayError("timeouts must be positive numbers of seconds")
    url = completions_url(gateway)
    headers = {"Authorization": f"Bearer {key}"}
    outcomes: list[Outcome] = []
    pending: Iterator[ReplayRequest] = iter(requests)
    started = time.perf_counter()

    # Workers share one iterator; the event loop runs one at a time, so each request is taken once.
    async def work(client: httpx.AsyncClient) -> None:
        for request in pending:
            outcomes.append(await _send(client, request, url=url, headers=headers, started=started))

    timed_out = False
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=request_timeout_seconds, limits=limits, transport=transport) as client:
        try:
            async with asyncio.timeout(total_timeout_seconds):
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(concurrency, len(requests))):
                        group.create_task(work(client))
        except TimeoutError:
            timed_out = True
    return ReplayRun(
        outcomes=tuple(outcomes),
        requested=len(requests),
        elapsed_seconds=time.perf_counter() - started,
        timed_out=timed_out,
    )


async def _send(client: httpx.AsyncClient, request: ReplayRequest, *, url: str, headers: dict[str, str], started: float) -> Outcome:
    sent = time.perf_counter()
    try:
        response = await client.post(url, json=request.body, headers=headers)
    except httpx.TimeoutException:
        return _failed(request, error="timeout", sent=sent, started=started)
    except httpx.TransportError as error:
        return _failed(request, error=type(error).__name__, sent=sent, started=started)
    finished = time.perf_counter()

    payload = _json_or_none(response)
    return Outcome(
        line=request.line,
        status=response.status_code,
        route=response.headers.get(ROUTE_HEADER),
        decision=response.headers.get(DECISION_HEADER),
        cost_nano=_cost_nano(response.headers.get(COST_HEADER)),
        usage=_usage(payload) if response.is_success else None,
        error=None if response.is_success else _error_code(payload),
        latency_seconds=finished - sent,
        finished_seconds=finished - started,
    )


def _failed(request: ReplayRequest, *, error: str, sent: float, started: float) -> Outcome:
    finished = time.perf_counter()
    return Outcome(
        line=request.line,
        status=None,
        route=None,
        decision=None,
        cost_nano=None,
        usage=None,
        error=error,
        latency_seconds=finished - sent,
        finished_seconds=finished - started,
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _cost_nano(header: str | None) -> int | None:
    if header is None:
        return None
    try:
        return api.parse_usd(header.strip(), max_decimals=_COST_DECIMALS)
    except api.MoneyError:
        return None


def _usage(payload: Any) -> _pricing.Usage | None:
    raw = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    try:
        return _pricing.Usage(
            prompt_tokens=raw.get("prompt_tokens", 0),
            completion_tokens=raw.get("completion_tokens", 0),
            cached_tokens=cached or 0,
        )
    except _pricing.PricingError:
        return None


def _error_code(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code else "unknown"


@dataclasses.dataclass(frozen=True)
class Latency:
    """Latency percentiles of one route, in milliseconds (nearest-rank)."""

    requests: int
    p50_ms: float
    p99_ms: float


@dataclasses.dataclass(frozen=True)
class ReplayReport:
    """The summary of one replay; money in nano-USD."""

    requested: int
    answered: int
    unfinished: int
    elapsed_seconds: float
    timed_out: bool
    routes: dict[str, int]
    decisions: dict[str, int]
    rejections: dict[str, int]
    errors: dict[str, int]
    spend_nano: int
    unpriced: int
    all_cloud_nano: int | None
    without_usage: int
    latency: dict[str, Latency]
    timeline: tuple[tuple[float, int, int | None], ...]

    @property
    def escalations(self) -> int:
        """Requests that failed locally and were answered by cloud."""
        return self.decisions.get("escalated", 0)


def summarize(run: ReplayRun, *, cloud_prices: _pricing.PriceTable | None) -> ReplayReport:
    """Build the report of a replay; ``cloud_prices`` prices the all-cloud comparison, None skips it.

    The all-cloud figure prices every answered request's reported usage at the cloud
    route's prices; answers without usage are counted in ``without_usage`` instead.
    """
    routes: collections.Counter[str] = collections.Counter()
    decisions: collections.Counter[str] = collections.Counter()
    rejections: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    spend = all_cloud = unpriced = without_usage = answered = 0
    timeline: list[tuple[float, int, int | None]] = []

    for outcome in sorted(run.outcomes, key=lambda item: item.finished_seconds):
        if outcome.route:
            routes[outcome.route] += 1
            latencies[outcome.route].append(outcome.latency_seconds)
        if outcome.decision:
            decisions[outcome.decision] += 1
        _count_failure(outcome, rejections=rejections, errors=errors)
        if outcome.status is not None and 200 <= outcome.status < 300:
            answered += 1
            if outcome.cost_nano is None:
                unpriced += 1
            if outcome.usage is None:
                without_usage += 1
            elif cloud_prices is not None:
                all_cloud += _pricing.cost_nano(cloud_prices, outcome.usage)
        spend += outcome.cost_nano or 0
        timeline.append((outcome.finished_seconds, spend, all_cloud if cloud_prices is not None else None))

    return ReplayReport(
        requested=run.requested,
        answered=answered,
        unfinished=run.unfinished,
        elapsed_seconds=run.elapsed_seconds,
        timed_out=run.timed_out,
        routes=dict(routes),
        decisions=dict(decisions),
        rejections=dict(rejections),
        errors=dict(errors),
        spend_nano=spend,
        unpriced=unpriced,
        all_cloud_nano=all_cloud if cloud_prices is not None else None,
        without_usage=without_usage,
        latency={route: _latency(values) for route, values in sorted(latencies.items())},
        timeline=tuple(timeline),
    )


def _count_failure(outcome: Outcome, *, rejections: collections.Counter[str], errors: collections.Counter[str]) -> None:
    if outcome.status is None:
        errors[f"no response ({outcome.error})"] += 1
    elif outcome.status == 429 and outcome.error in REJECTION_CODES:
        rejections[outcome.error] += 1
    elif not 200 <= outcome.status < 300:
        errors[f"HTTP {outcome.status} {outcome.error}"] += 1


def _latency(values: list[float]) -> Latency:
    ordered = sorted(values)
    return Latency(requests=len(ordered), p50_ms=_nearest_rank(ordered, 0.50) * 1000, p99_ms=_nearest_rank(ordered, 0.99) * 1000)


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def format_text(report: ReplayReport) -> str:
    """Render the report as plain text; USD amounts are exact decimals."""
    lines = [
        f"requests: {report.requested} sent, {report.answered} answered, {report.elapsed_seconds:.1f} s",
    ]
    if report.timed_out:
        lines.append(f"the total time bound was reached: {report.unfinished} requests did not finish")
    lines.append("routes: " + _counts(report.routes, order=("local", "cloud")))
    lines.append("decisions: " + _counts(report.decisions, order=DECISIONS))
    lines.append(f"escalations (local failed, cloud answered): {report.escalations}")
    lines.append("rejections (HTTP 429): " + _counts(report.rejections, order=REJECTION_CODES))
    lines.append("other errors: " + _counts(report.errors, order=()))
    lines.append("")
    lines.append(f"spend: {api.format_usd(report.spend_nano)} USD (sum of {COST_HEADER})")
    if report.unpriced:
        lines.append(f"  {report.unpriced} answers had no readable {COST_HEADER} header and count as $0")
    if report.all_cloud_nano is None:
        lines.append("all-cloud cost: not computed; pass --policy or --cloud-price-input and --cloud-price-output")
    else:
        saved = f", {1 - report.spend_nano / report.all_cloud_nano:.1%} saved" if report.all_cloud_nano else ""
        lines.append(f"all-cloud cost of the same answers: {api.format_usd(report.all_cloud_nano)} USD{saved}")
        if report.without_usage:
            lines.append(f"  {report.without_usage} answers reported no usage and are left out of the all-cloud cost")
    lines.append("")
    lines.append("latency per route (ms):")
    for route, latency in report.latency.items():
        lines.append(f"  {route:8} {latency.requests:6d} requests  p50 {latency.p50_ms:9.1f}  p99 {latency.p99_ms:9.1f}")
    if not report.latency:
        lines.append("  no response carried a route")
    return "\n".join(lines) + "\n"


def _counts(counter: dict[str, int], *, order: Sequence[str]) -> str:
    names = [name for name in order if name in counter] + sorted(name for name in counter if name not in order)
    if not names:
        return "none"
    return ", ".join(f"{name} {counter[name]}" for name in names)
