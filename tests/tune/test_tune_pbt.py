"""A real Population Based Training sweep (Ray Tune on a local 2-CPU Ray), shared by every assertion of this module.

configs/sweeps/lr-aug-pbt.yaml (learning rate, augmentation strengths, policy magnitudes) made tiny: 2 trials of
YOLOv12-N on the sample dataset at 64 px, fraction 0.25, 5 epochs, a perturbation after every epoch and
quantile_fraction 0.5 (of two trials, the worse one exploits the better one). No MLflow (``tracking.enabled=false``).

Objective: the summed training loss, with the classification loss gain ``cls`` searched too. Untrained mAP is 0 for
every trial; the loss alone differs between trials by about what one epoch improves it, so which trial ranks higher
would depend on which reported first. The reported loss scales with ``cls``, so one trial stays clearly worse until
it exploits the other.

When that happens depends on timing: asynchronous PBT ranks a report only once both trials have a score, and clones
only a trial that ranked top at its own last report. The worse trial exploits at its first report after the better
trial's first report after the worse one's first, usually its 2nd or 3rd; the last epoch is no perturbation, so 5
epochs leave room for one trial running 2 epochs ahead of the other on a loaded machine.

What is checked comes from what Ray Tune and the trials wrote: ``pbt_global.txt`` (one line per exploit),
``trial_*/result.json`` (the rows with each row's config) and the checkpoints (``weights/last.state.pt`` holds the
run's per-epoch history, ``policy.yaml`` the policy it trained with).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from sweep_cli import run_sweep_cli

from tune.config import load_sweep_config
from yolov12.engine.optim import lr_factor

ROOT = Path(__file__).resolve().parents[2]
SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "lr-aug-pbt.yaml"
NAME = "ci-pbt"
TRIALS = 2
EPOCHS = 5
LOSS_PARTS = ("train/box_loss", "train/cls_loss", "train/dfl_loss")
OVERRIDES = [f"name={NAME}", f"base={ROOT / 'configs' / 'sample.yaml'}", f"search.num_samples={TRIALS}",
             f"search.max_concurrent={TRIALS}", f"epochs={EPOCHS}", "imgsz=64", "fraction=0.25", "batch=8",
             "warmup_epochs=0", "close_mosaic=0", "scheduler.perturbation_interval=1",
             "scheduler.quantile_fraction=0.5", "objective.metric=loss", "space.cls={uniform: [0.2, 2.0]}",
             "tracking.enabled=false"]
RESOLVED = load_sweep_config(SWEEP_CONFIG, OVERRIDES).resolve()  # the YAML's space plus cls (see above)
SPACE = {parameter.key: (parameter.low, parameter.high) for parameter in RESOLVED.space.parameters}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Exploit:
    """One line of ``pbt_global.txt``: ``target`` continued from ``donor``'s checkpoint with ``new_config``."""

    target: str  # trial id
    donor: str
    donor_config: dict
    new_config: dict


@dataclass(frozen=True)
class PbtSweep:
    experiment: Path
    output: str
    exploits: list[Exploit]
    rows: dict[str, list[dict]]  # trial id -> result.json rows in order


def _trial_ids(experiment: Path) -> list[str]:
    return sorted(path.name.removeprefix("trial_") for path in experiment.glob("trial_*") if path.is_dir())


def _trial_id_of_tag(tag: str, trial_ids: list[str]) -> str:
    """PBT names trials by experiment tag (``<index>_<values>``); trial ids end with ``_<index:05d>``."""
    index = int(tag.split("_", 1)[0])
    return next(t for t in trial_ids if t.endswith(f"_{index:05d}"))


def _read_exploits(experiment: Path, trial_ids: list[str]) -> list[Exploit]:
    path = experiment / "pbt_global.txt"
    if not path.exists():
        return []
    exploits = []
    for line in path.read_text().splitlines():
        target_tag, donor_tag, _target_iteration, _donor_iteration, donor_config, new_config = json.loads(line)
        exploits.append(Exploit(_trial_id_of_tag(target_tag, trial_ids), _trial_id_of_tag(donor_tag, trial_ids),
                                donor_config, new_config))
    return exploits


def _rows(experiment: Path, trial_id: str) -> list[dict]:
    path = experiment / f"trial_{trial_id}" / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _same_config(a: dict, b: dict) -> bool:
    return all(a[key] == pytest.approx(b[key], rel=1e-9) for key in SPACE)


@pytest.fixture(scope="module")
def pbt_sweep(tmp_path_factory) -> PbtSweep:
    workdir = tmp_path_factory.mktemp("pbt")
    storage = workdir / "runs"
    # RAY_DEDUP_LOGS=0: every trial's "resumes from" line reaches the output, none folded into another
    output = run_sweep_cli(["--config", str(SWEEP_CONFIG), "--ray-address", "local", "--num-cpus", "2",
                            f"storage_path={storage}", *OVERRIDES], workdir, {"RAY_DEDUP_LOGS": "0"})
    experiment = storage / NAME
    trial_ids = _trial_ids(experiment)
    assert len(trial_ids) == TRIALS, trial_ids
    return PbtSweep(experiment, output, _read_exploits(experiment, trial_ids),
                    {t: _rows(experiment, t) for t in trial_ids})


