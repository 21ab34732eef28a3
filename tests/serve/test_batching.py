"""ContinuousBatcher: batches form from what queued during the previous forward; no wait for a lone request."""

from __future__ import annotations

import asyncio
import time

import pytest

from serve.batching import ContinuousBatcher


class SlowDouble:
    """A batch handler that takes ``seconds`` per call and records the batches it saw."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds, self.batches = seconds, []

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.seconds)
        return [2 * item for item in items]


def test_a_lone_request_runs_at_once_and_requests_that_queue_meanwhile_share_the_next_batch() -> None:
    async def scenario() -> tuple[list[int], list[list[int]], float]:
        handler = SlowDouble(0.05)
        batcher = ContinuousBatcher(handler, max_batch_size=8)
        started = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)  # the first batch is running: these queue
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
        results = await asyncio.gather(first, *rest)
        return results, handler.batches, time.perf_counter() - started

    results, batches, seconds = asyncio.run(scenario())
    assert results == [0, 2, 4, 6, 8, 10]
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert seconds < 0.2  # two forwards, no waiting on top


def test_batches_never_exceed_the_limit_and_the_wait_collects_late_arrivals() -> None:
    async def scenario(wait_s: float) -> list[list[int]]:
        handler = SlowDouble(0.0)
        batcher = ContinuousBatcher(handler, max_batch_size=3, wait_s=wait_s)

        async def late(i: int) -> int:
            await asyncio.sleep(0.02 * i)
            return await batcher.submit(i)

        assert await asyncio.gather(*(late(i) for i in range(3))) == [0, 2, 4]
        assert await asyncio.gather(*(batcher.submit(i) for i in range(7))) == [2 * i for i in range(7)]
        return handler.batches

    assert asyncio.run(scenario(0.0))[:3] == [[0], [1], [2]]  # no wait: each arrival runs alone
    batches = asyncio.run(scenario(0.2))
    assert batches[0] == [0, 1, 2] and all(len(b) <= 3 for b in batches) and sum(map(len, batches)) == 10


def test_a_failing_batch_fails_its_callers_only_and_the_worker_goes_on() -> None:
    async def handler(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    async def scenario() -> None:
        batcher = ContinuousBatcher(handler, max_batch_size=1)
        with pytest.raises(ValueError, match="unlucky"):
            await batcher.submit(13)
        assert await batcher.submit(7) == 7
        wrong = ContinuousBatcher(lambda items: asyncio.sleep(0, result=[]), max_batch_size=4)
        with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
            await wrong.submit(1)

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        ContinuousBatcher(handler, max_batch_size=0)
