"""The loop guard: rejects a namespace that sends one request too often within a window.

A runaway agent loop repeats itself. The fingerprint is a hash of the request body (model,
messages, output limit and sampling fields; not the streaming flags), and each namespace
may send one fingerprint ``maxRepeats`` times per sliding window of ``windowSeconds``. The
next one is rejected before anything is reserved. Only requests that pass validation are
counted, so fixing a rejected request is never mistaken for a loop.

NOTE: the state lives in each gateway replica's memory, so across N replicas a loop may
repeat up to N x maxRepeats times per window before every replica rejects it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

# Fingerprints kept per replica; the oldest are forgotten first beyond this.
MAX_TRACKED = 100_000


_STREAMING_FIELDS = frozenset({"stream", "stream_options"})


def fingerprint(*, namespace: str, raw: dict[str, Any]) -> str:
    """Hash a request's identity: its namespace and body, without the streaming flags."""
    relevant = {name: value for name, value in raw.items() if name not in _STREAMING_FIELDS}
    text = json.dumps([namespace, relevant], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class LoopGuard:
    """Sliding-window counts of request fingerprints."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # replaceable for tests
        self._seen: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def check(self, key: str, *, max_repeats: int, window_seconds: float) -> float | None:
        """Count one request; return None when it may proceed, else seconds until it may retry."""
        if max_repeats <= 0:
            return None
        now = self._clock()
        times = self._seen.get(key)
        if times is None:
            times = collections.deque()
            self._seen[key] = times
            if len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        while times and times[0] <= now - window_seconds:
            times.popleft()
        if len(times) >= max_repeats:
            return max(1.0, math.ceil(times[0] + window_seconds - now))
        times.append(now)
        return None
