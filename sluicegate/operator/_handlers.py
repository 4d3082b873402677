"""kopf handlers: thin wrappers that reconcile the fleet and translate errors into retry decisions.

Every create, update, resume and delete of an LLMBudget or RoutePolicy reconciles the whole
fleet (see ``_fleet``); a timer per LLMBudget keeps its spend current; a background task
reconciles every ``resync_seconds`` so rotated provider Secrets reach the gateway.

Errors carry the retry decision: an invalid resource raises ``kopf.PermanentError`` (its
status already says which field is wrong, and retrying cannot fix it), while API server
and ledger trouble raise ``kopf.TemporaryError`` with a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import kopf

from sluicegate import api
from sluicegate import ledger as ledgers
from sluicegate.operator import _names, _snapshot
from sluicegate.operator._budgets import BudgetStatusSync
from sluicegate.operator._fleet import Fleet, Outcome
from sluicegate.operator._kubernetes import ClientApi, Forbidden, KubernetesApi, KubernetesError, Rejected
from sluicegate.operator._settings import OperatorSettings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
PLURALS = {"LLMBudget": "llmbudgets", "RoutePolicy": "routepolicies"}

# Retry delays, in seconds: short for outages that heal by themselves, long where a person
# has to act (RBAC, an admission policy that rejects our objects).
TRANSIENT_RETRY_SECONDS = 15
LEDGER_RETRY_SECONDS = 30
ACTION_NEEDED_RETRY_SECONDS = 120


@dataclasses.dataclass
class OperatorContext:
    """The long-lived parts every handler uses; stored in kopf's memo as ``sluicegate``."""

    settings: OperatorSettings
    api: KubernetesApi
    ledger: ledgers.Ledger
    fleet: Fleet
    budgets: BudgetStatusSync
    resync_task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, *, settings: OperatorSettings, api: KubernetesApi, ledger: ledgers.Ledger) -> OperatorContext:
        """Wire the fleet and the budget status sync to one API client, ledger and lock."""
        fleet = Fleet(api=api, ledger=ledger, settings=settings)
        budgets = BudgetStatusSync(api=api, ledger=ledger, settings=settings, lock=fleet.lock)
        return cls(settings=settings, api=api, ledger=ledger, fleet=fleet, budgets=budgets)


def context_of(memo: Any) -> OperatorContext:
    """Return the OperatorContext that the startup handler put into the memo."""
    context = memo.get("sluicegate") if isinstance(memo, Mapping) else getattr(memo, "sluicegate", None)
    if not isinstance(context, OperatorContext):
        raise kopf.PermanentError("the operator context is missing from the memo: the startup handler did not run")
    return context


async def _retrying(step: Callable[[], Awaitable[_T]]) -> _T:
    try:
        return await step()
    except (Forbidden, Rejected) as error:
        raise kopf.TemporaryError(f"{error}; will retry in {ACTION_NEEDED_RETRY_SECONDS}s", delay=ACTION_NEEDED_RETRY_SECONDS) from error
    except KubernetesError as error:
        raise kopf.TemporaryError(f"Kubernetes API: {error}; will retry in {TRANSIENT_RETRY_SECONDS}s", delay=TRANSIENT_RETRY_SECONDS) from error
    except ledgers.LedgerError as error:
        raise kopf.TemporaryError(f"ledger: {error}; will retry in {LEDGER_RETRY_SECONDS}s", delay=LEDGER_RETRY_SECONDS) from error


def plain(value: Any) -> Any:
    """Copy kopf's body views into plain dicts and lists, which pydantic and deepcopy accept."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


async def resource_changed(*, body: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Reconcile the fleet after a create, update or resume; stop retrying an invalid resource."""
    context = context_of(memo)
    outcome: Outcome = await _retrying(context.fleet.reconcile)
    verdict = outcome.snapshot.verdicts.get(_snapshot.ref_of(plain(body)))
    if verdict is not None and verdict.error is not None:
        raise kopf.PermanentError(verdict.error)


async def resource_deleted(*, body: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Reconcile without the deleted resource, removing what only it needed."""
    context = context_of(memo)
    namespace = _snapshot.ref_of(plain(body)).namespace
    await _retrying(lambda: context.fleet.reconcile(removed_namespace=namespace))


async def budget_timer(*, body: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Refresh an LLMBudget's spend, window, Exhausted condition and alerts from the ledger."""
    context = context_of(memo)
    raw = plain(body)
    await _retrying(lambda: context.budgets.sync(raw))


async def _resync_forever(fleet: Fleet, *, interval: float) -> None:
    # Runs for the operator's lifetime; cleanup cancels it.
    while True:
        await asyncio.sleep(interval)
        try:
            await fleet.reconcile()
        except (KubernetesError, ledgers.LedgerError) as error:
            logger.error("periodic fleet reconciliation failed: %s; will retry in %.0fs", error, interval)


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """Keep kopf's bookkeeping under sluicegate.io and out of the CRDs' status schema."""
    settings.persistence.finalizer = f"{_names.ANNOTATION_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=_names.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=_names.ANNOTATION_PREFIX)
    # Handler log lines become Events only from warnings up, so Events stay meaningful.
    settings.posting.level = logging.WARNING


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """Register every handler in a fresh registry (nothing is registered at import time)."""
    registry = kopf.OperatorRegistry()
    operator_settings = settings

    async def startup(*, settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        configure_kopf(settings)
        context = memo.get("sluicegate")
        if context is None:
            context = await _connect(operator_settings)
            memo["sluicegate"] = context
        context.resync_task = asyncio.create_task(_resync_forever(context.fleet, interval=operator_settings.resync_seconds))

    async def cleanup(*, memo: Any, **_: Any) -> None:
        context = memo.get("sluicegate")
        if not isinstance(context, OperatorContext):
            return
        if context.resync_task is not None:
            context.resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await context.resync_task
        await context.ledger.close()

    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    for kind, plural in PLURALS.items():
        resource = (api.API_GROUP, api.API_VERSION, plural)
        kopf.on.create(*resource, id=f"{kind}.create", registry=registry)(resource_changed)
        kopf.on.update(*resource, id=f"{kind}.update", registry=registry)(resource_changed)
        kopf.on.resume(*resource, id=f"{kind}.resume", registry=registry)(resource_changed)
        kopf.on.delete(*resource, id=f"{kind}.delete", registry=registry)(resource_deleted)
    kopf.timer(api.API_GROUP, api.API_VERSION, "llmbudgets", id="LLMBudget.status", registry=registry,
               interval=settings.status_interval_seconds, initial_delay=5)(budget_timer)
    return registry


async def _connect(settings: OperatorSettings) -> OperatorContext:
    # Startup failures that heal (an API server or database still starting) are retried.
    if not settings.ledger_url:
        raise kopf.PermanentError("no ledger URL: set --ledger or SLUICEGATE_LEDGER_URL to the shared PostgreSQL ledger")
    try:
        budget_ledger = ledgers.connect(settings.ledger_url)
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from error
    kubernetes_api = await _retrying(ClientApi.connect)
    await _retrying(budget_ledger.migrate)
    return OperatorContext.build(settings=settings, api=kubernetes_api, ledger=budget_ledger)
