"""``time=hours``: a wall-clock budget for training that overrides ``epochs``.

After each epoch the mean epoch time (of this ``fit`` call) says how many epochs fit into the budget; the run's
epoch count becomes that estimate, so the learning-rate decay, the warm-up cap and ``close_mosaic`` follow it, and
the run stops after the epoch that reaches the budget. The clock starts when ``fit`` starts (a resumed run gets the
whole budget again). Under DDP rank 0's clock decides and every rank follows it.
"""

from __future__ import annotations

import logging
import math
import time

from yolov12.engine.distributed import DistributedContext, broadcast_object
from yolov12.engine.schedule import warmup_steps
from yolov12.engine.state import TrainState

logger = logging.getLogger(__name__)


class TimeBudget:
    """The budget of one ``fit`` call.

    Args:
        hours: the budget; None: no budget (``epochs`` decides).
        clock: seconds, monotonic (tests pass a fake clock).

    Example:
        >>> budget = TimeBudget(None)
        >>> budget.plan(epochs_done=1, epochs=10)
        (10, False)
    """

    def __init__(self, hours: float | None, clock=time.monotonic) -> None:
        self.seconds = hours * 3600.0 if hours is not None else None
        self.clock = clock
        self.start = clock()
        self.epochs_run = 0

    def plan(self, epochs_done: int, epochs: int) -> tuple[int, bool]:
        """After an epoch: (the run's epoch count from now on, stop now?). ``epochs_done`` counts the whole run."""
        if self.seconds is None:
            return epochs, False
        self.epochs_run += 1
        elapsed = self.clock() - self.start
        if elapsed >= self.seconds:
            logger.info("time=%.4gh reached after %d epochs (%.0f s): stopping", self.seconds / 3600, epochs_done,
                        elapsed)
            return epochs_done, True
        per_epoch = elapsed / self.epochs_run
        estimate = epochs_done + max(1, math.ceil((self.seconds - elapsed) / per_epoch))
        if estimate != epochs:
            logger.info("time=%.4gh: %.1f s per epoch, about %d epochs fit (was %d)", self.seconds / 3600, per_epoch,
                        estimate, epochs)
        return estimate, False


def follow_time_budget(budget: TimeBudget, state: TrainState, context: DistributedContext) -> bool:
    """After an epoch (``state.epoch`` already counts it): set ``state.epochs`` and its warm-up cap to the budget's
    estimate (rank 0's, under DDP); True when time is up."""
    epochs, stop = budget.plan(state.epoch, state.epochs)
    if context.is_distributed:
        epochs, stop = broadcast_object((epochs, stop), context)
    if epochs != state.epochs:
        state.epochs = epochs
        state.warmup_steps = warmup_steps(state.config.optim, state.batches_per_epoch, epochs)
    return stop
