"""A scripted OpenAI- and Anthropic-compatible upstream on 127.0.0.1, with fault injection.

It stands in for paid cloud providers in tests, benchmarks and ``sluicegate demo``: each
request takes the next queued Script (or the default one), and every request is recorded
so tests can count upstream calls and read what the gateway sent. It runs on aiohttp in a
thread of its own, so a test can drive a gateway in the same process or in others.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from sluicegate.scripted._script import Script, UsageMode


@dataclasses.dataclass(frozen=True)
class RecordedCall:
    """One request the upstream received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class ScriptedUpstream:
    """A scripted upstream server; use as a context manager or call start() and stop().

    ``provider`` only sets the default model name it reports; both the OpenAI route
    (``POST /v1/chat/completions``) and the Anthropic route (``POST /v1/messages``) are
    always served.
    """

    def __init__(self, *, default: Script | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default = default or Script()
        self._queue: collections.deque[Script] = collections.deque()
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # Scripting and inspection, safe from any thread.

    def enqueue(self, *scripts: Script) -> None:
        """Queue scripts for the next requests, in order; the default applies after them."""
        with self._lock:
            self._queue.extend(scripts)

    def set_default(self, script: Script) -> None:
        """Replace the script used when the queue is empty."""
        with self._lock:
            self.default = script

    @property
    def calls(self) -> list[RecordedCall]:
        """A copy of every request received so far."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        """The number of chat requests received so far."""
        with self._lock:
            return len(self._calls)

    def reset(self) -> None:
        """Forget recorded calls and queued scripts."""
        with self._lock:
            self._calls.clear()
            self._queue.clear()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. http://127.0.0.1:43125/v1."""
        return f"http://{self._host}:{self._port}/v1"

    # Lifecycle.

    def start(self) -> ScriptedUpstream:
        """Start serving in a background thread and wait until the port is bound."""
        self._thread = threading.Thread(target=self._run, name="scripted-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the scripted upstream did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError(f"the scripted upstream failed to start: {self._startup_error}") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> ScriptedUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as error:  # reported to the starting thread
            self._startup_error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        self._runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        # NOTE: aiohttp exposes the bound port only through the asyncio server.
        server = site._server
        if not isinstance(server, asyncio.Server) or not server.sockets:
            raise RuntimeError("aiohttp started no listening socket")
        self._port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # Request handling, on the server's loop.

    def _take(self, request: web.Request, body: dict[str, Any]) -> Script:
        with self._lock:
            self._calls.append(
                RecordedCall(path=request.path, headers=dict(request.headers), body=body, at=time.monotonic())
            )
            return self._queue.popleft() if self._queue else self.default


def build_app(upstream: ScriptedUpstream) -> web.Application:
    """Build the aiohttp application that serves ``upstream``'s scripts."""
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def openai_chat(request: web.Request) -> web.StreamResponse:
        return await _handle(upstream, request, anthropic=False)

    async def anthropic_messages(request: web.Request) -> web.StreamResponse:
        return await _handle(upstream, request, anthropic=True)

    app.router.add_post("/v1/chat/completions", openai_chat)
    app.router.add_post("/v1/messages", anthropic_messages)
    app.router.add_get("/v1/models", _models)
    return app


async def _models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "sluicegate"}]})


async def _handle(upstream: ScriptedUpstream, request: web.Request, *, anthropic: bool) -> web.StreamResponse:
    body = await request.json()
    script = upstream._take(request, body)
    if script.delay_seconds:
        await asyncio.sleep(script.delay_seconds)
    if script.close_before_headers:
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never sent: the connection is already gone
    if script.status >= 400:
        return _error(script, anthropic=anthropic)

    # Like a real provider, never report more output than the request allowed.
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if isinstance(limit, int) and script.completion_count() > limit:
        script = dataclasses.replace(script, completion_tokens=limit, reasoning_tokens=min(script.reasoning_tokens, limit),
                                     finish_reason="length")

    prompt_tokens = script.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = math.ceil(len(json.dumps(body.get("messages", ""))) / 4)
    model = str(body.get("model", "scripted"))
    if anthropic:
        from sluicegate.scripted import _anthropic

        if body.get("stream"):
            return await _anthropic.stream(request, script, model=model, prompt_tokens=prompt_tokens)
        return _anthropic.respond(script, model=model, prompt_tokens=prompt_tokens)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        return await _stream_openai(request, script, model=model, prompt_tokens=prompt_tokens, asked=bool(options.get("include_usage")))
    return web.json_response(_openai_completion(script, model=model, prompt_tokens=prompt_tokens))


def _error(script: Script, *, anthropic: bool) -> web.Response:
    if anthropic:
        payload: dict[str, Any] = {"type": "error", "error": {"type": script.error_type, "message": script.error_message}}
    else:
        payload = {"error": {"message": script.error_message, "type": script.error_type, "param": None, "code": script.error_code}}
    return web.json_response(payload, status=script.status)


def openai_usage(script: Script, *, prompt_tokens: int) -> dict[str, Any]:
    """Build an OpenAI usage object from a script's token counts."""
    completion = script.completion_count()
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
    }


def _openai_completion(script: Script, *, model: str, prompt_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(script.chunks)}
    if script.tool_calls:
        message["tool_calls"] = list(script.tool_calls)
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": script.finish_reason}],
    }
    if script.include_usage_in_response:
        payload["usage"] = openai_usage(script, prompt_tokens=prompt_tokens)
    return payload


def _openai_chunks(script: Script, *, model: str, prompt_tokens: int, asked: bool) -> Iterator[dict[str, Any]]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    with_null_usage = asked and script.usage is not UsageMode.NEVER
    for index, text in enumerate(script.chunks):
        delta: dict[str, Any] = {"content": text}
        if index == 0:
            delta["role"] = "assistant"
        chunk: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        if script.usage is UsageMode.CUMULATIVE:
            running = dataclasses.replace(script, completion_tokens=index + 1)
            chunk["usage"] = openai_usage(running, prompt_tokens=prompt_tokens)
        elif with_null_usage:
            chunk["usage"] = None
        yield chunk
    final: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": script.finish_reason}]}
    if script.usage is UsageMode.CUMULATIVE:
        final["usage"] = openai_usage(script, prompt_tokens=prompt_tokens)
    elif with_null_usage:
        final["usage"] = None
    yield final
    if script.usage is UsageMode.ALWAYS or (script.usage is UsageMode.WHEN_ASKED and asked):
        yield {**base, "choices": [], "usage": openai_usage(script, prompt_tokens=prompt_tokens)}


async def _stream_openai(request: web.Request, script: Script, *, model: str, prompt_tokens: int, asked: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for count, chunk in enumerate(_openai_chunks(script, model=model, prompt_tokens=prompt_tokens, asked=asked)):
        if script.cut_after_chunks is not None and count >= script.cut_after_chunks:
            await cut(request)
            return response
        if script.chunk_delay_seconds:
            await asyncio.sleep(script.chunk_delay_seconds)
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def cut(request: web.Request) -> None:
    """Drop the connection mid-body, as a crashed or overloaded server does."""
    await asyncio.sleep(0.05)  # let the chunks already written reach the client first
    if request.transport is not None:
        request.transport.abort()
