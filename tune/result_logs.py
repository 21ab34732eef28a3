"""Ray Tune's ``result.json`` / ``progress.csv`` loggers, keeping every row of a trial that restarts in the same run.

When a trial starts again with a checkpoint (a PBT exploit, a retry after a failure), Ray's loggers first copy the
trial's file from the storage path over the driver's local copy. Within one driver session the local copy is the
newer one: the driver uploads its folder to storage every few minutes, so the copy drops the rows reported since
the last upload (seen in a 4-epoch PBT sweep: an exploiting trial's ``result.json`` kept epochs 1 and 4, and the
sweep table, read from that file, lost its epochs). These loggers copy from storage only when the driver has no local
copy, i.e. after the driver itself restarted (``Tuner.restore``), which is when the stored file is the newer one.

Passing them in ``RunConfig(callbacks=...)`` replaces Ray's default JSON and CSV loggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback


class _KeepLocalRows:
    """Overrides ``LoggerCallback._restore_from_remote`` (Ray 2.60; private, covered by tests/tune/test_tune_pbt.py)."""

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        if Path(trial.local_path, file_name).exists():
            return  # this driver wrote it: newer than the stored copy
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class ResultJsonLogger(_KeepLocalRows, JsonLoggerCallback):
    """``result.json`` (one JSON row per report; what ``ResultGrid.metrics_dataframe`` reads)."""


class ProgressCsvLogger(_KeepLocalRows, CSVLoggerCallback):
    """``progress.csv``."""


def result_loggers() -> list[Any]:
    """The loggers a sweep's ``RunConfig`` gets (Ray adds its TensorBoard logger itself)."""
    return [ResultJsonLogger(), ProgressCsvLogger()]
