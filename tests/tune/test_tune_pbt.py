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
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from yolov12.engine.optim import lr_factor

ROOT = Path(__file__).resolve().parents[2]
SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "lr-aug-pbt.yaml"
NAME = "ci-pbt"
TRIALS = 2
EPOCHS = 5
SPACE = {"lr0": (1.0e-4, 1.0e-2), "mosaic": (0.3, 1.0), "mixup": (0.0, 0.3), "scale": (0.2, 0.7),
         "translate": (0.0, 0.2), "hsv_v": (0.1, 0.6), "policy.HueSaturationValue.p": (0.0, 0.5),
         "policy.HueSaturationValue.magnitude": (0.0, 1.0), "policy.GaussNoise.magnitude": (0.0, 1.0),
         "policy.CoarseDropout.p": (0.0, 0.4), "cls": (0.2, 2.0)}  # the YAML's space plus cls (see above)
LOSS_PARTS = ("train/box_loss", "train/cls_loss", "train/dfl_loss")

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
    command = [sys.executable, "-m", "tune.sweep", "--config", str(SWEEP_CONFIG), "--ray-address", "local",
               "--num-cpus", "2", f"name={NAME}", f"storage_path={storage}", f"base={ROOT / 'configs' / 'sample.yaml'}",
               f"search.num_samples={TRIALS}", f"search.max_concurrent={TRIALS}", f"epochs={EPOCHS}", "imgsz=64",
               "fraction=0.25", "batch=8", "warmup_epochs=0", "close_mosaic=0", "scheduler.perturbation_interval=1",
               "scheduler.quantile_fraction=0.5", "objective.metric=loss", "space.cls={uniform: [0.2, 2.0]}",
               f"checkpoints_to_keep={EPOCHS}", "tracking.enabled=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["RAY_DEDUP_LOGS"] = "0"  # every trial's "resumes from" line reaches the output, none folded into another
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
                            start_new_session=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"PBT sweep failed:\n{output[-4000:]}"
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


def _checked_exploits(sweep: PbtSweep) -> list[tuple[Exploit, dict]]:
    """Each exploit with the target's first row under the new config, when that row's checkpoint is still its own.

    A report that triggers an exploit keeps a checkpoint Tune does not register, and the trial's next report is
    written to the same folder; so a first row that itself triggered the next exploit is left out (a trial's last
    exploit never is).
    """
    checked = []
    for exploit in sweep.exploits:
        rows = sweep.rows[exploit.target]
        index = next(i for i, row in enumerate(rows) if _same_config(row["config"], exploit.new_config))
        if all(row["checkpoint_dir_name"] != rows[index]["checkpoint_dir_name"] for row in rows[index + 1:]):
            checked.append((exploit, rows[index]))
    return checked


def test_the_exploiting_trial_continues_the_copied_run_with_its_new_values(pbt_sweep):
    checked = _checked_exploits(pbt_sweep)
    assert checked, "no exploit whose checkpoint can be read"
    for exploit, first in checked:
        copied_epoch = first["epoch"] - 1  # the donor's epoch whose checkpoint was copied
        assert copied_epoch >= 1, "the exploiting trial started over at epoch 1"
        donor_row = next(row for row in pbt_sweep.rows[exploit.donor]
                         if row["epoch"] == copied_epoch and _same_config(row["config"], exploit.donor_config))
        folder = pbt_sweep.experiment / f"trial_{exploit.target}" / first["checkpoint_dir_name"]
        state = torch.load(folder / "weights" / "last.state.pt", map_location="cpu", weights_only=True)
        history = state["history"]
        assert [entry["epoch"] for entry in history] == list(range(1, first["epoch"] + 1))
        for part in LOSS_PARTS:  # the run it continued is the donor's (its losses up to the copied epoch) ...
            assert history[copied_epoch - 1][part] == pytest.approx(donor_row[part], rel=1e-6), part
            assert history[-1][part] == pytest.approx(first[part], rel=1e-6), part  # ... then its own epoch
        config = state["config"]  # what the engine trained that epoch with: this trial's new values
        for key in ("lr0", "mosaic", "mixup", "scale", "translate", "hsv_v", "cls"):
            assert config[key] == pytest.approx(exploit.new_config[key], rel=1e-9), key
        expected_lr = exploit.new_config["lr0"] * lr_factor(copied_epoch, EPOCHS, config["lrf"], config["cos_lr"])
        assert first["lr/pg0"] == pytest.approx(expected_lr, rel=1e-6), "trained at another trial's learning rate"
        ops = {op["name"]: op for op in yaml.safe_load((folder / "policy.yaml").read_text())["ops"]}
        for key, value in exploit.new_config.items():
            if key.startswith("policy."):
                _, op, field = key.split(".")
                assert ops[op][field] == pytest.approx(value), key
