"""The state one gateway app shares across requests, created in the app's lifespan."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any

from sluicegate import ledger
from sluicegate.gateway import _auth, _cache, _loopguard, _metrics, _runtime, _settings

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class GatewayState:
    """Shared objects of the request path. ``runtime`` is swapped whole on reload."""

    settings: _settings.GatewaySettings
    ledger: ledger.Ledger
    runtime: _runtime.Runtime
    pool: _runtime.ClientPool
    auth: _auth.Authenticator
    loop_guard: _loopguard.LoopGuard
    cache: _cache.ResponseCache
    metrics: _metrics.Metrics
    tasks: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run work that must finish even if the client leaves, keeping a reference until it does."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, *, timeout: float) -> None:
        """Wait for background work (stream settlements) before shutting down."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
