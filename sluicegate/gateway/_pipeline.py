"""The request path of ``POST /v1/chat/completions``, one step per paragraph.

authenticate -> parse -> find the namespace's policy -> plan the route (alias, model or
classifier) -> loop guard -> response cache -> admit (estimate and reserve, maybe
downgrade) -> call -> escalate once on a local failure -> settle. Every attempt, refusals
included, becomes a ledger row.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from sluicegate import api, ledger
from sluicegate.gateway import _admission, _auth, _cache, _errors, _loopguard, _requests, _runtime, _settling, _state, _streaming, _upstreams
from sluicegate.ledger import Decision, Outcome

logger = logging.getLogger(__name__)


async def handle_chat(state: _state.GatewayState, *, authorization: str | None, hint: str | None, body: bytes) -> Response:
    """Serve one chat completion request; raise GatewayError for every refusal.

    Every response, refusals included, carries X-Sluicegate-Request-Id, the id that the
    gateway's log lines and the ledger's rows use.
    """
    request_id = _admission.new_request_id()
    try:
        return await _handle_chat(state, request_id=request_id, authorization=authorization, hint=hint, body=body)
    except _errors.GatewayError as error:
        error.headers.setdefault("X-Sluicegate-Request-Id", request_id)
        raise


async def _handle_chat(state: _state.GatewayState, *, request_id: ledger.RequestId, authorization: str | None,
                       hint: str | None, body: bytes) -> Response:
    # The namespace comes from the key alone, before the body is even read.
    key = _auth.bearer_token(authorization)
    try:
        namespace = await state.auth.namespace_of(key)
    except ledger.LedgerUnavailable as error:
        state.metrics.ledger_errors.labels("authenticate").inc()
        raise _admission.ledger_down(error) from None

    chat = _requests.parse_chat_request(body)
    runtime = state.runtime
    ns = runtime.namespaces.get(namespace)
    if ns is None:
        raise _errors.NoRoutePolicy(
            f"namespace {namespace!r} has no RoutePolicy, so the gateway has no route for it: add a RoutePolicy with "
            f"metadata.namespace {namespace!r} to the gateway's config (in a cluster: apply one in that namespace, or a "
            "'default' RoutePolicy in the operator's defaults namespace)"
        )

    try:
        plan = _admission.plan_route(request_id=request_id, ns=ns, chat=chat, hint=_admission.parse_hint(hint))
        # Requests that are invalid for their route are refused before the loop guard counts them.
        _admission.estimate(plan=plan, route=plan.route, max_tokens=_admission.output_limit(plan=plan, route=plan.route))
    except _errors.GatewayError as error:
        await _record_refusal(state, request_id=request_id, namespace=namespace, route="", model=chat.model, error=error)
        raise

    # A runaway loop is stopped before anything is reserved or spent.
    guard = ns.policy.loop_guard
    retry_after = None
    if guard.max_repeats > 0:
        retry_after = state.loop_guard.check(
            _loopguard.fingerprint(namespace=namespace, raw=chat.raw),
            max_repeats=guard.max_repeats, window_seconds=guard.window_seconds,
        )
    if retry_after is not None:
        loop_error = _errors.LoopDetected(
            f"loop detected in namespace {namespace!r}: the same request was sent {guard.max_repeats} times within "
            f"{guard.window_seconds} s; change the request, or retry after {retry_after:.0f} s",
            headers={"Retry-After": str(int(retry_after))},
        )
        await _record_refusal(state, request_id=request_id, namespace=namespace, route=plan.route.name,
                              model=plan.route.target.model, error=loop_error, outcome=Outcome.LOOP_DETECTED, plan=plan)
        raise loop_error

    cache_key = _cache_key(plan)
    if cache_key is not None:
        hit = state.cache.get(cache_key)
        if hit is not None:
            return await _serve_cache_hit(state, plan=plan, entry=hit)

    try:
        admission = await _admission.admit(ledger_=state.ledger, plan=plan, route=plan.route, decision=plan.decision,
                                           attempt_number=1, grace_seconds=state.settings.reservation_grace_seconds)
    except _errors.GatewayError as error:
        await _record_refusal(state, request_id=request_id, namespace=namespace, route=plan.route.name,
                              model=plan.route.target.model, error=error, plan=plan)
        raise

    if chat.stream:
        return await _streaming.stream_chat(state, admission)
    return await _complete_chat(state, admission, cache_key=cache_key)


def _cache_key(plan: _admission.Plan) -> str | None:
    settings = plan.ns.policy.cache.response
    if not settings.enabled or not _cache.cacheable(plan.chat.raw):
        return None
    return _cache.cache_key(namespace=plan.ns.namespace, route=plan.route.name, model=plan.route.target.model,
                            raw=plan.chat.raw)


async def _serve_cache_hit(state: _state.GatewayState, *, plan: _admission.Plan, entry: _cache.Entry) -> Response:
    attempt = ledger.Attempt(
        request_id=plan.request_id, attempt_id=f"{plan.request_id}-1", namespace=plan.ns.namespace, route=entry.route,
        provider="cache", model=plan.route.target.model, decision=Decision.CACHE_HIT, outcome=Outcome.CACHE_HIT,
        signals=plan.signals,
    )
    try:
        await state.ledger.record(attempt)
    except ledger.LedgerUnavailable as error:
        raise _admission.ledger_down(error) from None
    state.metrics.requests.labels(plan.ns.namespace, entry.route, Decision.CACHE_HIT.value, Outcome.CACHE_HIT.value).inc()
    return JSONResponse(entry.body, headers=response_headers(request_id=plan.request_id, route=entry.route,
                                                     decision=Decision.CACHE_HIT, cost_nano=0))


async def _complete_chat(state: _state.GatewayState, admission: _admission.Admission, *, cache_key: str | None) -> Response:
    started = time.monotonic()
    escalated_from: str | None = None
    try:
        completion = await _call(state, admission)
    except _upstreams.UpstreamError as error:
        await finish_failed(state, admission, error, started=started)
        escalation = await admit_escalation(state, admission, error)
        started = time.monotonic()
        try:
            completion = await _call(state, escalation)
        except _upstreams.UpstreamError as cloud_error:
            await finish_failed(state, escalation, cloud_error, started=started, escalated_from=admission.attempt_id)
            raise upstream_failed(escalation, cloud_error) from None
        admission, escalated_from = escalation, admission.attempt_id

    # The hold covers the call until it is settled, so the response need not wait for the
    # settle's commit. The settle runs beside it, and shutdown waits for it.
    result = _settling.Result(outcome=Outcome.OK, usage=completion.usage)
    attempt = _settling.attempt_row(admission, result, started=started, escalated_from=escalated_from)
    state.spawn(_settling.settle(state.ledger, state.metrics, admission, attempt),
                name=f"settle-{admission.plan.request_id}")
    if cache_key is not None:
        # Stored under the route that responded, so an escalated response is not served as a local one.
        key = _cache.cache_key(namespace=admission.plan.ns.namespace, route=admission.route.name,
                               model=admission.route.target.model, raw=admission.plan.chat.raw)
        state.cache.put(key, body=completion.body, route=admission.route.name,
                        ttl_seconds=admission.plan.ns.policy.cache.response.ttl_seconds)
    headers = response_headers(request_id=admission.plan.request_id, route=admission.route.name,
                               decision=admission.decision, cost_nano=attempt.charged_nano, signals=admission.plan.signals)
    if completion.raw is not None:
        return Response(completion.raw, media_type="application/json", headers=headers)
    return JSONResponse(completion.body, headers=headers)


async def _call(state: _state.GatewayState, admission: _admission.Admission) -> _upstreams.Completion:
    route = admission.route
    payload = prepare_payload(admission, stream=False)
    started = time.monotonic()
    try:
        result: _upstreams.Completion = await route.adapter.complete(route.transport, route.target, payload)
        return result
    finally:
        state.metrics.upstream_latency.labels(route.name, route.provider_name).observe(time.monotonic() - started)


def prepare_payload(admission: _admission.Admission, *, stream: bool) -> dict[str, Any]:
    """Build the upstream body for the admitted route."""
    route = admission.route
    raw = admission.plan.chat.raw
    if route.is_anthropic:
        caching = admission.plan.ns.policy.cache.provider_prompt_caching
        payload: dict[str, Any] = route.adapter.prepare(raw, target=route.target, max_tokens=admission.max_tokens,
                                                        stream=stream, prompt_caching=caching)
    else:
        payload = route.adapter.prepare(raw, target=route.target, max_tokens=admission.max_tokens, stream=stream)
    return payload


async def finish_failed(state: _state.GatewayState, admission: _admission.Admission, error: _upstreams.UpstreamError, *,
                         started: float, escalated_from: str | None = None) -> None:
    logger.warning("%s route of namespace %s failed for request %s: %s", admission.route.name,
                   admission.plan.ns.namespace, admission.plan.request_id, error)
    result = _settling.Result(outcome=Outcome.UPSTREAM_ERROR, usage=error.billed_usage, error=str(error))
    attempt = _settling.attempt_row(admission, result, started=started, escalated_from=escalated_from)
    await _settling.settle(state.ledger, state.metrics, admission, attempt)


async def admit_escalation(state: _state.GatewayState, failed: _admission.Admission,
                      error: _upstreams.UpstreamError) -> _admission.Admission:
    """Admit the one cloud retry of a failed local call, or raise the error the client gets."""
    plan = failed.plan
    cloud = plan.ns.cloud
    if isinstance(error, _upstreams.UpstreamRejected) and not _upstreams.is_local_failure(error):
        raise _client_error(error)
    if (failed.route.name != "local" or plan.forced_local or cloud is None
            or not plan.ns.policy.escalation.on_local_failure or not _upstreams.is_local_failure(error)):
        raise upstream_failed(failed, error)
    try:
        escalation = await _admission.admit(ledger_=state.ledger, plan=plan, route=cloud, decision=Decision.ESCALATED,
                                            attempt_number=2, grace_seconds=state.settings.reservation_grace_seconds,
                                            allow_downgrade=False)
    except (_errors.BudgetExceededError, _errors.NoBudget, _errors.InvalidRequest, _errors.CannotEstimateError) as refusal:
        raise _errors.UpstreamFailed(
            f"the local route ({failed.route.target.model!r}) failed ({error}) and escalation to cloud was rejected: "
            f"{refusal.message}"
        ) from None
    state.metrics.escalations.labels(plan.ns.namespace).inc()
    return escalation


def _client_error(error: _upstreams.UpstreamRejected) -> _errors.GatewayError:
    rejected = _errors.InvalidRequest(f"the upstream rejected the request: {error}")
    rejected.status = error.status
    return rejected


def upstream_failed(admission: _admission.Admission, error: _upstreams.UpstreamError) -> _errors.GatewayError:
    if isinstance(error, _upstreams.UpstreamRejected) and not _upstreams.is_local_failure(error):
        return _client_error(error)
    route = admission.route
    hint = f"check that the server at spec.{route.name}.endpoint ({route.target.base_url}) is running and serves this model"
    if route.name == _runtime.LOCAL and admission.plan.forced_local and admission.plan.ns.cloud is not None:
        hint += "; model 'auto' would have escalated to the cloud route"
    return _errors.UpstreamFailed(f"the {route.name} route ({route.target.model!r}) failed: {error}; {hint}")



def response_headers(*, request_id: str, route: str, decision: Decision, cost_nano: int | None = None,
                     reserved_nano: int | None = None, signals: tuple[str, ...] = ()) -> dict[str, str]:
    """Build the X-Sluicegate-* headers of a served response."""
    headers = {"X-Sluicegate-Route": route, "X-Sluicegate-Decision": decision.value, "X-Sluicegate-Request-Id": request_id}
    if signals:
        headers["X-Sluicegate-Signals"] = ",".join(signals)
    if cost_nano is not None:
        headers["X-Sluicegate-Cost-USD"] = api.format_usd(cost_nano)
    if reserved_nano is not None:
        headers["X-Sluicegate-Reserved-USD"] = api.format_usd(reserved_nano)
    return headers


async def _record_refusal(state: _state.GatewayState, *, request_id: ledger.RequestId, namespace: str, route: str,
                          model: str, error: _errors.GatewayError, outcome: Outcome = Outcome.REJECTED,
                          plan: _admission.Plan | None = None) -> None:
    """Write a $0 row for a refused request; a ledger outage does not hide the refusal itself."""
    state.metrics.rejections.labels(namespace, error.code).inc()
    if isinstance(error, _errors.LedgerDown):
        return
    attempt = ledger.Attempt(
        request_id=request_id, attempt_id=f"{request_id}-0", namespace=namespace, route=route, provider="",
        model=model, decision=plan.decision if plan else Decision.CLASSIFIED, outcome=outcome,
        signals=plan.signals if plan else (), error=f"{error.code}: {error.message}"[:500],
    )
    try:
        await state.ledger.record(attempt)
    except ledger.LedgerUnavailable as ledger_error:
        state.metrics.ledger_errors.labels("record").inc()
        logger.warning("cannot record the refusal of request %s: %s", request_id, ledger_error)
