"""Per-namespace API keys: created once in the ledger, handed out in a Secret, revoked at the end.

Each namespace with an LLMBudget or a RoutePolicy gets the Secret ``sluicegate-api-key``
(key ``api-key``) for its workloads. The key is created only when that Secret is missing,
so reconciling never rotates it; the ledger stores only its hash, and the Secret records
the key id so the key can be revoked when the namespace's last budget and policy go. A
Secret of that name that sluicegate did not create is left alone.
"""

from __future__ import annotations

import logging

from sluicegate import ledger
from sluicegate.operator import _names, _rendering
from sluicegate.operator._kubernetes import Conflict, KubernetesApi, KubernetesError

logger = logging.getLogger(__name__)


async def ensure(*, api: KubernetesApi, ledger: ledger.Ledger, namespace: str) -> bool:
    """Create the namespace's key and Secret unless the Secret exists; return True when created."""
    live = await api.get(api_version="v1", kind="Secret", namespace=namespace, name=_names.API_KEY_SECRET_NAME)
    if live is not None:
        return False

    key_id, key = await ledger.create_api_key(namespace)
    secret = _rendering.api_key_secret(namespace=namespace, key_id=key_id, key=key)
    try:
        await api.create(secret)
    except Conflict:
        # Someone created the Secret meanwhile; theirs stays, and the unused key goes.
        await ledger.revoke_api_key(key_id)
        return False
    except KubernetesError:
        # A key nobody can read must not stay valid.
        await ledger.revoke_api_key(key_id)
        raise
    logger.info("created the API key %s and Secret %s/%s", key_id, namespace, _names.API_KEY_SECRET_NAME)
    return True


async def remove(*, api: KubernetesApi, ledger: ledger.Ledger, namespace: str) -> bool:
    """Revoke the namespace's key and delete its Secret; return True when something was removed."""
    live = await api.get(api_version="v1", kind="Secret", namespace=namespace, name=_names.API_KEY_SECRET_NAME)
    if live is None:
        # NOTE: when the whole namespace is deleted, its Secret may go first, and with it the
        # key id; that key stays valid in the ledger until revoked with `sluicegate keys revoke`.
        return False
    metadata = live.get("metadata") or {}
    if (metadata.get("labels") or {}).get(_names.MANAGED_BY) != _names.FIELD_MANAGER:
        return False

    key_id = (metadata.get("annotations") or {}).get(_names.API_KEY_ID_ANNOTATION)
    if key_id:
        await ledger.revoke_api_key(key_id)
    await api.delete(api_version="v1", kind="Secret", namespace=namespace, name=_names.API_KEY_SECRET_NAME)
    logger.info("revoked the API key %s and deleted Secret %s/%s", key_id, namespace, _names.API_KEY_SECRET_NAME)
    return True
