"""Admission: choose a route, cap its output, estimate the cost and reserve it.

Nothing reaches an upstream before this module has a reservation for it. A request that
does not fit is downgraded to the local route when every budget lacking room has
``onExceeded: Downgrade`` and the request's output fits the local route. Otherwise it is
rejected with 429 ``budget_exceeded``.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid

from sluicegate import api, ledger, routing
from sluicegate.gateway import _errors, _requests, _runtime
from sluicegate.ledger import Decision
from sluicegate.routing import _estimate, _pricing

HINT_HEADER = "X-Sluicegate-Complexity"


@dataclasses.dataclass(frozen=True)
class Plan:
    """The route a request asked for or was classified to, before any budget check."""

    request_id: ledger.RequestId
    ns: _runtime.NamespaceRuntime
    chat: _requests.ChatRequest
    route: _runtime.Route
    decision: Decision
    forced_local: bool
    signals: tuple[str, ...]

    @functools.cached_property
    def prompt(self) -> _estimate.PromptEstimate:
        """The prompt estimate, computed once: it is the same for every route of the request."""
        try:
            return _estimate.estimate_prompt(messages=self.chat.messages, tools=self.chat.tools,
                                             strict=self.ns.policy.strict_ceiling)
        except _estimate.CannotEstimate as error:
            raise _errors.CannotEstimateError(str(error), param=error.param) from None


@dataclasses.dataclass(frozen=True)
class Admission:
    """A route with its output limit, estimate and reservation: ready to call."""

    plan: Plan
    route: _runtime.Route
    decision: Decision
    max_tokens: int
    prompt_tokens: int
    estimate_nano: int
    reservation: ledger.Reservation
    attempt_id: str


def new_request_id() -> ledger.RequestId:
    """Generate a request id, also sent back as X-Sluicegate-Request-Id."""
    return ledger.RequestId(uuid.uuid4().hex)


def parse_hint(value: str | None) -> routing.Tier | None:
    """Read the X-Sluicegate-Complexity header; raise InvalidRequest for other values."""
    if value is None or value == "":
        return None
    try:
        return routing.Tier(value.strip().lower())
    except ValueError:
        raise _errors.InvalidRequest(
            f"header {HINT_HEADER} is {value!r}: use 'simple' or 'complex', or leave it out", param=HINT_HEADER
        ) from None


def plan_route(
    *, request_id: ledger.RequestId, ns: _runtime.NamespaceRuntime, chat: _requests.ChatRequest, hint: routing.Tier | None
) -> Plan:
    """Resolve the requested model to a route: an alias, a route's model, or the classifier's choice."""
    model = chat.model
    cloud = ns.cloud
    if model == "auto":
        classification = routing.classify(messages=chat.messages, settings=ns.policy.classifier, tools=chat.tools, hint=hint)
        signals = classification.signals
        wants_cloud = classification.tier is routing.Tier.COMPLEX and cloud is not None
        if (not wants_cloud and not classification.hinted and cloud is not None and chat.max_tokens is not None
                and ns.local.max_output_tokens < chat.max_tokens <= cloud.max_output_tokens):
            # An output longer than the local route allows is itself a reason to go to cloud.
            wants_cloud, signals = True, (*signals, "max_tokens")
        route = cloud if wants_cloud and cloud is not None else ns.local
        decision = Decision.CLASSIFIED
        if wants_cloud and not ns.budgets and not (cloud and cloud.prices.is_free):
            # No budget, no cloud: an automatic choice falls back to the free local route.
            route, decision = ns.local, Decision.DOWNGRADED
        return Plan(request_id=request_id, ns=ns, chat=chat, route=route, decision=decision,
                    forced_local=False, signals=signals)
    if model in (_runtime.LOCAL, ns.local.target.model):
        return Plan(request_id=request_id, ns=ns, chat=chat, route=ns.local, decision=Decision.FORCED,
                    forced_local=True, signals=())
    if cloud is not None and model in (_runtime.CLOUD, cloud.target.model):
        return Plan(request_id=request_id, ns=ns, chat=chat, route=cloud, decision=Decision.FORCED,
                    forced_local=False, signals=())
    if model == _runtime.CLOUD:
        raise _errors.ModelNotFound(
            f"model 'cloud' is not available in namespace {ns.namespace!r}: its RoutePolicy has no cloud route; "
            f"use one of {', '.join(ns.model_names[:2])} or {ns.local.target.model!r}",
            param="model",
        )
    raise _errors.ModelNotFound(
        f"model {model!r} is not served to namespace {ns.namespace!r}: use one of {', '.join(repr(n) for n in ns.model_names)}",
        param="model",
    )


def output_limit(*, plan: Plan, route: _runtime.Route) -> int:
    """Return the max_tokens sent upstream: the request's, else the policy default, at most the route's maximum."""
    requested = plan.chat.max_tokens
    if requested is None:
        return min(plan.ns.policy.default_max_tokens, route.max_output_tokens)
    if requested > route.max_output_tokens:
        field = plan.chat.max_tokens_field
        limits = f"the {route.name} route's maximum of {route.max_output_tokens:,} for model {route.target.model!r}"
        cloud = plan.ns.cloud
        if plan.chat.model == "auto" and cloud is not None and cloud is not route:
            limits += f" (the cloud route's maximum is {cloud.max_output_tokens:,})"
        raise _errors.InvalidRequest(
            f"{field} is {requested:,}, above {limits}: send {field} of at most {route.max_output_tokens:,}, or raise "
            f"spec.{route.name}.maxOutputTokens in the RoutePolicy of namespace {plan.ns.namespace!r}",
            param=field,
        )
    return requested


def estimate(*, plan: Plan, route: _runtime.Route, max_tokens: int) -> tuple[int, int]:
    """Return (prompt tokens, nano-USD) of the most this call can cost; raise CannotEstimateError."""
    prompt = plan.prompt
    amount = _pricing.estimate_nano(route.prices, prompt_tokens=prompt.tokens, max_output_tokens=max_tokens * plan.chat.n,
                                    strict=plan.ns.policy.strict_ceiling)
    return prompt.tokens, amount


def require_budget(*, plan: Plan, route: _runtime.Route) -> None:
    """No budget, no cloud: a namespace without an LLMBudget may use $0 routes only."""
    if not route.prices.is_free and not plan.ns.budgets:
        raise _errors.NoBudget(
            f"namespace {plan.ns.namespace!r} has no LLMBudget, so it may use only $0 routes, and the {route.name} route "
            f"({route.target.model!r}) is paid: apply an LLMBudget in namespace {plan.ns.namespace!r}"
        )


async def admit(*, ledger_: ledger.Ledger, plan: Plan, route: _runtime.Route, decision: Decision, attempt_number: int,
                grace_seconds: float, allow_downgrade: bool = True) -> Admission:
    """Reserve the call's estimate on ``route``, downgrading to local when the budgets allow it."""
    require_budget(plan=plan, route=route)
    max_tokens = output_limit(plan=plan, route=route)
    prompt_tokens, amount = estimate(plan=plan, route=route, max_tokens=max_tokens)
    try:
        reservation = await _reserve(ledger_, plan=plan, route=route, amount=amount, grace_seconds=grace_seconds)
    except ledger.BudgetExceeded as exceeded:
        local = plan.ns.local
        if not (allow_downgrade and route is not local and _may_downgrade(exceeded, plan=plan, local=local)):
            raise budget_error(exceeded, route=route, plan=plan) from None
        return await admit(ledger_=ledger_, plan=plan, route=local, decision=Decision.DOWNGRADED,
                           attempt_number=attempt_number, grace_seconds=grace_seconds, allow_downgrade=False)
    return Admission(plan=plan, route=route, decision=decision, max_tokens=max_tokens, prompt_tokens=prompt_tokens,
                     estimate_nano=amount, reservation=reservation, attempt_id=f"{plan.request_id}-{attempt_number}")


