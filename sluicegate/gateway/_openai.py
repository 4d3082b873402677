"""The OpenAI-compatible upstream adapter: OpenAI, Ollama's /v1, llama.cpp server, vLLM.

The client's body goes upstream nearly unchanged: the route's model replaces the alias,
the held output limit replaces the client's, and streams always ask for usage, which the
gateway strips again when the client did not ask for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from sluicegate import api
from sluicegate.gateway import _upstreams
from sluicegate.routing import _pricing


def prepare(raw: dict[str, Any], *, target: _upstreams.Target, max_tokens: int, stream: bool) -> dict[str, Any]:
    """Build the upstream body from the client's, with the route's model and the held output limit."""
    payload = dict(raw)
    payload["model"] = target.model
    payload.pop("max_completion_tokens", None)
    payload.pop("max_tokens", None)
    # OpenAI's reasoning models accept only max_completion_tokens; other servers know max_tokens.
    limit_field = "max_completion_tokens" if target.provider is api.Provider.OPENAI else "max_tokens"
    payload[limit_field] = max_tokens
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
    return payload


def _request(target: _upstreams.Target, payload: dict[str, Any]) -> httpx.Request:
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    return _upstreams.build_request(target, path="/chat/completions", payload=payload, headers=headers)


async def complete(transport: httpx.AsyncBaseTransport, target: _upstreams.Target, payload: dict[str, Any]) -> _upstreams.Completion:
    """Make a non-streamed call."""
    response = await _upstreams.send(transport, _request(target, payload), stream=False)
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise _upstreams.UpstreamBadResponse(f"the upstream answered HTTP {response.status_code} with a body that is not JSON") from error
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise _upstreams.UpstreamBadResponse("the upstream answer has no 'choices' list")
    usage = _upstreams.parse_openai_usage(body.get("usage"))
    if not any(_has_answer(choice.get("message")) for choice in body["choices"] if isinstance(choice, dict)):
        empty = _upstreams.UpstreamEmpty("the upstream answered with no content and no tool calls")
        empty.billed_usage = usage
        raise empty
    return _upstreams.Completion(body=body, usage=usage, raw=response.content)


def _has_answer(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    return bool(message.get("content") or message.get("tool_calls") or message.get("function_call") or message.get("refusal"))


class OpenAIStream:
    """An open OpenAI-style stream; yields chunk objects and records the last usage seen."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.usage: _pricing.Usage | None = None

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        done = False
        try:
            async for data in _upstreams.sse_data(self._response):
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as error:
                    raise _upstreams.UpstreamBadResponse("the upstream sent a stream event that is not JSON") from error
                if not isinstance(chunk, dict):
                    continue
                if isinstance(chunk.get("error"), dict):
                    raise _upstreams.rejected_from_response(500, data)
                usage = _upstreams.parse_openai_usage(chunk.get("usage"))
                if usage is not None:
                    # Some servers send running totals on every chunk; the last one is final.
                    self.usage = usage
                yield chunk
        finally:
            await self._response.aclose()
        if not done:
            raise _upstreams.UpstreamTruncated("the upstream closed the stream without [DONE]")

    async def aclose(self) -> None:
        await self._response.aclose()


async def open_stream(transport: httpx.AsyncBaseTransport, target: _upstreams.Target, payload: dict[str, Any]) -> OpenAIStream:
    """Start a streamed call; returns once the response headers arrived with a success status."""
    response = await _upstreams.send(transport, _request(target, payload), stream=True)
    return OpenAIStream(response)
