"""The shipped op-selection sweep (configs/sweeps/sample-photo-policy.yaml) end to end through Ray Tune, tiny.

``python -m tune.sweep`` as users start it, on a local 2-CPU Ray: 3 trials of YOLOv12-N on 16 sample-photo images
at 64 px for at most 2 epochs under the config's ASHA, MLflow off. Each trial's policy must hold exactly the 2 ops
its ``policy.ops`` sample chose, at their sampled magnitudes, and the best trial's policy is written out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sweep_cli import ROOT, run_sweep_cli

from yolov12.data.augment.policy import AugmentPolicy

SWEEP_CONFIG = ROOT / "configs" / "sweeps" / "sample-photo-policy.yaml"
NAME = "ci-photo-policy"
TRIALS = 3

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("policy-sweep")
    storage = workdir / "runs"
    run_sweep_cli(["--config", str(SWEEP_CONFIG), "--ray-address", "local", "--num-cpus", "2", f"name={NAME}",
                   f"storage_path={storage}", f"base={ROOT / 'configs' / 'sample.yaml'}",
                   f"search.num_samples={TRIALS}", "epochs=2", "imgsz=64", "fraction=0.125", "batch=8",
                   "scheduler.grace_period=1", "tracking.enabled=false"],
                  cwd=workdir, timeout=600)
    return storage / NAME


def _trial_dirs(experiment: Path) -> list[Path]:
    return sorted(path for path in experiment.glob("trial_*") if (path / "params.json").is_file())


def test_every_trial_trains_exactly_the_ops_it_chose(finished_sweep):
    trials = _trial_dirs(finished_sweep)
    assert len(trials) == TRIALS
    for trial in trials:
        params = json.loads((trial / "params.json").read_text())
        chosen = params["policy.ops"].split("+")
        last_checkpoint = sorted(trial.glob("checkpoint_*"))[-1]  # the trial's run folder as it reported it
        policy = AugmentPolicy.load(last_checkpoint / "policy.yaml")
        assert [op.name for op in policy.ops] == chosen and len(chosen) == 2
        for op in policy.ops:
            key = f"policy.{op.name}.magnitude"
            assert op.p == 0.5 and op.magnitude == pytest.approx(params.get(key, 0.5))
        assert (trial / "result.json").read_text().strip(), f"{trial.name} reported no epoch"


def test_best_policy_is_the_best_trials_choice(finished_sweep):
    summary = json.loads((finished_sweep / "summary" / "summary.json").read_text())
    assert summary["trials"] == TRIALS and summary["errored"] == 0
    params = json.loads((finished_sweep / f"trial_{summary['best_trial_id']}" / "params.json").read_text())
    best = yaml.safe_load((finished_sweep / "summary" / "best_policy.yaml").read_text())
    assert "+".join(op["name"] for op in best["ops"]) == params["policy.ops"]
