"""A fake sluicegate gateway on 127.0.0.1 for replay tests, run by aiohttp in a thread.

Its answer depends on words in the last message:

- "cloud" answers on the cloud route with a cost, and "escalate" does too, as an escalation;
- "budget" and "loop" get the 429 rejections, and "broken" gets a 502;
- "slow" waits `SLOW_SECONDS` before answering;
- "badcost" sends an unreadable cost header;
- anything else is a free local answer.

A wrong API key gets 401.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

from aiohttp import web

API_KEY = "sk-test-replay"
# 100 prompt and 20 output tokens at $2 / $8 per million: $0.0002 + $0.00016.
CLOUD_COST_USD = "0.00036"
SLOW_SECONDS = 5.0
PROMPT_TOKENS = 100
COMPLETION_TOKENS = 20


@dataclasses.dataclass
class FakeGateway:
    """The running server's base URL and the request bodies it received."""

    url: str
    bodies: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


def _error(status: int, code: str) -> web.Response:
    body = {"error": {"message": f"fake {code}", "type": "invalid_request_error", "param": None, "code": code}}
    return web.json_response(body, status=status)


def _app(gateway: FakeGateway) -> web.Application:
    async def completions(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_api_key")
        body = await request.json()
        gateway.bodies.append(body)
        text = str(body["messages"][-1]["content"])
        if "budget" in text:
            return _error(429, "budget_exceeded")
        if "loop" in text:
            return _error(429, "loop_detected")
        if "broken" in text:
            return _error(502, "upstream_error")
        gateway.in_flight += 1
        gateway.max_in_flight = max(gateway.max_in_flight, gateway.in_flight)
        try:
            # Every answer waits a little, so concurrent requests overlap at the server.
            await asyncio.sleep(SLOW_SECONDS if "slow" in text else 0.02)
        finally:
            gateway.in_flight -= 1

        route = "cloud" if "cloud" in text or "escalate" in text else "local"
        headers = {
            "X-Sluicegate-Route": route,
            "X-Sluicegate-Decision": "escalated" if "escalate" in text else "classified",
            "X-Sluicegate-Cost-USD": CLOUD_COST_USD if route == "cloud" else "0",
        }
        if "badcost" in text:
            headers["X-Sluicegate-Cost-USD"] = "1e-3"

        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
        }
        return web.json_response(answer, headers=headers)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


def serve() -> Iterator[FakeGateway]:
    """Run the fake gateway on a free port of 127.0.0.1 until the generator is closed."""
    loop = asyncio.new_event_loop()
    gateway = FakeGateway(url="")
    runner = web.AppRunner(_app(gateway), shutdown_timeout=1.0)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    gateway.url = f"http://{host}:{port}"

    thread = threading.Thread(target=loop.run_forever, name="fake-gateway", daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
