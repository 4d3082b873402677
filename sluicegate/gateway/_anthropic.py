"""The Anthropic Messages adapter: OpenAI chat requests in, OpenAI-shaped responses out.

System and developer messages become the ``system`` blocks; tool calls and tool results
become ``tool_use`` and ``tool_result`` blocks. With provider prompt caching on, the last
system block (or, without one, the last tool) carries ``cache_control``, so the stable
prefix is cached and read back at the cached-input price. Anthropic reports cache reads
and writes beside ``input_tokens``; the gateway adds them into OpenAI's ``prompt_tokens``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from sluicegate.gateway import _upstreams
from sluicegate.routing import _pricing

ANTHROPIC_VERSION = "2023-06-01"
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_CACHE_CONTROL = {"type": "ephemeral"}


def prepare(raw: dict[str, Any], *, target: _upstreams.Target, max_tokens: int, stream: bool, prompt_caching: bool) -> dict[str, Any]:
    """Translate an OpenAI chat body into a Messages API body."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in raw["messages"]:
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content")))
        elif role in ("tool", "function"):
            result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": _text(message.get("content"))}
            _append(messages, "user", [result])
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                               "input": _arguments(function.get("arguments"))})
            _append(messages, "assistant", blocks)
        else:
            _append(messages, "user", _blocks(message.get("content")))

    payload: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens, "messages": messages}
    tools = [_tool(tool) for tool in raw.get("tools") or () if isinstance(tool, dict)]
    if system:
        payload["system"] = system
    if tools:
        payload["tools"] = tools
    if prompt_caching and (system or tools):
        last = system[-1] if system else tools[-1]
        last["cache_control"] = _CACHE_CONTROL
    _copy_sampling(raw, payload)
    if stream:
        payload["stream"] = True
    return payload


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # The Messages API expects user and assistant turns to alternate, so merge neighbours.
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            blocks.append({"type": "image", "source": _image_source(url)})
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(";base64,")
        return {"type": "base64", "media_type": header[5:], "data": data}
    return {"type": "url", "url": url}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in _blocks(content) if block["type"] == "text")


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments else {}
        except ValueError:
            return {"arguments": arguments}
    return arguments or {}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", {})
    return {"name": function.get("name", ""), "description": function.get("description", ""),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}


def _copy_sampling(raw: dict[str, Any], payload: dict[str, Any]) -> None:
    if raw.get("temperature") is not None:
        payload["temperature"] = min(float(raw["temperature"]), 1.0)  # Anthropic accepts 0 to 1
    if raw.get("top_p") is not None:
        payload["top_p"] = raw["top_p"]
    stop = raw.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    choice = raw.get("tool_choice")
    if choice == "required":
        payload["tool_choice"] = {"type": "any"}
    elif choice in ("auto", "none"):
        payload["tool_choice"] = {"type": choice}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        payload["tool_choice"] = {"type": "tool", "name": choice["function"].get("name", "")}


def parse_usage(raw: Any) -> _pricing.Usage | None:
    """Read Anthropic usage into OpenAI terms: prompt tokens include cache reads and writes."""
    if not isinstance(raw, dict):
        return None
    try:
        read = int(raw.get("cache_read_input_tokens") or 0)
        write = int(raw.get("cache_creation_input_tokens") or 0)
        return _pricing.Usage(
            prompt_tokens=int(raw.get("input_tokens") or 0) + read + write,
            completion_tokens=int(raw.get("output_tokens") or 0),
            cached_tokens=read,
            cache_write_tokens=write,
        )
    except (TypeError, ValueError, _pricing.PricingError):
        return None


def _request(target: _upstreams.Target, payload: dict[str, Any]) -> httpx.Request:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return _upstreams.build_request(target, path="/messages", payload=payload, headers=headers)


async def complete(transport: httpx.AsyncBaseTransport, target: _upstreams.Target, payload: dict[str, Any]) -> _upstreams.Completion:
    """Make a non-streamed call and translate the response into a chat completion."""
    response = await _upstreams.send(transport, _request(target, payload), stream=False)
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise _upstreams.UpstreamBadResponse("the upstream responded with a body that is not JSON") from error
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise _upstreams.UpstreamBadResponse("the Messages response has no 'content' list")
    usage = parse_usage(body.get("usage"))
    text = "".join(block.get("text", "") for block in body["content"] if block.get("type") == "text")
    calls = [
        {"id": block.get("id", ""), "type": "function",
         "function": {"name": block.get("name", ""), "arguments": json.dumps(block.get("input", {}))}}
        for block in body["content"] if block.get("type") == "tool_use"
    ]
    if not text and not calls:
        empty = _upstreams.UpstreamEmpty("the upstream answered with no content and no tool calls")
        empty.billed_usage = usage
        raise empty
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    completion: dict[str, Any] = {
        "id": body.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", target.model),
        "choices": [{"index": 0, "message": message, "finish_reason": _FINISH_REASONS.get(body.get("stop_reason") or "", "stop")}],
    }
    if usage is not None:
        completion["usage"] = _upstreams.openai_usage(usage)
    return _upstreams.Completion(body=completion, usage=usage)


class AnthropicStream:
    """An open Messages stream, translated event by event into OpenAI chunks."""

    def __init__(self, response: httpx.Response, *, model: str) -> None:
        self._response = response
        self._model = model
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._start_usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}
        self.usage: _pricing.Usage | None = None

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        stopped = False
        try:
            async for data in _upstreams.sse_data(self._response):
                try:
                    event = json.loads(data)
                except ValueError as error:
                    raise _upstreams.UpstreamBadResponse("the upstream sent a stream event that is not JSON") from error
                chunk = self._translate(event)
                if event.get("type") == "message_stop":
                    stopped = True
                    break
                if chunk is not None:
                    yield chunk
        finally:
            await self._response.aclose()
        if not stopped:
            raise _upstreams.UpstreamTruncated("the upstream closed the stream without message_stop")

    def _translate(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._model = message.get("model", self._model)
            self._start_usage = dict(message.get("usage") or {})
            self.usage = parse_usage(self._start_usage)
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start" and (event.get("content_block") or {}).get("type") == "tool_use":
            block = event["content_block"]
            position = self._tool_index.setdefault(int(event.get("index", 0)), len(self._tool_index))
            call = {"index": position, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}
            return self._chunk({"tool_calls": [call]})
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta":
                position = self._tool_index.get(int(event.get("index", 0)), 0)
                return self._chunk({"tool_calls": [{"index": position, "function": {"arguments": delta.get("partial_json", "")}}]})
            return None
        if kind == "message_delta":
            self.usage = parse_usage({**self._start_usage, **(event.get("usage") or {})})
            reason = _FINISH_REASONS.get((event.get("delta") or {}).get("stop_reason") or "", "stop")
            return self._chunk({}, finish_reason=reason)
        if kind == "error":
            error = event.get("error") or {}
            raise _upstreams.UpstreamRejected(f"stream error: {str(error.get('message', ''))[:_upstreams.MAX_ERROR_TEXT]}",
                                              status=500, code=None, error_type=error.get("type"))
        return None

    async def aclose(self) -> None:
        await self._response.aclose()


async def open_stream(transport: httpx.AsyncBaseTransport, target: _upstreams.Target, payload: dict[str, Any]) -> AnthropicStream:
    """Start a streamed call; returns once the response headers arrived with a success status."""
    response = await _upstreams.send(transport, _request(target, payload), stream=True)
    return AnthropicStream(response, model=target.model)
