"""Continuous dynamic batching for a replica: each batch takes what queued while the previous one ran.

Why not ``@serve.batch``: Ray's batch loop (2.60) forms the next batch as soon as a first request is queued and only
then waits for a free slot (``max_concurrent_batches``), so with a short wait it builds batches of one while a
forward runs (seen in ``benchmarks/serve_load.py``: median batch 1 at 8 and 32 concurrent clients with no wait, and
a 5 ms wait costs every request at concurrency 1 its 5 ms). Here one worker takes the next batch only when the
previous forward has finished: a lone request runs at once, and under load every batch is as full as the queue
allows. ``wait_s`` optionally holds a batch that is not full a little longer for more requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class ContinuousBatcher(Generic[Item, Outcome]):
    """Batches concurrent :meth:`submit` calls to ``handler`` (a list in, a list of the same length out).

    Args:
        handler: ``async (items) -> outcomes``; its exception is raised to every caller of that batch.
        max_batch_size: the largest batch.
        wait_s: how long a batch that is not full waits for more requests (0: never).

    Example:
        >>> async def double(xs): return [2 * x for x in xs]
        >>> batcher = ContinuousBatcher(double, max_batch_size=8)
        >>> # in a coroutine: await asyncio.gather(*(batcher.submit(i) for i in range(3))) == [0, 2, 4]
    """

    def __init__(self, handler: Callable[[list[Item]], Awaitable[list[Outcome]]], max_batch_size: int,
                 wait_s: float = 0.0) -> None:
        self._handler = handler
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self.configure(max_batch_size, wait_s)

    def configure(self, max_batch_size: int, wait_s: float) -> None:
        """New limits, applied from the next batch on."""
        if max_batch_size < 1 or wait_s < 0:
            raise ValueError(f"max_batch_size must be >= 1 and wait_s >= 0, got {max_batch_size} and {wait_s}")
        self.max_batch_size, self.wait_s = max_batch_size, wait_s

    async def submit(self, item: Item) -> Outcome:
        """``item``'s outcome, computed in a batch with whatever else is queued."""
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            # an empty context: the worker serves every request, so it must not keep the first one's (Serve's
            # request context lives in contextvars)
            self._worker = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _next_batch(self) -> list[tuple[Item, asyncio.Future]]:
        queue = self._queue
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [(item, future) for item, future in batch if not future.cancelled()]  # callers that left

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            futures = [future for _, future in batch]
            try:
                outcomes = await self._handler([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"the batch handler returned {len(outcomes)} outcomes for {len(batch)} items")
            except asyncio.CancelledError:  # the replica is shutting down: nobody waits forever
                for future in futures:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every caller of this batch gets the error, the worker goes on
                for future in futures:
                    with contextlib.suppress(asyncio.InvalidStateError):
                        future.set_exception(exc)
                continue
            for future, outcome in zip(futures, outcomes):
                with contextlib.suppress(asyncio.InvalidStateError):  # cancelled meanwhile
                    future.set_result(outcome)
