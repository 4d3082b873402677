"""Anthropic Messages API answers of the scripted upstream, streamed and not."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web

from sluicegate.scripted import _server
from sluicegate.scripted._script import Script

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _usage(script: Script, *, prompt_tokens: int) -> dict[str, int]:
    # Anthropic's input_tokens excludes cache reads and cache writes; OpenAI's prompt_tokens includes them.
    return {
        "input_tokens": prompt_tokens - script.cached_tokens - script.cache_write_tokens,
        "cache_read_input_tokens": script.cached_tokens,
        "cache_creation_input_tokens": script.cache_write_tokens,
        "output_tokens": script.completion_count(),
    }


def respond(script: Script, *, model: str, prompt_tokens: int) -> web.Response:
    """Answer a non-streamed Messages request."""
    return web.json_response(
        {
            "id": f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "".join(script.chunks)}],
            "stop_reason": _STOP_REASONS.get(script.finish_reason, "end_turn"),
            "stop_sequence": None,
            "usage": _usage(script, prompt_tokens=prompt_tokens),
        }
    )


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


async def stream(request: web.Request, script: Script, *, model: str, prompt_tokens: int) -> web.StreamResponse:
    """Answer a streamed Messages request with Anthropic's server-sent events."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    usage = _usage(script, prompt_tokens=prompt_tokens)
    start_usage = {**usage, "output_tokens": 1}
    message: dict[str, Any] = {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    await response.write(_event("message_start", {"type": "message_start", "message": message}))
    await response.write(_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
    for count, text in enumerate(script.chunks):
        if script.cut_after_chunks is not None and count >= script.cut_after_chunks:
            await _server.cut(request)
            return response
        if script.chunk_delay_seconds:
            await asyncio.sleep(script.chunk_delay_seconds)
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        await response.write(_event("content_block_delta", delta))
    await response.write(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    stop = _STOP_REASONS.get(script.finish_reason, "end_turn")
    await response.write(_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                                  "usage": {"output_tokens": usage["output_tokens"]}}))
    await response.write(_event("message_stop", {"type": "message_stop"}))
    await response.write_eof()
    return response
