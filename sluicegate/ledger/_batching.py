"""Coalescing concurrent ledger operations into one round trip and one commit.

Under load, many requests of one gateway reserve (or settle) at the same moment, and each
would pay its own round trip and its own commit. A Coalescer lets one batch be in flight
per operation: calls that arrive while it runs wait and go together in the next one. A
lone call goes at once, so a quiet gateway pays no added latency, and a busy one pays one
commit per batch instead of one per request.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# Largest batch; a few dozen keeps one batch's transaction short on a small server.
MAX_BATCH = 64


class Coalescer(Generic[ItemT, ResultT]):
    """A queue that runs ``run_batch`` on the items submitted while the previous batch was in flight.

    ``run_batch`` returns one result per item, in order; an exception it raises goes to
    every caller of that batch.
    """

    def __init__(self, run_batch: Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT]]], *,
                 max_batch: int = MAX_BATCH) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: collections.deque[tuple[ItemT, asyncio.Future[ResultT]]] = collections.deque()
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> ResultT:
        """Queue ``item`` and return its result once its batch has run."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain(), name="ledger-batch")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            try:
                results = await self._run_batch([item for item, _ in batch])
            except Exception as error:  # handed to every waiting caller, who raises it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def wait_idle(self) -> None:
        """Wait until no batch is in flight, for shutdown."""
        if self._worker is not None:
            await asyncio.wait([self._worker])
