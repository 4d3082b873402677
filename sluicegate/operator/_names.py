"""Names and labels of the objects the operator creates.

Generated names carry a short hash of what they stand for, so two different inputs never
map to one object: ``llama3.2:3b`` and ``llama3-2:3b`` both slug to ``llama3-2-3b``, and the
mirror of Secret ``b-c`` in namespace ``a`` would otherwise collide with ``c`` in ``a-b``.
"""

from __future__ import annotations

import hashlib
import re

FIELD_MANAGER = "sluicegate"
ANNOTATION_PREFIX = "sluicegate.io"

GATEWAY_NAME = "sluicegate-gateway"
CONFIG_MAP_NAME = "sluicegate-config"
CONFIG_KEY = "config.yaml"
API_KEY_SECRET_NAME = "sluicegate-api-key"
API_KEY_SECRET_KEY = "api-key"

CONFIG_MOUNT_PATH = "/etc/sluicegate/config"
SECRETS_MOUNT_PATH = "/etc/sluicegate/secrets"
OLLAMA_PORT = 11434

# app.kubernetes.io/component values; every component but api-key lives in the operator's
# namespace and is pruned when no longer desired.
COMPONENT_GATEWAY = "gateway"
COMPONENT_CONFIG = "config"
COMPONENT_OLLAMA = "ollama"
COMPONENT_PROVIDER_SECRET = "provider-secret"
COMPONENT_API_KEY = "api-key"
PRUNED_COMPONENTS = (COMPONENT_GATEWAY, COMPONENT_CONFIG, COMPONENT_OLLAMA, COMPONENT_PROVIDER_SECRET)

MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
MODEL_ANNOTATION = f"{ANNOTATION_PREFIX}/model"
SOURCE_ANNOTATION = f"{ANNOTATION_PREFIX}/source"
API_KEY_ID_ANNOTATION = f"{ANNOTATION_PREFIX}/api-key-id"
APPLIED_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/applied-hash"
OLLAMA_INSTANCE_LABEL = f"{ANNOTATION_PREFIX}/ollama"

PRUNE_SELECTOR = f"{MANAGED_BY}={FIELD_MANAGER},{COMPONENT} in ({','.join(PRUNED_COMPONENTS)})"


def labels(component: str, **extra: str) -> dict[str, str]:
    """Return the labels of an object the operator manages."""
    return {
        "app.kubernetes.io/name": "sluicegate",
        "app.kubernetes.io/part-of": "sluicegate",
        MANAGED_BY: FIELD_MANAGER,
        COMPONENT: component,
        **extra,
    }


def gateway_selector() -> dict[str, str]:
    """Return the labels that select gateway pods."""
    return {"app.kubernetes.io/name": "sluicegate", COMPONENT: COMPONENT_GATEWAY}


def short_hash(text: str) -> str:
    """Return 8 hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def ollama_name(model: str) -> str:
    """Return the name of a model's Ollama Deployment, Service and volume claim.

    A DNS-1035 label of at most 63 characters, as Services require: ``llama3.2:3b`` becomes
    ``sg-ollama-llama3-2-3b-<hash>``.
    """
    slug = _slug(model)[:40].strip("-") or "model"
    return f"sg-ollama-{slug}-{short_hash(model)}"


def mirror_secret_name(namespace: str, secret: str) -> str:
    """Return the name of the copy of ``namespace/secret`` in the operator's namespace."""
    stem = f"sg-{namespace}-{secret}"[:240].rstrip("-.")
    return f"{stem}-{short_hash(f'{namespace}/{secret}')}"


def ollama_endpoint(model: str, *, namespace: str) -> str:
    """Return the OpenAI-compatible base URL of a model's Ollama Service."""
    return f"http://{ollama_name(model)}.{namespace}.svc:{OLLAMA_PORT}/v1"
