"""Training callbacks: how the loop reports (progress bars, results.csv, MLflow and Ray later) without printing."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Callback:
    """Hooks called by the training loop; override what you need. ``state`` is the trainer's public state."""

    def on_train_data(self, state: Any, data: Any) -> None: ...  # loaders built (``data``: TrainingData)
    def on_fit_start(self, state: Any) -> None: ...
    def on_epoch_start(self, state: Any) -> None: ...
    def on_batch_end(self, state: Any, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None: ...
    def on_fit_end(self, state: Any, metrics: dict[str, float]) -> None: ...


class CallbackList(Callback):
    """Fan a hook out to several callbacks."""

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])

    def __getattribute__(self, name: str):
        if name.startswith("on_"):
            return lambda *args: [getattr(cb, name)(*args) for cb in object.__getattribute__(self, "callbacks")]
        return object.__getattribute__(self, name)


class ResultsCSV(Callback):
    """Appends one row per epoch to ``results.csv`` (written by rank 0 only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if not state.is_main_process:
            return
        row = {"epoch": state.epoch + 1, **{k: round(float(v), 6) for k, v in metrics.items()}}
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running losses, images/s and ETA (rank 0 only)."""

    def __init__(self) -> None:
        self.bar = None

    def on_epoch_start(self, state: Any) -> None:
        if not state.is_main_process:
            return
        from tqdm import tqdm  # noqa: PLC0415 - only the CLI/interactive runs need it

        self.bar = tqdm(total=state.batches_per_epoch, desc=f"epoch {state.epoch + 1}/{state.epochs}",
                        unit="batch", leave=True, dynamic_ncols=True)

    def on_batch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items()}, refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            logger.info("epoch %d/%d: %s", state.epoch + 1, state.epochs, summary)
