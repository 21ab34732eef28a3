"""Read ahead: produce the next items of an iterator on a background thread while the caller works on the current one.

Predict uses it to decode and letterbox batch k+1 while the engine runs batch k and post-processing turns it into
``Results``. The work on both sides spends its time in code that releases the GIL (OpenCV's decode and resize;
the engines' forward: ONNX Runtime, OpenVINO, TensorRT and torch ops), so the two overlap: on a GPU the decode
disappears from the time per image, on a CPU it fills the cores' idle moments between the engine's parallel regions.

What stays the same as iterating in the caller's thread: items arrive in order; an exception raised while producing
item k is raised to the caller when it asks for item k (after items 0..k-1), with its own traceback; at most
``depth`` items are produced ahead, so memory stays bounded and a live stream is read at most ``depth`` frames early;
a consumer that stops early (``break``, an exception, ``close()``) stops the producer, which ends after the item it
is producing (the iterator is closed on the producer thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone
_DONE = object()


class _Failure:
    """An exception raised while producing, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetched(Iterator[T]):
    """Iterate ``items`` with up to ``depth`` of them produced ahead on a daemon thread named ``name``.

    The thread starts at construction, so the first items are produced while the caller still works on whatever it
    had. :meth:`close` (also on ``with`` exit and garbage collection) stops it.

    Example:
        >>> with Prefetched(iter(range(5)), depth=2) as ahead:
        ...     list(ahead)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, items: Iterator[T], depth: int = 1, name: str = "yolov12-prefetch") -> None:
        self._stop = threading.Event()
        self._finished = False
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._handoff: queue.Queue = queue.Queue(maxsize=depth)
        # the thread holds the queue and the event, not this object, so an abandoned iterator is still collected
        self._thread = threading.Thread(target=_produce, args=(items, self._handoff, self._stop), name=name,
                                        daemon=True)
        self._thread.start()

    def __iter__(self) -> Prefetched[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._handoff.get()
        if item is _DONE or isinstance(item, _Failure):
            self._finished = True
            self._stop.set()
            if item is _DONE:
                raise StopIteration
            raise item.error
        return item

    def close(self) -> None:
        """Stop producing; the thread ends after the item it is producing."""
        self._finished = True
        self._stop.set()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._stop.set()


def _offer(handoff: queue.Queue, stop: threading.Event, item: object) -> bool:
    """Put ``item`` for the consumer; False when the consumer has gone first."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _produce(items: Iterator, handoff: queue.Queue, stop: threading.Event) -> None:
    """The producer thread: every item, then the end marker or the error that ended it; closes ``items``."""
    try:
        for item in items:
            if not _offer(handoff, stop, item):
                return
        _offer(handoff, stop, _DONE)
    except BaseException as error:  # noqa: BLE001 - carried to the consumer and raised there
        _offer(handoff, stop, _Failure(error))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
