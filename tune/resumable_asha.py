"""ASHA whose early-stopping records survive a restart of the sweep driver.

Ray Tune checkpoints trials and the search algorithm, but not the scheduler: after ``Tuner.restore`` ASHA starts
with empty rungs, so trials that report after the restart are compared only with each other (and the first of them
is never stopped). :class:`ResumableASHA` writes its rungs (and which bracket each trial is in) after every recorded
result and reads them back before its first decision in the restored driver. The file lives in a sibling folder
``<storage_path>/<name>.scheduler/``, not in the experiment folder: Tune mirrors that folder from the driver's local
staging copy, which would put the state of the previous restart back over a newer one.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler

from pipelines.storage import resolve_storage
from tune.experiment_files import read_experiment_file, write_experiment_file

logger = logging.getLogger(__name__)

STATE_FILE = "asha_state.json"
STATE_FOLDER_SUFFIX = ".scheduler"


class ResumableASHA(AsyncHyperBandScheduler):
    """``ASHAScheduler`` that persists its rungs in ``<storage_path>/<name>.scheduler/asha_state.json``."""

    def __init__(self, *, storage_path: str, name: str, **asha: Any) -> None:
        super().__init__(**asha)
        self._state_location = (storage_path, f"{name}{STATE_FOLDER_SUFFIX}")
        self._state_loaded = False
        self._saved_trial_brackets: dict[str, int] = {}

    # -- Tune hooks -----------------------------------------------------------------------------------------------
    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._load_once()
        super().on_trial_add(tune_controller, trial)
        index = self._saved_trial_brackets.get(trial.trial_id)
        if index is not None and index < len(self._brackets):  # a restored trial keeps its bracket
            self._trial_info[trial.trial_id] = self._brackets[index]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._load_once()
        decision = super().on_trial_result(tune_controller, trial, result)
        self._save()
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._load_once()
        super().on_trial_complete(tune_controller, trial, result)
        self._save()

    # -- state ----------------------------------------------------------------------------------------------------
    def rung_state(self) -> dict[str, Any]:
        """Recorded rewards per bracket and milestone, and each trial's bracket (JSON-ready)."""
        return {
            "brackets": [[[milestone, {t: float(v) for t, v in recorded.items()}] for milestone, recorded in b._rungs]
                         for b in self._brackets],
            "trial_brackets": {t: self._brackets.index(b) for t, b in self._trial_info.items()},
        }

    def load_rung_state(self, state: dict[str, Any]) -> None:
        """Merge saved rungs into this scheduler's (same brackets and milestones; others are ignored)."""
        for bracket, saved in zip(self._brackets, state.get("brackets", [])):
            by_milestone = {float(milestone): recorded for milestone, recorded in saved}
            for milestone, recorded in bracket._rungs:
                recorded.update(by_milestone.get(float(milestone), {}))

    def _load_once(self) -> None:
        if self._state_loaded:
            return
        self._state_loaded = True
        storage_path, name = self._state_location
        saved = read_experiment_file(resolve_storage(storage_path), name, STATE_FILE) or {}
        if saved:
            self.load_rung_state(saved)
            logger.info("ASHA continues with %d recorded results from before the restart",
                        sum(len(r) for b in saved.get("brackets", []) for _, r in b))
        self._saved_trial_brackets = saved.get("trial_brackets", {})

    def _save(self) -> None:
        storage_path, name = self._state_location
        write_experiment_file(resolve_storage(storage_path), name, STATE_FILE, self.rung_state())
