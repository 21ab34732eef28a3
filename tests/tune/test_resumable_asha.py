"""ASHA's rung records survive a restart of the sweep driver (Ray Tune does not checkpoint schedulers)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from tune.resumable_asha import STATE_FILE, STATE_FOLDER_SUFFIX, ResumableASHA

SETTINGS = dict(time_attr="epoch", metric="loss", mode="min", max_t=3, grace_period=1, reduction_factor=3)


def _report(scheduler, trial_id: str, epoch: int, loss: float) -> str:
    trial = SimpleNamespace(trial_id=trial_id)
    return scheduler.on_trial_result(None, trial, {"epoch": epoch, "loss": loss})


def _add(scheduler, *trial_ids: str) -> None:
    for trial_id in trial_ids:
        scheduler.on_trial_add(None, SimpleNamespace(trial_id=trial_id))


def test_a_restarted_driver_keeps_the_rungs_recorded_before_it(tmp_path) -> None:
    before = ResumableASHA(storage_path=str(tmp_path), name="sweep", **SETTINGS)
    _add(before, "a", "b", "c")
    for trial_id, loss in (("a", 1.0), ("b", 0.9), ("c", 0.8)):  # each better than the last: all continue
        assert _report(before, trial_id, 1, loss) == TrialScheduler.CONTINUE
    assert (tmp_path / f"sweep{STATE_FOLDER_SUFFIX}" / STATE_FILE).is_file()

    # The restored driver unpickles the scheduler as it was created (tuner.pkl), with empty rungs.
    after = pickle.loads(pickle.dumps(ResumableASHA(storage_path=str(tmp_path), name="sweep", **SETTINGS)))
    _add(after, "b", "d")
    assert _report(after, "d", 1, 5.0) == TrialScheduler.STOP  # compared with a, b and c from before the restart
    assert after.rung_state()["brackets"][0][-1][1] == {"a": -1.0, "b": -0.9, "c": -0.8, "d": -5.0}

    forgetful = AsyncHyperBandScheduler(**SETTINGS)  # what plain ASHA does after Tuner.restore
    _add(forgetful, "d")
    assert _report(forgetful, "d", 1, 5.0) == TrialScheduler.CONTINUE


def test_restored_trials_keep_their_bracket(tmp_path) -> None:
    before = ResumableASHA(storage_path=str(tmp_path), name="sweep", brackets=3, **SETTINGS)
    _add(before, *"abcdef")
    _report(before, "a", 1, 1.0)
    brackets = before.rung_state()["trial_brackets"]
    after = ResumableASHA(storage_path=str(tmp_path), name="sweep", brackets=3, **SETTINGS)
    _add(after, *"abcdef")
    assert after.rung_state()["trial_brackets"] == brackets
