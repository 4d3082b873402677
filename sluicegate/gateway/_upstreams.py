"""Upstream clients: the only gateway code that speaks HTTP to model servers.

One pooled httpx transport per upstream (base URL and key), aiohttp's, which adds far
less latency per call than httpx's default transport. Requests go to the transport
directly: the client layer's redirects, cookies and auth hooks are not needed for model
APIs and cost about a fifth of a millisecond per call. Every failure becomes an
UpstreamError, classified by status code and the provider's error ``code`` or ``type``,
never by message text::

    UpstreamError
    +-- UpstreamUnreachable   connection refused or dropped before the response headers
    +-- UpstreamTimeout       no first byte (or no next chunk) within the route's timeout
    +-- UpstreamRejected      an HTTP error status; carries status, code and type
    +-- UpstreamTruncated     the stream ended without its terminator
    +-- UpstreamEmpty         a successful answer with no content and no tool calls
    +-- UpstreamBadResponse   a body that is not the JSON the protocol promises

Provider keys are sent in headers only; they never appear in errors or logs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import httpx
import httpx_aiohttp

from sluicegate import api
from sluicegate.routing import _pricing

# Error codes and types that local servers use when a prompt exceeds the model's context:
# OpenAI and vLLM send context_length_exceeded, llama.cpp exceed_context_size_error.
CONTEXT_OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error", "context_window_exceeded"})
MAX_ERROR_TEXT = 500


class UpstreamError(Exception):
    """A failed upstream call. ``billed_usage`` is set when the provider reported usage anyway."""

    billed_usage: _pricing.Usage | None = None


class UpstreamUnreachable(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamRejected(UpstreamError):
    def __init__(self, message: str, *, status: int, code: str | None, error_type: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error_type = error_type

    @property
    def is_context_overflow(self) -> bool:
        """True for a 400 whose error code or type reports a prompt longer than the model's context."""
        return self.status == 400 and bool({self.code, self.error_type} & CONTEXT_OVERFLOW_CODES)


class UpstreamTruncated(UpstreamError):
    pass


class UpstreamEmpty(UpstreamError):
    pass


class UpstreamBadResponse(UpstreamError):
    pass


def is_local_failure(error: UpstreamError) -> bool:
    """True for failures that escalate a local call to cloud: the server's fault, not the request's.

    Connection errors, timeouts before the first byte, 5xx, 404 (a model not pulled), an
    empty answer and a context overflow escalate; other 4xx go back to the client.
    """
    if isinstance(error, UpstreamRejected):
        return error.status >= 500 or error.status == 404 or error.is_context_overflow
    return True


@dataclasses.dataclass(frozen=True)
class Completion:
    """A non-streamed response in OpenAI's shape, with the usage the provider reported."""

    body: dict[str, Any]
    usage: _pricing.Usage | None
    raw: bytes | None = None  # the upstream's bytes, sent on unchanged when the shapes match


class ChunkStream(Protocol):
    """An open streamed response, as OpenAI chunk objects; ``usage`` is filled as it arrives."""

    usage: _pricing.Usage | None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Target:
    """The upstream of one route: protocol, base URL, model, key and timeout."""

    provider: api.Provider | None  # None: a local OpenAI-compatible server
    base_url: str
    model: str
    api_key: str | None
    timeout_seconds: float

    def __repr__(self) -> str:  # never show the key
        return f"Target(provider={self.provider}, base_url={self.base_url!r}, model={self.model!r})"


def build_transport() -> httpx.AsyncBaseTransport:
    """Create a pooled transport for one upstream."""
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)
    return httpx_aiohttp.AiohttpTransport(limits=limits, trust_env=False)


def build_request(target: Target, *, path: str, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Request:
    """Build a POST of ``payload`` as JSON to ``target.base_url + path``, with the route's timeouts.

    The timeout bounds the connection and each read, so it is both the wait for the first
    byte and the longest gap between streamed chunks.
    """
    timeout = httpx.Timeout(target.timeout_seconds, connect=min(target.timeout_seconds, 10.0))
    return httpx.Request("POST", target.base_url + path, content=json.dumps(payload).encode(),
                         headers={"Content-Type": "application/json", **headers},
                         extensions={"timeout": timeout.as_dict()})


def parse_openai_usage(raw: Any) -> _pricing.Usage | None:
    """Read an OpenAI usage object; None when absent or malformed."""
    if not isinstance(raw, Mapping):
        return None
    details = raw.get("prompt_tokens_details") or {}
    try:
        return _pricing.Usage(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0,
        )
    except (TypeError, ValueError, _pricing.PricingError):
        return None


def openai_usage(usage: _pricing.Usage) -> dict[str, Any]:
    """Write a Usage as an OpenAI usage object."""
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens, "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}


def rejected_from_response(status: int, text: str) -> UpstreamRejected:
    """Build UpstreamRejected from an error response body of OpenAI's or Anthropic's shape."""
    code = error_type = None
    message = text[:MAX_ERROR_TEXT]
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
        error = payload["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        if isinstance(error.get("message"), str):
            message = error["message"][:MAX_ERROR_TEXT]
    elif isinstance(payload, Mapping) and isinstance(payload.get("error"), str):
        message = payload["error"][:MAX_ERROR_TEXT]
    return UpstreamRejected(f"HTTP {status}: {message}", status=status, code=code, error_type=error_type)


async def send(transport: httpx.AsyncBaseTransport, request: httpx.Request, *, stream: bool) -> httpx.Response:
    """Send a request and translate transport failures; an error status raises UpstreamRejected."""
    try:
        response = await transport.handle_async_request(request)
        if not stream:
            await response.aread()
    except (httpx.TimeoutException, TimeoutError) as error:
        if isinstance(error.__cause__, aiohttp.ClientConnectorError):
            # NOTE: httpx-aiohttp 0.2 reports a refused connection as httpx.ConnectTimeout.
            raise UpstreamUnreachable(f"cannot connect to {request.url.host}:{request.url.port}: {error.__cause__.os_error}") from error
        raise UpstreamTimeout(f"no response from {request.url.host}:{request.url.port} within the route's timeout") from error
    except (httpx.TransportError, aiohttp.ClientError, OSError) as error:
        raise UpstreamUnreachable(f"cannot reach {request.url.host}:{request.url.port}: {type(error).__name__}") from error
    if response.status_code >= 400:
        try:
            text = (await response.aread()).decode("utf-8", "replace")
        except httpx.HTTPError:
            text = ""
        finally:
            await response.aclose()
        raise rejected_from_response(response.status_code, text)
    return response


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """Yield the data field of each server-sent event; translate mid-stream transport failures."""
    try:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                yield line[5:].strip()
    except (httpx.TimeoutException, TimeoutError) as error:
        raise UpstreamTimeout("the stream stalled longer than the route's timeout") from error
    except (httpx.TransportError, aiohttp.ClientError, OSError) as error:
        raise UpstreamTruncated(f"the upstream dropped the stream: {type(error).__name__}") from error