def test_every_epoch_reports_a_checkpoint(pbt_sweep):
    """Rows run 1, 2, ... under each config (no row lost when a trial restarts) and each carries a checkpoint."""
    for trial_id, rows in pbt_sweep.rows.items():
        assert rows and rows[0]["epoch"] == 1 and rows[-1]["epoch"] == EPOCHS, (trial_id, [r["epoch"] for r in rows])
        for before, after in zip(rows, rows[1:]):
            if _same_config(before["config"], after["config"]):
                assert after["epoch"] == before["epoch"] + 1, (trial_id, [r["epoch"] for r in rows])
        assert all(row.get("checkpoint_dir_name") for row in rows), trial_id
        last = pbt_sweep.experiment / f"trial_{trial_id}" / rows[-1]["checkpoint_dir_name"]
        assert (last / "weights" / "last.state.pt").is_file() and (last / "policy.yaml").is_file()
    summary = json.loads((pbt_sweep.experiment / "summary" / "summary.json").read_text())
    assert summary["trials"] == TRIALS and summary["errored"] == 0


def test_a_trial_exploits_another_and_goes_on_with_perturbed_values(pbt_sweep):
    assert pbt_sweep.exploits, f"no exploit in pbt_global.txt:\n{pbt_sweep.output[-3000:]}"
    for exploit in pbt_sweep.exploits:
        assert exploit.target != exploit.donor
        assert (pbt_sweep.experiment / f"pbt_policy_{exploit.target}.txt").is_file()
        assert f"trial {exploit.target} resumes from {pbt_sweep.experiment}/trial_{exploit.donor}/checkpoint_" in \
            pbt_sweep.output, "the trial's log does not say it resumed from the donor's checkpoint"
        assert not _same_config(exploit.new_config, exploit.donor_config), "nothing was perturbed"
        for key, (low, high) in SPACE.items():  # x1.2 perturbations are kept inside the searched range
            assert low <= exploit.new_config[key] <= high, (key, exploit.new_config[key])
        rows = pbt_sweep.rows[exploit.target]
        assert any(_same_config(row["config"], exploit.new_config) for row in rows), "the new config never trained"
        assert not _same_config(rows[0]["config"], exploit.new_config), "the trial's config did not change"


def _first_row_under(rows: list[dict], config: dict) -> dict:
    return next(row for row in rows if _same_config(row["config"], config))


def test_the_exploiting_trial_continues_the_copied_run_with_its_new_learning_rate(pbt_sweep):
    optim = RESOLVED.train.optim  # lrf, cos_lr (not searched)
    for exploit in pbt_sweep.exploits:
        first = _first_row_under(pbt_sweep.rows[exploit.target], exploit.new_config)
        copied_epoch = first["epoch"] - 1  # the donor's epoch whose checkpoint was copied
        assert copied_epoch >= 1, "the exploiting trial started over at epoch 1"
        assert any(row["epoch"] == copied_epoch and _same_config(row["config"], exploit.donor_config)
                   for row in pbt_sweep.rows[exploit.donor]), "the donor never reported the copied epoch"
        factor = lr_factor(copied_epoch, EPOCHS, optim.lrf, optim.cos_lr)  # no warm-up: lr = lr0 x factor(epoch)
        assert first["lr/pg0"] == pytest.approx(exploit.new_config["lr0"] * factor, rel=1e-6), \
            "trained at another trial's learning rate"


def test_the_final_run_is_the_donors_history_then_its_own_epochs_with_its_values(pbt_sweep):
    """Each exploiting trial's last exploit, read from the trial's final checkpoint (``weights/last.state.pt``)."""
    last_exploits = {exploit.target: exploit for exploit in pbt_sweep.exploits}  # pbt_global.txt is in time order
    for target, exploit in last_exploits.items():
        rows = pbt_sweep.rows[target]
        assert _same_config(rows[-1]["config"], exploit.new_config)
        copied_epoch = _first_row_under(rows, exploit.new_config)["epoch"] - 1
        donor_row = next(row for row in pbt_sweep.rows[exploit.donor]
                         if row["epoch"] == copied_epoch and _same_config(row["config"], exploit.donor_config))
        own_rows = {row["epoch"]: row for row in rows if _same_config(row["config"], exploit.new_config)}
        folder = pbt_sweep.experiment / f"trial_{target}" / rows[-1]["checkpoint_dir_name"]
        state = torch.load(folder / "weights" / "last.state.pt", map_location="cpu", weights_only=True)
        history = state["history"]
        assert [entry["epoch"] for entry in history] == list(range(1, EPOCHS + 1))
        assert sorted(own_rows) == list(range(copied_epoch + 1, EPOCHS + 1))
        for part in LOSS_PARTS:  # the run it continued is the donor's (its losses up to the copied epoch) ...
            assert history[copied_epoch - 1][part] == pytest.approx(donor_row[part], rel=1e-6), part
            for epoch, row in own_rows.items():  # ... then its own epochs
                assert history[epoch - 1][part] == pytest.approx(row[part], rel=1e-6), (part, epoch)
        config = state["config"]  # what the engine trained with: this trial's new values
        for key in ("lr0", "mosaic", "mixup", "scale", "translate", "hsv_v", "cls"):
            assert config[key] == pytest.approx(exploit.new_config[key], rel=1e-9), key
        ops = {op["name"]: op for op in yaml.safe_load((folder / "policy.yaml").read_text())["ops"]}
        for key, value in exploit.new_config.items():
            if key.startswith("policy."):
                _, op, field = key.split(".")
                assert ops[op][field] == pytest.approx(value), key
