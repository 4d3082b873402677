"""The Kubernetes API as the operator uses it: a small async protocol and its real client.

Everything above this module talks to ``KubernetesApi``; tests replace it with a recording
fake. ``ClientApi`` implements it with the official ``kubernetes`` client's DynamicClient,
which is synchronous, so each call runs in a worker thread. Errors are translated here, by
HTTP status, into one tree::

    KubernetesError
    +-- NotFound          404; ``get`` and ``delete`` turn it into None / False
    +-- Conflict          409: the object exists already, or a write raced another one
    +-- Rejected          400, 422: the API server refused the object as invalid
    +-- Forbidden         401, 403: RBAC lacks a rule; docs/operations.md lists them
    +-- Unavailable       429, 5xx, timeouts and connection errors; worth retrying
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

RawObject = dict[str, Any]
_T = TypeVar("_T")

# Maximum wait for one API call, in seconds, because a stuck call must not hold the reconcile lock.
REQUEST_TIMEOUT_SECONDS = 30


class KubernetesError(Exception):
    """Base of every Kubernetes API failure."""


class NotFound(KubernetesError):
    """The object does not exist."""


class Conflict(KubernetesError):
    """The object exists already, or was changed by someone else meanwhile."""


class Rejected(KubernetesError):
    """The API server rejected the object as invalid."""


class Forbidden(KubernetesError):
    """The operator's ServiceAccount lacks an RBAC rule for the call."""


class Unavailable(KubernetesError):
    """The API server did not respond, timed out, or is overloaded; retrying may help."""


class KubernetesApi(Protocol):
    """The calls the operator makes; ``namespace`` None means cluster-wide or cluster-scoped."""

    async def get(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> RawObject | None:
        """Return the object, or None when it does not exist."""

    async def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[RawObject]:
        """Return the objects of a kind, optionally filtered by a label selector."""

    async def apply(self, obj: RawObject, *, field_manager: str) -> RawObject:
        """Server-side apply ``obj`` with ``field_manager``, forcing ownership of its fields."""

    async def create(self, obj: RawObject) -> RawObject:
        """Create ``obj``; raise Conflict when it exists already."""

    async def delete(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete the object; return False when it did not exist."""

    async def patch_status(
        self, *, api_version: str, kind: str, namespace: str, name: str, status: RawObject
    ) -> RawObject:
        """Merge-patch the status subresource."""


def _translate(error: Exception, *, action: str) -> KubernetesError:
    # Imported here so that `operator render` and the tests of pure code need no client.
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        status = int(error.status or 0)
        reason = f"{action}: HTTP {status} {error.reason or ''}".strip()
        detail = _message_of(error)
        text = f"{reason}: {detail}" if detail else reason
        if status == 404:
            return NotFound(text)
        if status == 409:
            return Conflict(text)
        if status in (400, 422):
            return Rejected(text)
        if status in (401, 403):
            return Forbidden(f"{text}; check that the operator's ClusterRole and Role grant this (docs/operations.md)")
        return Unavailable(text)
    return Unavailable(f"{action}: {type(error).__name__}: {error}")


def _message_of(error: Any) -> str:
    # The API server's Status object carries a readable message; never log request bodies.
    import json

    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return str(message)[:500]


class ClientApi:
    """``KubernetesApi`` backed by the official client's DynamicClient."""

    def __init__(self, dynamic_client: Any) -> None:
        self._client = dynamic_client

    @classmethod
    async def connect(cls) -> ClientApi:
        """Load in-cluster credentials, else the kubeconfig, and discover the API's resources."""
        # Typed as Any: parts of the client have no annotations, which mypy --strict rejects.
        config: Any = importlib.import_module("kubernetes.config")
        client: Any = importlib.import_module("kubernetes.client")
        dynamic: Any = importlib.import_module("kubernetes.dynamic")

        def build() -> Any:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            return dynamic.DynamicClient(client.ApiClient())

        try:
            client = await asyncio.to_thread(build)
        except Exception as error:  # noqa: BLE001 - discovery raises urllib3 and config errors alike
            raise _translate(error, action="connect to the Kubernetes API") from error
        return cls(client)

    async def _call(self, action: str, function: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        try:
            return await asyncio.to_thread(functools.partial(function, *args, **kwargs))
        except KubernetesError:
            raise
        except Exception as error:  # noqa: BLE001 - the client raises ApiException, urllib3 and OS errors
            raise _translate(error, action=action) from error

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._client.resources.get(api_version=api_version, kind=kind)

    async def get(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> RawObject | None:
        action = f"get {kind} {namespace}/{name}"
        resource = await self._call(action, self._resource, api_version, kind)
        try:
            result = await self._call(action, self._client.get, resource, name=name, namespace=namespace,
                                      _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except NotFound:
            return None
        return dict(result.to_dict())

    async def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[RawObject]:
        action = f"list {kind} in {namespace or 'all namespaces'}"
        resource = await self._call(action, self._resource, api_version, kind)
        result = await self._call(action, self._client.get, resource, namespace=namespace, label_selector=label_selector,
                                  _request_timeout=REQUEST_TIMEOUT_SECONDS)
        items = result.to_dict().get("items") or []
        # List items omit apiVersion and kind; callers expect whole objects.
        return [{"apiVersion": api_version, "kind": kind, **item} for item in items]

    async def apply(self, obj: RawObject, *, field_manager: str) -> RawObject:
        metadata = obj["metadata"]
        action = f"apply {obj['kind']} {metadata.get('namespace')}/{metadata['name']}"
        resource = await self._call(action, self._resource, obj["apiVersion"], obj["kind"])
        result = await self._call(action, self._client.server_side_apply, resource, body=obj,
                                  namespace=metadata.get("namespace"), field_manager=field_manager, force_conflicts=True,
                                  _request_timeout=REQUEST_TIMEOUT_SECONDS)
        return dict(result.to_dict())

    async def create(self, obj: RawObject) -> RawObject:
        metadata = obj["metadata"]
        name = metadata.get("name") or f"{metadata.get('generateName', '')}*"
        action = f"create {obj['kind']} {metadata.get('namespace')}/{name}"
        resource = await self._call(action, self._resource, obj["apiVersion"], obj["kind"])
        result = await self._call(action, self._client.create, resource, body=obj, namespace=metadata.get("namespace"),
                                  _request_timeout=REQUEST_TIMEOUT_SECONDS)
        return dict(result.to_dict())

    async def delete(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        action = f"delete {kind} {namespace}/{name}"
        resource = await self._call(action, self._resource, api_version, kind)
        try:
            await self._call(action, self._client.delete, resource, name=name, namespace=namespace,
                             _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except NotFound:
            return False
        return True

    async def patch_status(
        self, *, api_version: str, kind: str, namespace: str, name: str, status: RawObject
    ) -> RawObject:
        action = f"patch the status of {kind} {namespace}/{name}"
        resource = await self._call(action, self._resource, api_version, kind)
        result = await self._call(action, self._client.patch, resource.status, body={"status": status}, name=name,
                                  namespace=namespace, content_type="application/merge-patch+json",
                                  _request_timeout=REQUEST_TIMEOUT_SECONDS)
        return dict(result.to_dict())
