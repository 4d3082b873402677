"""API key authentication: the namespace of a request comes from its key, never its body.

Keys are stored hashed in the ledger. Valid keys are remembered for a few seconds per
replica, so most requests need no database round trip for authentication; a revoked key
stops working within that time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sluicegate import ledger
from sluicegate.gateway import _errors

# How long a replica trusts a resolved key before asking the ledger again.
KEY_CACHE_SECONDS = 5.0
MAX_CACHED_KEYS = 10_000


def bearer_token(authorization: str | None) -> str:
    """Extract the key from an ``Authorization: Bearer <key>`` header; raise InvalidApiKey."""
    if not authorization:
        raise _errors.InvalidApiKey(
            "missing API key: send the header 'Authorization: Bearer <key>' with a key from 'sluicegate keys create'"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _errors.InvalidApiKey("the Authorization header must be 'Bearer <key>'")
    return token.strip()


class Authenticator:
    """Resolves keys to namespaces through the ledger, with a short per-replica cache."""

    def __init__(self, ledger_: ledger.Ledger, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ledger = ledger_
        self._clock = clock  # replaceable for tests
        self._cache: dict[str, tuple[str, float]] = {}

    async def namespace_of(self, key: str) -> str:
        """Return the key's namespace; raise InvalidApiKey or LedgerUnavailable."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        cached = self._cache.get(digest)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        namespace = await self._ledger.resolve_api_key(key)
        if namespace is None:
            self._cache.pop(digest, None)
            raise _errors.InvalidApiKey(
                f"unknown or revoked API key (starting {key[:8]!r}): create one with 'sluicegate keys create --namespace NS "
                "--ledger URL', using the same ledger as the gateway"
            )
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[digest] = (namespace, now + KEY_CACHE_SECONDS)
        return namespace
