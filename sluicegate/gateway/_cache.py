"""The exact-match response cache, per gateway replica.

Only non-streamed requests with ``temperature`` 0 are cached, and only where the
RoutePolicy enables it. The key covers the namespace, the route and everything in the
body that can change the response; a hit is served with no upstream call and recorded as a
ledger row of cost 0. Answers are stored under the route that actually answered.

NOTE: entries live in each replica's memory, so a fleet of N replicas may call the
upstream up to N times for one repeated request.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

# Body fields that never change the response, so they stay out of the key.
_IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store", "service_tier"})
MAX_ENTRIES = 10_000


def cache_key(*, namespace: str, route: str, model: str, raw: dict[str, Any]) -> str:
    """Hash everything that changes a response: namespace, route, model and the body's other fields."""
    relevant = {name: value for name, value in raw.items() if name not in _IGNORED_FIELDS and name != "model"}
    text = json.dumps([namespace, route, model, relevant], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def cacheable(raw: dict[str, Any]) -> bool:
    """True for a request whose response may be reused: not streamed, temperature exactly 0."""
    return not raw.get("stream") and raw.get("temperature") == 0


@dataclasses.dataclass(frozen=True)
class Entry:
    """A cached response and the route that produced it."""

    body: dict[str, Any]
    route: str
    expires_at: float


class ResponseCache:
    """A bounded LRU of responses with a per-entry time to live."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._max_entries = max_entries
        self._clock = clock  # replaceable for tests

    def get(self, key: str) -> Entry | None:
        """Return a live entry, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, *, body: dict[str, Any], route: str, ttl_seconds: float) -> None:
        """Store an answer for ``ttl_seconds``."""
        self._entries[key] = Entry(body=body, route=route, expires_at=self._clock() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
