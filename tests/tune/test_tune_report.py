"""Sweep outputs without Ray: the sorted table, the best config files, the plots; the ``yolov12 tune`` arguments."""

from __future__ import annotations

import pytest
import yaml

from pipelines.config import load_pipeline_config
from tune.cli import split_arguments, tune_command
from tune.report import TrialRow, format_table, plot_metric_vs_epoch, plot_parallel_coordinates, write_best_config
from yolov12.cli.arguments import CommandLineError
from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig


def _rows() -> list[TrialRow]:
    return [TrialRow("a", {"lr0": 0.01, "optimizer": "SGD"}, [1], [0.10]),
            TrialRow("b", {"lr0": 0.001, "optimizer": "AdamW"}, [1, 2, 3], [0.10, 0.25, 0.30]),
            TrialRow("c", {"lr0": 0.003, "optimizer": "SGD"}, [1, 2], [0.05, 0.20]),
            TrialRow("d", {"lr0": 0.02, "optimizer": "SGD"}, error="RuntimeError: boom")]


def test_table_is_sorted_by_the_metric_and_shows_status():
    lines = format_table(_rows(), "mAP50-95", "max", max_epochs=3).splitlines()
    assert lines[0].split()[:4] == ["trial", "status", "epochs", "mAP50-95"]
    assert [line.split()[:2] for line in lines[2:]] == [["b", "DONE"], ["c", "STOPPED"], ["a", "STOPPED"],
                                                       ["d", "ERROR"]]
    lowest_first = format_table(_rows(), "loss", "min", max_epochs=3).splitlines()
    assert [line.split()[0] for line in lowest_first[2:]] == ["c", "a", "b", "d"]


def test_best_config_files_load_as_training_and_pipeline_configs(tmp_path):
    pipeline = load_pipeline_config(None, {"model": "yolov12n.yaml", "epochs": 3, "imgsz": 64})
    values = {"lr0": 0.002, "optimizer": "AdamW", "policy.Blur.p": 0.3}
    paths = write_best_config(values, pipeline, None, tmp_path, "demo")
    train = TrainConfig.from_overrides(yaml.safe_load(paths["train"].read_text()))
    assert (train.optim.lr0, train.optim.optimizer, train.run.epochs, train.data.imgsz) == (0.002, "AdamW", 3, 64)
    assert yaml.safe_load(open(train.augment.augment_policy))["ops"][0]["p"] == 0.3
    loaded = load_pipeline_config(paths["pipeline"])
    assert loaded.train == train and loaded.model == "yolov12n.yaml" and loaded.storage.name is None


def test_plots_are_written(tmp_path):
    assert plot_metric_vs_epoch(_rows(), "mAP50-95", tmp_path / "m.png").stat().st_size > 0
    assert plot_parallel_coordinates(_rows(), "mAP50-95", "max", tmp_path / "p.png").stat().st_size > 0


def test_cli_arguments_in_both_styles():
    assert split_arguments(["config=s.yaml", "epochs=2", "--num-cpus", "2"]) == (
        {"config": "s.yaml", "num_cpus": 2}, {"epochs": 2})
    assert split_arguments(["s.yaml", "--ray-address=auto", "search.num_samples=3"]) == (
        {"config": "s.yaml", "ray_address": "auto"}, {"search.num_samples": 3})
    with pytest.raises(CommandLineError, match="unknown key 'cpus'; did you mean 'num_cpus'"):
        split_arguments(["--cpus", "2"])
    with pytest.raises(CommandLineError, match="needs a sweep config"):
        tune_command(["epochs=2"])


def test_cli_rejects_a_bad_space_before_ray(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "x", "space": {"lr0": {"uniform": [0.1, 0.01]}}}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="space key 'lr0': low 0.1 > high 0.01"):
        tune_command(["config=s.yaml"])
    assert not (tmp_path / "runs").exists()
