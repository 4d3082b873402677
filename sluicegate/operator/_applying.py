"""Idempotent server-side apply of desired objects, and pruning of those no longer desired.

``apply`` writes only when something would change: the desired object carries a hash of
itself in an annotation, and the live object must both carry that hash (no desired field
was added, changed or removed since the last apply) and still contain every desired value
(nobody edited or deleted a field the operator owns). Otherwise it sends a server-side
apply as field manager ``sluicegate`` with ``force``, which takes the fields back. So a
steady state costs one GET per object and no writes, and the API server's own
bookkeeping (resourceVersion, managedFields) does not churn.

An object that exists with an ``app.kubernetes.io/managed-by`` label naming someone else
(for example the gateway ServiceAccount that the Helm chart creates, with its image pull
Secrets) is left alone: the operator creates such objects only where nobody else does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sluicegate.operator import _names
from sluicegate.operator._kubernetes import KubernetesApi

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]

# Kinds the operator creates in its namespace, and therefore prunes there.
PRUNED_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
)


def applied_hash(obj: Mapping[str, Any]) -> str:
    """Return a stable hash of a desired object, without its own hash annotation."""
    body = copy.deepcopy(dict(obj))
    metadata = body.get("metadata", {})
    annotations = metadata.get("annotations", {})
    annotations.pop(_names.APPLIED_HASH_ANNOTATION, None)
    if "annotations" in metadata and not annotations:
        del metadata["annotations"]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def with_hash(obj: Mapping[str, Any]) -> RawObject:
    """Return a copy of ``obj`` annotated with its applied hash."""
    body = copy.deepcopy(dict(obj))
    metadata = body.setdefault("metadata", {})
    metadata.setdefault("annotations", {})[_names.APPLIED_HASH_ANNOTATION] = applied_hash(obj)
    return body


def contains(live: Any, desired: Any) -> bool:
    """Tell whether ``live`` has every value of ``desired``; extra live fields (defaults) are fine.

    Lists compare item by item and must have the same length.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and contains(live[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(live_item, desired_item) for live_item, desired_item in zip(live, desired))
    return bool(live == desired)


def _managed_by_other(live: Mapping[str, Any]) -> bool:
    manager = ((live.get("metadata") or {}).get("labels") or {}).get(_names.MANAGED_BY)
    return manager is not None and manager != _names.FIELD_MANAGER


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata", {})
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(metadata.get("namespace", "")), str(metadata.get("name")))


class Applier:
    """Applies desired objects through a ``KubernetesApi`` and records what it changed."""

    def __init__(self, api: KubernetesApi, *, field_manager: str = _names.FIELD_MANAGER) -> None:
        self._api = api
        self._field_manager = field_manager

    async def apply(self, obj: Mapping[str, Any]) -> bool:
        """Make the live object match ``obj``; return True when a write was needed."""
        desired = with_hash(obj)
        metadata = desired["metadata"]
        live = await self._api.get(
            api_version=desired["apiVersion"], kind=desired["kind"], namespace=metadata.get("namespace"), name=metadata["name"]
        )
        if live is not None and contains(live, desired):
            return False
        if live is not None and _managed_by_other(live):
            logger.debug("%s %s/%s is managed by %s; leaving it alone", desired["kind"], metadata.get("namespace"),
                         metadata["name"], live["metadata"]["labels"][_names.MANAGED_BY])
            return False
        await self._api.apply(desired, field_manager=self._field_manager)
        return True

    async def apply_all(self, objects: Iterable[Mapping[str, Any]]) -> list[str]:
        """Apply each object in order; return ``Kind namespace/name`` of those written."""
        changed = []
        for obj in objects:
            if await self.apply(obj):
                _, kind, namespace, name = _key(obj)
                changed.append(f"{kind} {namespace}/{name}")
        return changed

    async def prune(self, *, namespace: str, desired: Sequence[Mapping[str, Any]]) -> list[str]:
        """Delete objects the operator manages in ``namespace`` that are not in ``desired``."""
        keep = {_key(obj) for obj in desired}
        deleted = []
        for api_version, kind in PRUNED_KINDS:
            live_objects = await self._api.list(
                api_version=api_version, kind=kind, namespace=namespace, label_selector=_names.PRUNE_SELECTOR
            )
            for live in live_objects:
                name = live["metadata"]["name"]
                if (api_version, kind, namespace, name) in keep:
                    continue
                if await self._api.delete(api_version=api_version, kind=kind, namespace=namespace, name=name):
                    deleted.append(f"{kind} {namespace}/{name}")
        return deleted
