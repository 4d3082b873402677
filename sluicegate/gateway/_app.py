"""The FastAPI app: OpenAI-compatible routes, health, metrics, and the lifespan that wires state.

The ledger connection, the upstream client pool, the runtime and the reload watcher are
created in the lifespan and handed to routes through ``app.state.gateway``; a test passes
its own ledger or transport to ``create_app`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import fastapi
import httpx
from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from sluicegate import ledger
from sluicegate.gateway import _admission, _auth, _cache, _errors, _loopguard, _metrics, _pipeline, _reload, _runtime, _settings, _state

logger = logging.getLogger(__name__)


def create_app(
    settings: _settings.GatewaySettings,
    *,
    ledger_factory: Callable[[str], ledger.Ledger] | None = None,  # for tests
    transport: httpx.AsyncBaseTransport | None = None,  # for tests
) -> fastapi.FastAPI:
    """Build the gateway app. The config is loaded and the ledger migrated when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: fastapi.FastAPI) -> AsyncIterator[None]:
        pool = _runtime.ClientPool(transport=transport)
        runtime = _reload.load_runtime(settings.config_path, pool=pool, secrets_dir=settings.secrets_dir)
        ledger_ = (ledger_factory or ledger.connect)(settings.ledger_url)
        await ledger_.migrate()
        await _reload.sync_budgets(ledger_, runtime)
        state = _state.GatewayState(
            settings=settings, ledger=ledger_, runtime=runtime, pool=pool, auth=_auth.Authenticator(ledger_),
            loop_guard=_loopguard.LoopGuard(), cache=_cache.ResponseCache(), metrics=_metrics.Metrics(),
        )
        app.state.gateway = state
        stop = asyncio.Event()
        watcher = asyncio.create_task(_reload.watch(state, stop=stop), name="config-watcher")
        logger.info("gateway ready: %d namespaces, ledger %s", len(runtime.namespaces), _redact(settings.ledger_url))
        try:
            yield
        finally:
            stop.set()
            await watcher
            await state.drain(timeout=settings.shutdown_drain_seconds)
            await pool.aclose()
            await ledger_.close()

    app = fastapi.FastAPI(title="sluicegate gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    _add_routes(app, settings)
    _add_error_handlers(app)
    return app


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _state_of(request: Request) -> _state.GatewayState:
    state: _state.GatewayState = request.app.state.gateway
    return state


async def _read_body(request: Request, *, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _errors.RequestTooLarge(f"the request body is {int(length):,} bytes, above the limit of {limit:,} bytes: "
                                      "send a shorter conversation, or raise SLUICEGATE_MAX_BODY_BYTES")
    body = bytearray()
    async for part in request.stream():
        body.extend(part)
        if len(body) > limit:
            raise _errors.RequestTooLarge(f"the request body exceeds the limit of {limit:,} bytes: send a shorter "
                                          "conversation, or raise SLUICEGATE_MAX_BODY_BYTES")
    return bytes(body)


def _add_routes(app: fastapi.FastAPI, settings: _settings.GatewaySettings) -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        state = _state_of(request)
        body = await _read_body(request, limit=settings.max_body_bytes)
        return await _pipeline.handle_chat(state, authorization=request.headers.get("authorization"),
                                           hint=request.headers.get("x-sluicegate-complexity"), body=body)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        state = _state_of(request)
        key = _auth.bearer_token(request.headers.get("authorization"))
        try:
            namespace = await state.auth.namespace_of(key)
        except ledger.LedgerUnavailable as error:
            raise _admission.ledger_down(error) from None
        ns = state.runtime.namespaces.get(namespace)
        names = ns.model_names if ns is not None else ()
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "sluicegate"}
                                                        for name in names]})

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        state = _state_of(request)
        try:
            await asyncio.wait_for(state.ledger.attempts(limit=1), timeout=2.0)
        except (ledger.LedgerError, TimeoutError) as error:
            return JSONResponse({"status": "unavailable", "reason": f"ledger unreachable: {error}"}, status_code=503)
        return JSONResponse({"status": "ready", "namespaces": len(state.runtime.namespaces)})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(_state_of(request).metrics.render(), media_type="text/plain; version=0.0.4")


def _add_error_handlers(app: fastapi.FastAPI) -> None:
    async def gateway_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, _errors.GatewayError)  # noqa: S101 - registered for this class only
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)  # noqa: S101 - registered for this class only
        if error.status_code == 404:
            wrapped: _errors.GatewayError = _errors.NotFound(
                f"path {request.url.path!r} is not served: sluicegate serves POST /v1/chat/completions and GET /v1/models"
            )
        elif error.status_code == 405:
            wrapped = _errors.InvalidRequest(f"method {request.method} is not allowed on {request.url.path}")
            wrapped.status = 405
        else:
            wrapped = _errors.InvalidRequest(str(error.detail))
            wrapped.status = error.status_code
        return JSONResponse(wrapped.body(), status_code=wrapped.status)

    app.add_exception_handler(_errors.GatewayError, gateway_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def app_factory() -> Any:
    """Build the app from the environment, for ``uvicorn --factory`` with several workers."""
    settings = _settings.from_environment(config_path=None, ledger_url=None, secrets_dir=None, host=None, port=None)
    return create_app(settings)
