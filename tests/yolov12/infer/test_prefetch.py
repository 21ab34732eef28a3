"""Read-ahead on a background thread: order, errors where they happened, bounded memory, an early stop."""

from __future__ import annotations

import threading
import time

import pytest

from yolov12.infer.prefetch import Prefetched


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_items_arrive_in_order_produced_on_another_thread() -> None:
    threads: list[str] = []

    def produce():
        for item in range(20):
            threads.append(threading.current_thread().name)
            yield item

    with Prefetched(produce(), depth=3, name="reader") as ahead:
        assert list(ahead) == list(range(20))
    assert set(threads) == {"reader"}
    assert list(ahead) == []  # exhausted stays exhausted


def test_an_error_is_raised_at_the_item_it_replaced_after_the_items_before_it() -> None:
    def produce():
        yield "a"
        yield "b"
        raise FileNotFoundError("image 3 is gone")

    seen = []
    with Prefetched(produce()) as ahead, pytest.raises(FileNotFoundError, match="image 3 is gone"):
        for item in ahead:
            seen.append(item)
    assert seen == ["a", "b"]
    assert next(ahead, "end") == "end"


def test_at_most_depth_items_are_produced_ahead_of_the_consumer() -> None:
    produced = []

    def produce():
        for item in range(100):
            produced.append(item)
            yield item

    with Prefetched(produce(), depth=2) as ahead:
        assert next(ahead) == 0
        # 0 taken; 1 and 2 queued; the producer holds 3 waiting for room: never more
        assert wait_until(lambda: len(produced) == 4)
        time.sleep(0.2)
        assert len(produced) == 4


def test_closing_early_stops_the_producer_and_closes_its_iterator() -> None:
    closed = threading.Event()

    def produce():
        try:
            yield from range(10**9)
        finally:
            closed.set()

    ahead = Prefetched(produce(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert closed.wait(5), "the producer's iterator was not closed"
    assert wait_until(lambda: not ahead._thread.is_alive())  # noqa: SLF001 - the thread must end
    with pytest.raises(StopIteration):
        next(ahead)


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        Prefetched(iter([]), depth=0)


def test_an_abandoned_iterator_is_collected_and_its_producer_ends() -> None:
    import gc

    ahead = Prefetched(iter(range(10**9)), depth=1)
    thread = ahead._thread  # noqa: SLF001
    assert next(ahead) == 0
    del ahead
    gc.collect()
    assert wait_until(lambda: not thread.is_alive()), "the producer outlived its consumer"