async def _reserve(ledger_: ledger.Ledger, *, plan: Plan, route: _runtime.Route, amount: int,
                   grace_seconds: float) -> ledger.Reservation:
    # Even a $0 call takes a reservation: it proves the ledger is reachable before the call,
    # so every route fails closed when the ledger is down.
    try:
        return await ledger_.reserve(namespace=plan.ns.namespace, budgets=plan.ns.budgets, amount_nano=amount,
                                     ttl_seconds=route.target.timeout_seconds + grace_seconds)
    except ledger.LedgerUnavailable as error:
        raise ledger_down(error) from None


def _may_downgrade(exceeded: ledger.BudgetExceeded, *, plan: Plan, local: _runtime.Route) -> bool:
    if any(state.budget.on_exceeded is api.OnExceeded.REJECT for state in exceeded.lacking):
        return False
    requested = plan.chat.max_tokens
    return requested is None or requested <= local.max_output_tokens


def budget_error(exceeded: ledger.BudgetExceeded, *, route: _runtime.Route,
                 plan: Plan | None = None) -> _errors.BudgetExceededError:
    """Build the 429 that names the namespace, each budget without room, its spend and its ceiling.

    When the request was not served locally instead, the message says why.
    """
    details = "; ".join(
        f"budget {state.budget.name!r} ({state.budget.period.value}) has spent ${api.format_usd(state.spent_nano)} "
        f"and holds ${api.format_usd(state.reserved_nano)} in flight of its ${api.format_usd(state.budget.ceiling_nano)} ceiling"
        for state in exceeded.lacking
    )
    why_not_local = ""
    local = plan.ns.local if plan is not None else None
    if plan is not None and local is not None and route is not local:
        rejecting = [state.budget.name for state in exceeded.lacking if state.budget.on_exceeded is api.OnExceeded.REJECT]
        requested = plan.chat.max_tokens
        if rejecting:
            why_not_local = f" It was not served locally because budget {rejecting[0]!r} has onExceeded: Reject."
        elif requested is not None and requested > local.max_output_tokens:
            why_not_local = (f" It was not served locally because its {plan.chat.max_tokens_field} of {requested:,} is above "
                             f"the local route's maximum of {local.max_output_tokens:,}.")
    fits_local = plan is None or plan.chat.max_tokens is None or (local is not None and plan.chat.max_tokens <= local.max_output_tokens)
    if all(state.budget.ceiling_nano == 0 for state in exceeded.lacking):
        advice = "A ceiling of $0 blocks every paid call: raise spec.ceilingUSD"
        advice += ", or use a $0 route such as model 'local'" if fits_local else ""
    else:
        advice = "Raise spec.ceilingUSD, wait for the next window, or send a smaller max_tokens"
    kind = "request, which the classifier sent to the cloud route," if plan is not None and plan.chat.model == "auto" \
        else f"{route.name} request"
    return _errors.BudgetExceededError(
        f"budget exhausted for namespace {exceeded.namespace!r}: this {kind} needs up to "
        f"${api.format_usd(exceeded.amount_nano)}, but {details}.{why_not_local} {advice}"
    )


def ledger_down(error: Exception) -> _errors.LedgerDown:
    """Build the 503 for an unreachable ledger: budget enforcement is unavailable, so nothing is served."""
    return _errors.LedgerDown(
        f"the budget ledger is unavailable ({error}), so budget enforcement is unavailable and no request is served; "
        "retry when the ledger's database is back"
    )
