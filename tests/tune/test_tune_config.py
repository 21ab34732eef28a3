"""Sweep configs: the example files load, overrides route to their section, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.config import load_sweep_config
from yolov12.config.base import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the example files name base: configs/sample.yaml relative to the repository


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_example_sweeps_resolve(path):
    resolved = load_sweep_config(path).resolve()
    assert resolved.space.keys() and resolved.max_epochs >= 1
    assert resolved.pipeline.model.endswith(".yaml")


def test_overrides_route_to_sections():
    sweep = load_sweep_config(SWEEPS[0].parent / "sample-asha.yaml", [
        "name=ci", "search.num_samples=2", "epochs=2", "train.imgsz=96", "scheduler.kind=none",
        "objective.metric=loss", 'space.lr0={loguniform: [0.001, 0.01]}'])
    resolved = sweep.resolve()
    assert sweep.name == "ci" and sweep.search.num_samples == 2 and sweep.scheduler.kind == "none"
    assert resolved.max_epochs == 2 and resolved.train.data.imgsz == 96
    assert sweep.objective.direction == "min"
    lr0 = next(p for p in resolved.space.parameters if p.key == "lr0")
    assert (lr0.low, lr0.high) == (0.001, 0.01)


@pytest.mark.parametrize(("overrides", "words"), [
    (["search.num_sample=3"], "num_sample"),
    (["schedular.kind=asha"], "did you mean 'scheduler'"),
    (["objective.metric=map"], "objective.metric='map'"),
    (["scheduler.kind=pbt", "search.algorithm=optuna"], "cannot be combined"),
    (["scheduler.kind=pbt"], "cannot search 'optimizer'"),  # sample-asha searches optimizer
    (["name=bad name"], "name='bad name'"),
    (["scheduler.kind=pbt", "checkpoints_to_keep=2"], "too few for"),
    (["epoch=3"], "did you mean 'epochs'"),
])
def test_bad_sweep_settings_are_named(overrides, words):
    with pytest.raises(ConfigError) as info:
        load_sweep_config(SWEEPS[0].parent / "sample-asha.yaml", overrides).resolve()
    assert words in str(info.value)


def test_pbt_keeps_enough_checkpoints_for_exploits_by_default():
    asha = load_sweep_config(SWEEPS[0].parent / "sample-asha.yaml")
    pbt = load_sweep_config(SWEEPS[0].parent / "lr-aug-pbt.yaml")
    assert (asha.checkpoints_kept, pbt.checkpoints_kept) == (2, 4)
    assert load_sweep_config(SWEEPS[0].parent / "lr-aug-pbt.yaml", ["checkpoints_to_keep=3"]).checkpoints_kept == 3
