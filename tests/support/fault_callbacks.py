"""Training callbacks that inject a worker failure and record where each attempt started, for Ray Train tests.

Ray workers get them by value (``ray.cloudpickle.register_pickle_by_value`` on this module): the tests folder is
not importable in a worker process.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolov12.engine.callbacks import Callback


class KillRank1InEpoch2(Callback):
    """Kills rank 1's process after its first batch of epoch 2, once (the marker file remembers)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def on_batch_end(self, state, metrics) -> None:
        if state.rank == 1 and state.epoch == 1 and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)


class AttemptRecorder(Callback):
    """Appends ``rank first_epoch`` each time ``fit`` starts (first epoch is 0-based)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def on_fit_start(self, state) -> None:
        with open(self.path, "a") as handle:
            handle.write(f"{state.rank} {state.epoch}\n")
