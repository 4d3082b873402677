"""Streamed chat completions: escalate before the first byte, settle after the last.

The upstream stream is opened and read up to its first content chunk before the client
sees anything, so a local failure up to that point can still escalate to cloud. After
that a pump task owns the upstream: it relays chunks to the client through a bounded
queue and, when the client leaves, keeps reading (within the route's timeout) to collect
the usage the provider bills, then settles the reservation. A failure after the first
byte ends the client's stream with one ``data: {"error": ...}`` event and no ``[DONE]``.

Upstreams are always asked for usage; a client that did not ask for it never sees the
usage chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from sluicegate import ledger
from sluicegate.gateway import _admission, _errors, _pipeline, _settling, _state, _upstreams
from sluicegate.ledger import Outcome
from sluicegate.routing import _pricing

logger = logging.getLogger(__name__)

QUEUE_CHUNKS = 256
_DONE = b"data: [DONE]\n\n"


@dataclasses.dataclass
class _Opened:
    stream: _upstreams.ChunkStream
    chunks: AsyncIterator[dict[str, Any]]
    prefetched: list[dict[str, Any]]
    finished: bool


def _has_content(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("function_call") or delta.get("refusal"):
            return True
    return False


async def _open(state: _state.GatewayState, admission: _admission.Admission) -> _Opened:
    """Open the upstream stream and read it up to the first content; raise UpstreamError before any byte is sent."""
    route = admission.route
    payload = _pipeline.prepare_payload(admission, stream=True)
    started = time.monotonic()
    stream: _upstreams.ChunkStream = await route.adapter.open_stream(route.transport, route.target, payload)
    chunks = stream.__aiter__()
    prefetched: list[dict[str, Any]] = []
    finished = False
    try:
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                finished = True
                break
            prefetched.append(chunk)
            if _has_content(chunk):
                break
    except _upstreams.UpstreamError as error:
        error.billed_usage = error.billed_usage or stream.usage
        raise
    finally:
        state.metrics.upstream_latency.labels(route.name, route.provider_name).observe(time.monotonic() - started)
    if finished and not any(_has_content(chunk) for chunk in prefetched):
        empty = _upstreams.UpstreamEmpty("the upstream stream ended with no content and no tool calls")
        empty.billed_usage = stream.usage
        raise empty
    return _Opened(stream=stream, chunks=chunks, prefetched=prefetched, finished=finished)


async def stream_chat(state: _state.GatewayState, admission: _admission.Admission) -> StreamingResponse:
    """Serve a streamed request, escalating once if the local route fails before its first byte."""
    started = time.monotonic()
    escalated_from = None
    try:
        opened = await _open(state, admission)
    except _upstreams.UpstreamError as error:
        await _pipeline.finish_failed(state, admission, error, started=started)
        escalation = await _pipeline.admit_escalation(state, admission, error)
        escalated_from, started = admission.attempt_id, time.monotonic()
        try:
            opened = await _open(state, escalation)
        except _upstreams.UpstreamError as cloud_error:
            await _pipeline.finish_failed(state, escalation, cloud_error, started=started, escalated_from=escalated_from)
            raise _pipeline.upstream_failed(escalation, cloud_error) from None
        admission = escalation

    relay = _Relay(state=state, admission=admission, opened=opened, started=started, escalated_from=escalated_from)
    state.spawn(relay.pump(), name=f"stream-{admission.plan.request_id}")
    headers = _pipeline.response_headers(request_id=admission.plan.request_id, route=admission.route.name,
                                         decision=admission.decision, reserved_nano=admission.reservation.amount_nano,
                                         signals=admission.plan.signals)
    headers["Cache-Control"] = "no-cache"
    return StreamingResponse(relay.client_bytes(), media_type="text/event-stream", headers=headers)


class _Relay:
    """Moves chunks from the upstream to the client, and settles when the upstream is done."""

    def __init__(self, *, state: _state.GatewayState, admission: _admission.Admission, opened: _Opened, started: float,
                 escalated_from: str | None) -> None:
        self.state = state
        self.admission = admission
        self.opened = opened
        self.started = started
        self.escalated_from = escalated_from
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        self.client_gone = False
        self.output_chars = 0
        self.usage_sent = False
        self.include_usage = admission.plan.chat.include_usage
        self.reservation = admission.reservation

    async def client_bytes(self) -> AsyncIterator[bytes]:
        """Yield what the pump queued for the client until it signals the end."""
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                yield item
        finally:
            # The client left (or the stream ended): let the pump finish without waiting on us.
            self.client_gone = True
            while not self.queue.empty():
                self.queue.get_nowait()

    async def _send(self, data: bytes) -> None:
        if not self.client_gone:
            await self.queue.put(data)

    async def _relay_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                self.output_chars += len(content)
        if "usage" in chunk:
            if not self.include_usage:
                # The gateway asked for usage; a client that did not ask sees the stream it would have seen.
                if not chunk.get("choices"):
                    return
                chunk = {name: value for name, value in chunk.items() if name != "usage"}
            elif chunk.get("usage") is not None:
                self.usage_sent = True
        await self._send(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")

    async def pump(self) -> None:
        """Relay the upstream's chunks, settle the reservation, then end the client's stream.

        The ending (``[DONE]`` or the error event) is sent only after the ledger row is
        written, so a client that saw the end of its stream can read its charge.
        """
        outcome, error_text, ending = Outcome.OK, "", [_DONE]
        try:
            for chunk in self.opened.prefetched:
                await self._relay_chunk(chunk)
            if not self.opened.finished:
                await self._relay_rest()
            usage = self.opened.stream.usage
            if self.include_usage and not self.usage_sent and usage is not None:
                await self._send(b"data: " + json.dumps(_usage_chunk(usage)).encode() + b"\n\n")
        except _upstreams.UpstreamError as error:
            outcome = Outcome.UPSTREAM_TRUNCATED if isinstance(error, _upstreams.UpstreamTruncated) else Outcome.UPSTREAM_ERROR
            error_text = str(error)
            logger.warning("stream of request %s failed after its first byte: %s", self.admission.plan.request_id, error)
            failure = _errors.UpstreamFailed(
                f"the {self.admission.route.name} route failed after the answer started ({error}); the answer is incomplete"
            )
            ending = [b"data: " + json.dumps(failure.body()).encode() + b"\n\n"]
        finally:
            if self.client_gone and outcome is Outcome.OK:
                outcome = Outcome.CLIENT_DISCONNECTED
            try:
                await self._settle(outcome, error_text)
            finally:
                for data in ending:
                    await self._send(data)
                if not self.client_gone:
                    await self.queue.put(None)

    async def _relay_rest(self) -> None:
        ttl = self.admission.route.target.timeout_seconds + self.state.settings.reservation_grace_seconds
        renew_every = ttl / 2
        next_renewal = time.monotonic() + renew_every
        async for chunk in self.opened.chunks:
            await self._relay_chunk(chunk)
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + renew_every
                try:
                    self.reservation = await self.state.ledger.renew(self.reservation, ttl_seconds=ttl)
                except ledger.LedgerError as error:
                    logger.warning("cannot renew the hold of stream %s: %s", self.admission.plan.request_id, error)

    async def _settle(self, outcome: Outcome, error_text: str) -> None:
        admission = dataclasses.replace(self.admission, reservation=self.reservation)
        result = _settling.Result(outcome=outcome, usage=self.opened.stream.usage, output_chars=self.output_chars,
                                  error=error_text)
        attempt = _settling.attempt_row(admission, result, started=self.started, escalated_from=self.escalated_from)
        await _settling.settle(self.state.ledger, self.state.metrics, admission, attempt)


def _usage_chunk(usage: _pricing.Usage) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [], "usage": _upstreams.openai_usage(usage)}
