"""The real client's boundary: Kubernetes errors translated by HTTP status, results as plain objects.

Covers: 404, 409, 422, 403, 503 and connection errors map onto the operator's error tree
with the API server's message; `get` and `delete` turn 404 into None and False; `list`
fills in apiVersion and kind, which list items omit; apply sends server-side apply with
the field manager and force. The DynamicClient is replaced by a small stand-in that
raises the client's own exception classes, because no API server runs here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from sluicegate.operator import _kubernetes


def _api_exception(status: int, message: str = "") -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


class _Result:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return self._data


class _Resource:
    status = "status-subresource"


class _Resources:
    def get(self, *, api_version: str, kind: str) -> _Resource:
        return _Resource()


class StandInClient:
    """Answers like DynamicClient, or raises ``error``; records calls."""

    def __init__(self, *, result: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.resources = _Resources()
        self.result = result or {}
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _respond(self, verb: str, **kwargs: Any) -> _Result:
        self.calls.append((verb, kwargs))
        if self.error is not None:
            raise self.error
        return _Result(self.result)

    def get(self, resource: Any, **kwargs: Any) -> _Result:
        return self._respond("get", **kwargs)

    def delete(self, resource: Any, **kwargs: Any) -> _Result:
        return self._respond("delete", **kwargs)

    def server_side_apply(self, resource: Any, **kwargs: Any) -> _Result:
        return self._respond("apply", **kwargs)

    def patch(self, resource: Any, **kwargs: Any) -> _Result:
        return self._respond("patch", **kwargs)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, _kubernetes.NotFound),
        (409, _kubernetes.Conflict),
        (422, _kubernetes.Rejected),
        (400, _kubernetes.Rejected),
        (403, _kubernetes.Forbidden),
        (401, _kubernetes.Forbidden),
        (503, _kubernetes.Unavailable),
        (429, _kubernetes.Unavailable),
    ],
)
def test_status_maps_to_error_class(status: int, expected: type[Exception]) -> None:
    translated = _kubernetes._translate(_api_exception(status, "the server said no"), action="apply Deployment x/y")
    assert isinstance(translated, expected)
    assert "apply Deployment x/y" in str(translated)
    assert "the server said no" in str(translated)


def test_forbidden_points_at_rbac() -> None:
    translated = _kubernetes._translate(_api_exception(403), action="list Secret")
    assert "docs/operations.md" in str(translated)


def test_connection_error_is_unavailable() -> None:
    translated = _kubernetes._translate(urllib3.exceptions.MaxRetryError(None, "/api"), action="get Secret a/b")
    assert isinstance(translated, _kubernetes.Unavailable)


async def test_get_not_found_returns_none() -> None:
    client = _kubernetes.ClientApi(StandInClient(error=_api_exception(404)))
    assert await client.get(api_version="v1", kind="Secret", namespace="a", name="b") is None


async def test_delete_not_found_returns_false() -> None:
    client = _kubernetes.ClientApi(StandInClient(error=_api_exception(404)))
    assert await client.delete(api_version="v1", kind="Secret", namespace="a", name="b") is False


async def test_other_errors_propagate() -> None:
    client = _kubernetes.ClientApi(StandInClient(error=_api_exception(500, "etcd timeout")))
    with pytest.raises(_kubernetes.Unavailable, match="etcd timeout"):
        await client.get(api_version="v1", kind="Secret", namespace="a", name="b")


async def test_list_fills_kind() -> None:
    stand_in = StandInClient(result={"items": [{"metadata": {"name": "x", "namespace": "a"}}]})
    items = await _kubernetes.ClientApi(stand_in).list(api_version="sluicegate.io/v1alpha1", kind="LLMBudget", namespace=None)
    assert items == [{"apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget", "metadata": {"name": "x", "namespace": "a"}}]
    assert stand_in.calls[0][1]["namespace"] is None


async def test_apply_forces_field_manager() -> None:
    stand_in = StandInClient(result={"kind": "ConfigMap"})
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    await _kubernetes.ClientApi(stand_in).apply(obj, field_manager="sluicegate")
    verb, kwargs = stand_in.calls[0]
    assert verb == "apply"
    assert kwargs["field_manager"] == "sluicegate"
    assert kwargs["force_conflicts"] is True
    assert kwargs["namespace"] == "n"


async def test_patch_status_uses_merge_patch() -> None:
    stand_in = StandInClient(result={})
    await _kubernetes.ClientApi(stand_in).patch_status(
        api_version="sluicegate.io/v1alpha1", kind="LLMBudget", namespace="a", name="m", status={"spentUSD": "1"}
    )
    _, kwargs = stand_in.calls[0]
    assert kwargs["content_type"] == "application/merge-patch+json"
    assert kwargs["body"] == {"status": {"spentUSD": "1"}}
