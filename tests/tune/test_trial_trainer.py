"""A Train-in-Tune trial runs the pipeline's own Ray Train job: the trainer it builds carries the base config's scaling,
failure and checkpoint sections, the sweep's resources and the trial's sampled values (built, not run: no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tune.config import load_sweep_config
from tune.sweep import trial_setup
from tune.trainable import TrialSetup, trial_trainer

ROOT = Path(__file__).resolve().parents[2]
SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "sample-asha.yaml"
BASE_SECTIONS = {
    "scaling": {"num_workers": 4, "use_gpu": False, "resources_per_worker": {"CPU": 2, "memory": 2e9},
                "placement_strategy": "SPREAD", "sync_bn": True},
    "failure": {"max_failures": 3},
    "checkpoint": {"num_to_keep": 1, "score_attribute": "mAP50", "score_order": "min"},
}


def _base_config(folder: Path) -> Path:
    """configs/sample.yaml with every scaling/failure/checkpoint key away from its default."""
    values = yaml.safe_load((ROOT / "configs" / "sample.yaml").read_text())
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump({**values, **BASE_SECTIONS}))
    return path


def _setup(tmp_path: Path, *overrides: str) -> TrialSetup:
    sweep = load_sweep_config(SWEEP_CONFIG, [f"base={_base_config(tmp_path)}", f"storage_path={tmp_path / 'runs'}",
                                             "name=mapping", *overrides])
    return trial_setup(sweep.resolve())


def test_the_trial_trainer_carries_the_pipeline_config(tmp_path) -> None:
    setup = _setup(tmp_path, "resources.num_workers=2")
    values = {"lr0": 0.0123, "optimizer": "SGD"}
    trainer = trial_trainer(setup, values, tmp_path / "trial", "abc_00001")
    scaling = trainer.scaling_config
    assert scaling.num_workers == 2  # the sweep's resources.num_workers decides the job size
    assert scaling.resources_per_worker == {"CPU": 2, "memory": 2e9} and scaling.placement_strategy == "SPREAD"
    assert scaling.use_gpu is False and trainer.backend_config.backend == "gloo"
    run = trainer.run_config
    assert run.name == "mapping-abc_00001"  # no timestamp: a restarted trial resumes its Train run
    assert Path(run.storage_path) == tmp_path / "runs" / "mapping-train"
    assert run.failure_config.max_failures == 3
    assert (run.checkpoint_config.num_to_keep, run.checkpoint_config.checkpoint_score_attribute,
            run.checkpoint_config.checkpoint_score_order) == (1, "mAP50", "min")
    pipeline = trainer.train_loop_config["pipeline"]  # what the workers train with
    assert pipeline["scaling"]["num_workers"] == 2 and pipeline["scaling"]["sync_bn"] is True
    assert pipeline["train"]["optim"]["lr0"] == pytest.approx(0.0123) and pipeline["train"]["optim"]["optimizer"] \
        == "SGD"
    assert pipeline["train"]["run"]["epochs"] == 3  # the sweep's train: keys on top of the base config


def test_gpu_trials_take_use_gpu_from_one_place(tmp_path) -> None:
    setup = _setup(tmp_path, "resources.num_workers=2", "resources.gpu=1")
    assert not hasattr(setup, "use_gpu")
    assert setup.pipeline["scaling"]["use_gpu"] is True
    trainer = trial_trainer(setup, {}, tmp_path / "trial", "abc_00002")
    assert trainer.scaling_config.use_gpu is True and trainer.backend_config.backend == "nccl"
    assert trainer.train_loop_config["pipeline"]["scaling"]["use_gpu"] is True  # the workers pick their device


def test_the_sweep_resources_pick_the_trial_kind(tmp_path) -> None:
    assert _setup(tmp_path).num_workers == 0  # in-process, whatever the base config's scaling.num_workers says
    assert _setup(tmp_path, "resources.num_workers=2").num_workers == 2
