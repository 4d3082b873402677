"""The fleet reconciliation: from every LLMBudget and RoutePolicy to the objects that serve them.

The snapshot depends on all resources at once (conflicts, the default policy, shared
models), so any change reconciles the whole fleet: read the resources and the Secrets
they reference, build the snapshot, apply the rendered objects, prune the rest, write
each resource's status, and create or revoke namespace API keys.

One reconciliation runs at a time, under a lock. Requests that arrive while one runs are
coalesced: a reconciliation that started after a request was made has read state at
least as new as that request, so the request is already served.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from sluicegate import api, ledger
from sluicegate.operator import _apikeys, _rendering, _snapshot, _status
from sluicegate.operator._applying import Applier
from sluicegate.operator._kubernetes import KubernetesApi, NotFound
from sluicegate.operator._settings import OperatorSettings

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The result of one reconciliation: the snapshot and the objects it wrote or deleted."""

    snapshot: _snapshot.Snapshot
    applied: tuple[str, ...]
    pruned: tuple[str, ...]
    statuses: tuple[str, ...]


class Fleet:
    """Reconciles the gateway fleet; shared by every handler through the operator's memo."""

    def __init__(
        self,
        *,
        api: KubernetesApi,
        ledger: ledger.Ledger | None,
        settings: OperatorSettings,
    ) -> None:
        self._api = api
        self._ledger = ledger
        self._settings = settings
        self._applier = Applier(api)
        self.lock = asyncio.Lock()
        self._requested = 0
        self._completed = 0
        self._last: Outcome | None = None
        # Namespaces whose API-key Secret is known to exist, so steady state costs no GET.
        self._keyed: set[str] = set()

    async def reconcile(self, *, removed_namespace: str | None = None) -> Outcome:
        """Bring the fleet in line with the cluster's resources; raise KubernetesError or LedgerError.

        ``removed_namespace`` names the namespace of a resource being deleted, whose API key
        may have to go even if this process never saw it.
        """
        self._requested += 1
        ticket = self._requested
        async with self.lock:
            if self._last is not None and self._completed >= ticket and removed_namespace is None:
                return self._last
            started = self._requested
            outcome = await self._reconcile(removed_namespace=removed_namespace)
            self._completed = started
            self._last = outcome
            return outcome

    async def _reconcile(self, *, removed_namespace: str | None) -> Outcome:
        settings = self._settings

        # Resources being deleted are already gone as far as the gateway is concerned.
        resources = await self._read_resources()

        # The snapshot leaves out policies whose provider key is missing, so read the keys first.
        references = _snapshot.referenced_secrets(resources, settings=settings)
        secret_data = await self._read_secrets(references)
        keys = {reference: (None if data is None else frozenset(data)) for reference, data in secret_data.items()}
        snapshot = _snapshot.build(resources, settings=settings, secrets=keys)

        # Apply in dependency order, then prune what no resource needs any more.
        present = {reference: data for reference, data in secret_data.items() if data is not None}
        objects = _rendering.render_all(snapshot, settings=settings, secret_data=present)
        applied = await self._applier.apply_all(objects)
        pruned = await self._applier.prune(namespace=settings.namespace, desired=objects)

        statuses = await self._write_statuses(snapshot, resources)
        await self._sync_api_keys(snapshot.namespaces, removed_namespace=removed_namespace)

        if applied or pruned:
            logger.info("fleet reconciled: applied %s; pruned %s", ", ".join(applied) or "nothing", ", ".join(pruned) or "nothing")
        return Outcome(snapshot=snapshot, applied=tuple(applied), pruned=tuple(pruned), statuses=tuple(statuses))

    async def _read_resources(self) -> _snapshot.Resources:
        budgets = await self._api.list(api_version=api.API_GROUP_VERSION, kind=_snapshot.LLMBUDGET, namespace=None)
        policies = await self._api.list(api_version=api.API_GROUP_VERSION, kind=_snapshot.ROUTEPOLICY, namespace=None)
        return _snapshot.Resources(
            budgets=tuple(raw for raw in budgets if not _deleting(raw)),
            policies=tuple(raw for raw in policies if not _deleting(raw)),
        )

    async def _read_secrets(self, references: list[_snapshot.SecretKey]) -> dict[_snapshot.SecretKey, dict[str, str] | None]:
        result: dict[_snapshot.SecretKey, dict[str, str] | None] = {}
        for namespace, name in references:
            raw = await self._api.get(api_version="v1", kind="Secret", namespace=namespace, name=name)
            if raw is None:
                result[(namespace, name)] = None
                continue
            data = {key: str(value) for key, value in (raw.get("data") or {}).items()}
            # stringData is write-only on a real API server; a fake or a dry run may still carry it.
            for key, value in (raw.get("stringData") or {}).items():
                data.setdefault(key, base64.b64encode(str(value).encode("utf-8")).decode("ascii"))
            result[(namespace, name)] = data
        return result

    async def _write_statuses(self, snapshot: _snapshot.Snapshot, resources: _snapshot.Resources) -> list[str]:
        written = []
        now = _status.now_rfc3339()
        for raw in (*resources.budgets, *resources.policies):
            ref = _snapshot.ref_of(raw)
            verdict = snapshot.verdicts.get(ref)
            if verdict is None:
                continue
            live_status: Mapping[str, Any] = raw.get("status") or {}
            desired: RawObject = {
                "conditions": _status.merge(live_status.get("conditions"), list(verdict.conditions), remove=verdict.remove, now=now),
                "observedGeneration": verdict.generation,
            }
            if ref.kind == _snapshot.ROUTEPOLICY:
                desired["localEndpoint"] = verdict.local_endpoint
            if not _status.differs(live_status, desired):
                continue
            try:
                await self._api.patch_status(
                    api_version=api.API_GROUP_VERSION, kind=ref.kind, namespace=ref.namespace, name=ref.name, status=desired
                )
            except NotFound:
                logger.debug("%s %s was deleted before its status was written", ref.kind, ref)
                continue
            written.append(f"{ref.kind} {ref}")
        return written

    async def _sync_api_keys(self, namespaces: tuple[str, ...], *, removed_namespace: str | None) -> None:
        if self._ledger is None:
            return
        for namespace in namespaces:
            if namespace in self._keyed:
                continue
            await _apikeys.ensure(api=self._api, ledger=self._ledger, namespace=namespace)
            self._keyed.add(namespace)

        unused = self._keyed - set(namespaces)
        if removed_namespace is not None and removed_namespace not in namespaces:
            unused.add(removed_namespace)
        for namespace in sorted(unused):
            await _apikeys.remove(api=self._api, ledger=self._ledger, namespace=namespace)
            self._keyed.discard(namespace)


def _deleting(raw: Mapping[str, Any]) -> bool:
    return bool((raw.get("metadata") or {}).get("deletionTimestamp"))
