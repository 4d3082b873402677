"""Builders of raw LLMBudget and RoutePolicy objects, shaped as the API server returns them."""

from __future__ import annotations

import copy
from typing import Any

RawObject = dict[str, Any]

OPENAI_CLOUD: RawObject = {
    "provider": "openai",
    "model": "gpt-4.1",
    "apiKeySecretRef": {"name": "openai-credentials", "key": "api-key"},
    "priceUSDPerMillionTokens": {"input": "2.00", "output": "8.00"},
}


def budget(
    namespace: str,
    name: str = "monthly",
    *,
    ceiling: str = "20.00",
    created: str | None = None,
    **spec: Any,
) -> RawObject:
    metadata: RawObject = {"name": name, "namespace": namespace}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "sluicegate.io/v1alpha1",
        "kind": "LLMBudget",
        "metadata": metadata,
        "spec": {"ceilingUSD": ceiling, **spec},
    }


def policy(
    namespace: str,
    name: str = "default",
    *,
    model: str = "llama3.2:3b",
    endpoint: str = "",
    cloud: RawObject | None = None,
    ollama: RawObject | None = None,
    created: str | None = None,
) -> RawObject:
    metadata: RawObject = {"name": name, "namespace": namespace}
    if created:
        metadata["creationTimestamp"] = created
    local: RawObject = {"model": model}
    if endpoint:
        local["endpoint"] = endpoint
    if ollama is not None:
        local["ollama"] = ollama
    spec: RawObject = {"local": local}
    if cloud is not None:
        spec["cloud"] = copy.deepcopy(cloud)
    return {"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": metadata, "spec": spec}


def secret(namespace: str, name: str, **data: str) -> RawObject:
    import base64

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
