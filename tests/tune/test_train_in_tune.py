"""A real Train-in-Tune sweep: one trial that is a Ray Train job of 2 DDP workers (gloo), on a local Ray of 3 CPUs.

configs/sweeps/sample-asha.yaml with ``resources.num_workers=2``: the trial function (1 CPU) builds the pipeline's
``TorchTrainer`` (``pipelines.driver.build_trainer``) with ``RunConfig(name=<sweep>-<trial id>)`` whose report callback
forwards every epoch of the Train job to Tune. 1 trial, 2 epochs, 64 px, fraction 0.25, no scheduler, no MLflow; ranked
by the summed training loss (which the Train job does not report itself: the trial's callback adds it, as in-process
trials do). The base pipeline config is configs/sample.yaml with ``checkpoint.num_to_keep=1`` and
``scaling.placement_strategy=SPREAD``, which the trial's Ray Train run must follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sweep_cli import run_sweep_cli

ROOT = Path(__file__).resolve().parents[2]
SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "sample-asha.yaml"
NAME = "ci-train-in-tune"
EPOCHS = 2
WORKERS = 2
BASE_CHANGES = {"checkpoint": {"num_to_keep": 1, "score_attribute": "fitness", "score_order": "max"},
                "scaling": {"placement_strategy": "SPREAD"}}  # SPREAD is soft: one node still places both workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class TrainInTuneSweep:
    storage: Path
    experiment: Path
    output: str
    trial_id: str
    rows: list[dict]  # the trial's result.json rows


@pytest.fixture(scope="module")
def train_in_tune_sweep(tmp_path_factory) -> TrainInTuneSweep:
    workdir = tmp_path_factory.mktemp("train-in-tune")
    storage = workdir / "runs"
    base = yaml.safe_load((ROOT / "configs" / "sample.yaml").read_text())
    for section, changes in BASE_CHANGES.items():
        base[section] = {**base[section], **changes}
    (workdir / "base.yaml").write_text(yaml.safe_dump(base))
    output = run_sweep_cli(
        ["--config", str(SWEEP_CONFIG), "--ray-address", "local", "--num-cpus", str(1 + WORKERS), f"name={NAME}",
         f"storage_path={storage}", f"base={workdir / 'base.yaml'}", "search.num_samples=1",
         "search.max_concurrent=1", f"epochs={EPOCHS}", "scheduler.kind=none", "objective.metric=loss",
         f"resources.num_workers={WORKERS}", "failure.max_failures=0", "tracking.enabled=false"], workdir)
    experiment = storage / NAME
    trials = sorted(path.name.removeprefix("trial_") for path in experiment.glob("trial_*"))
    assert len(trials) == 1, trials
    rows = [json.loads(line) for line in (experiment / f"trial_{trials[0]}" / "result.json").read_text().splitlines()
            if line.strip()]
    return TrainInTuneSweep(storage, experiment, output, trials[0], rows)


def test_each_epoch_of_the_train_job_is_a_tune_result(train_in_tune_sweep):
    rows = train_in_tune_sweep.rows
    epochs = [row["epoch"] for row in rows if not row.get("final")]
    assert epochs == list(range(1, EPOCHS + 1)), [(row["epoch"], row.get("final")) for row in rows]
    for row in rows:
        assert row["train_workers"] == WORKERS  # every report came from a Train job of 2 workers
        assert row["loss"] > 0 and row["loss"] == pytest.approx(
            sum(row[f"train/{part}_loss"] for part in ("box", "cls", "dfl")))
        assert "mAP50-95" in row and "metrics/mAP50-95_B" in row  # the names in-process trials report
    summary = json.loads((train_in_tune_sweep.experiment / "summary" / "summary.json").read_text())
    assert summary["trials"] == 1 and summary["errored"] == 0 and summary["epochs_trained"] == EPOCHS
    assert summary["best_trial_id"] == train_in_tune_sweep.trial_id


def test_the_trial_has_its_own_ray_train_run(train_in_tune_sweep):
    run = train_in_tune_sweep.storage / f"{NAME}-train" / f"{NAME}-{train_in_tune_sweep.trial_id}"
    assert run.is_dir(), sorted(p.name for p in train_in_tune_sweep.storage.iterdir())
    # each epoch's checkpoint is one of the Train run's
    assert all(Path(row["checkpoint_path"]).parent == run for row in train_in_tune_sweep.rows)
    final = Path(train_in_tune_sweep.rows[-1]["checkpoint_path"])
    assert (final / "weights" / "last.safetensors").is_file() and (final / "weights" / "last.state.pt").is_file()
    results = (final / "results.csv").read_text().splitlines()
    assert len(results) == 1 + EPOCHS  # the engine's own per-epoch log, from rank 0


def test_best_config_is_written_with_the_trial_values(train_in_tune_sweep):
    from yolov12.config.train import TrainConfig

    summary = train_in_tune_sweep.experiment / "summary"
    config = TrainConfig.from_overrides(yaml.safe_load((summary / "best_train.yaml").read_text()))
    params = json.loads((train_in_tune_sweep.experiment / f"trial_{train_in_tune_sweep.trial_id}" / "params.json")
                        .read_text())
    assert config.optim.lr0 == pytest.approx(params["lr0"]) and config.optim.optimizer == params["optimizer"]
    assert config.run.epochs == EPOCHS and (summary / "best_pipeline.yaml").is_file()


def test_the_train_run_keeps_the_checkpoints_the_pipeline_config_asks_for(train_in_tune_sweep):
    """``checkpoint.num_to_keep=1`` ranked by ``fitness`` (max): the best report's checkpoint plus the latest one
    (Ray always keeps the latest; ties go to the later report), computed from what the trial reported."""
    rows = train_in_tune_sweep.rows
    assert len(rows) == EPOCHS + 1  # one report per epoch and the final one (the complete run folder)
    ranked = sorted(range(len(rows)), key=lambda index: (rows[index]["fitness"], index))  # best last
    kept = {Path(rows[index]["checkpoint_path"]) for index in (ranked[-1], len(rows) - 1)}
    run = train_in_tune_sweep.storage / f"{NAME}-train" / f"{NAME}-{train_in_tune_sweep.trial_id}"
    on_disk = {path for path in run.glob("checkpoint_*") if path.is_dir()}
    assert on_disk == kept, (sorted(on_disk), [(row["fitness"], row["checkpoint_path"]) for row in rows])
