"""Training options: cache (same losses), freeze, multi_scale, time budget, pretrained transfer, optimizer=auto."""

from __future__ import annotations

import copy
import csv
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from yolov12 import YOLO
from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.data.builtin import build
from yolov12.engine.freeze import freeze_layers, keep_frozen_norms_in_eval
from yolov12.engine.loop import multi_scale_images
from yolov12.engine.optim import build_optimiser, plan_optimiser
from yolov12.engine.time_budget import TimeBudget
from yolov12.models import build_model, load_architecture
from yolov12.models.transfer import PretrainedWeightsError, apply_pretrained
from yolov12.weights import save_checkpoint

TINY = dict(imgsz=64, batch=8, fraction=0.09, workers=0, val=False, verbose=False, plots=False, seed=3,
            warmup_epochs=1, close_mosaic=1, optimizer="SGD", lr0=0.01, amp=False, device="cpu")


def copy_sample(destination: Path) -> Path:
    """A copy of the sample dataset (disk caching writes beside the images) -> its data.yaml."""
    source = Path(build("sample"))
    config = yaml.safe_load(source.read_text())
    root = Path(config["path"])
    shutil.copytree(root, destination, ignore=shutil.ignore_patterns("*.json", "*.npy", ".complete"))
    config["path"] = str(destination)
    (destination / "data.yaml").write_text(yaml.safe_dump(config))
    return destination / "data.yaml"


def epoch_losses(run_dir: Path) -> list[tuple[float, ...]]:
    with (run_dir / "results.csv").open() as handle:
        return [tuple(float(row[k]) for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss"))
                for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_cached_runs_have_the_loss_curve_of_uncached_ones(tmp_path: Path) -> None:
    data = copy_sample(tmp_path / "sample")
    curves = {}
    for cache in (False, "ram", "disk"):
        torch.manual_seed(0)
        model = YOLO("yolov12n.yaml")
        model.train(data=str(data), epochs=2, project=str(tmp_path / "runs"), name=str(cache), cache=cache, **TINY)
        curves[cache] = epoch_losses(model.trainer_result.run_dir)
    assert len(curves[False]) == 2
    assert curves["ram"] == curves[False] and curves["disk"] == curves[False]
    assert any((tmp_path / "sample" / "images" / "train").glob("*.npy"))


@pytest.fixture(scope="module")
def nano() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_architecture("yolov12n.yaml"))


def test_freeze_keeps_layers_out_of_the_optimiser_and_their_norms_still(nano, caplog) -> None:
    model = copy.deepcopy(nano)
    with caplog.at_level(logging.INFO, logger="yolov12.engine.freeze"):
        frozen = freeze_layers(model, 3)
    first_three = sum(p.numel() for name, p in model.named_parameters() if name.startswith(("model.0.", "model.1.",
                                                                                            "model.2.")))
    assert frozen == first_three > 0 and f"froze layers 0-2, {frozen}/" in caplog.text
    optimiser = build_optimiser(model, plan_optimiser(TrainConfig().optim, 16, 100, 80))
    optimised = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert all((id(p) in optimised) == (not name.startswith(("model.0.", "model.1.", "model.2.")))
               for name, p in model.named_parameters() if "dfl" not in name)
    model.train()
    keep_frozen_norms_in_eval(model)
    assert not model.model[0].bn.training and model.model[3].bn.training
    before = model.model[0].bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert torch.equal(model.model[0].bn.running_mean, before)
    assert freeze_layers(copy.deepcopy(nano), [0, 5]) > 0
    with pytest.raises(ConfigError, match="freeze=40: the model has 22 layers"):
        freeze_layers(model, 40)


def test_multi_scale_sizes_are_stride_multiples_around_imgsz() -> None:
    images = torch.rand(2, 3, 64, 64)
    sizes = {tuple(multi_scale_images(images, 64, 32).shape[2:]) for _ in range(40)}
    assert sizes <= {(32, 32), (64, 64), (96, 96)} and len(sizes) > 1
    wide = multi_scale_images(torch.rand(1, 3, 64, 96), 640, 32)
    assert wide.shape[2] % 32 == 0 and wide.shape[3] % 32 == 0 and wide.shape[3] >= wide.shape[2]


def test_time_budget_sets_the_epoch_count_and_stops() -> None:
    now = [0.0]
    budget = TimeBudget(1.0, clock=lambda: now[0])  # one hour
    now[0] = 600.0  # first epoch: 10 minutes -> 6 fit
    assert budget.plan(epochs_done=1, epochs=100) == (6, False)
    now[0] = 1500.0  # 12.5 min per epoch: 2.8 more fit, rounded up (the last one ends past the budget)
    assert budget.plan(epochs_done=2, epochs=6) == (5, False)
    now[0] = 3700.0
    assert budget.plan(epochs_done=3, epochs=5) == (3, True)
    assert TimeBudget(None).plan(epochs_done=1, epochs=7) == (7, False)


def test_pretrained_path_transfers_matching_tensors(tmp_path: Path, nano, caplog) -> None:
    source = build_model(load_architecture("yolov12n.yaml").with_overrides(num_classes=3))
    path = save_checkpoint(source, tmp_path / "three.safetensors")
    target = copy.deepcopy(nano)
    with caplog.at_level(logging.INFO, logger="yolov12.models.transfer"):
        copied = apply_pretrained(target, str(path))
    total = len(target.state_dict())
    assert 0 < copied < total and f"transferred {copied}/{total} tensors" in caplog.text
    assert torch.equal(target.state_dict()["model.0.conv.weight"], source.state_dict()["model.0.conv.weight"])
    bare = tmp_path / "bare.pt"
    torch.save(nano.state_dict(), bare)
    assert apply_pretrained(target, str(bare)) == total


def test_pretrained_true_looks_in_the_working_folder_and_the_weights_cache(tmp_path: Path, nano,
                                                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(PretrainedWeightsError, match=r"pretrained=True: no yolov12n\{.safetensors,.pt,.pth\} in .*"
                                                     r"\.cache/yolov12-platform/weights \(nothing is downloaded\)"):
        apply_pretrained(nano, True)
    weights = tmp_path / "home" / ".cache" / "yolov12-platform" / "weights"
    weights.mkdir(parents=True)
    save_checkpoint(nano, weights / "yolov12n.safetensors")
    assert apply_pretrained(copy.deepcopy(nano), True) == len(nano.state_dict())
    with pytest.raises(PretrainedWeightsError, match="no such file"):
        apply_pretrained(nano, "missing.pt")


def test_optimizer_auto_says_when_it_ignores_lr0(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="yolov12.engine.optim"):
        plan = plan_optimiser(TrainConfig.from_overrides(lr0=0.05).optim, 16, 100, 80)
    assert plan.name == "AdamW" and plan.lr != 0.05
    assert f"optimizer=auto chose AdamW(lr={plan.lr}, momentum=0.9) and ignored lr0=0.05; pass optimizer=SGD (or " \
           "AdamW) to use lr0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="yolov12.engine.optim"):
        plan_optimiser(TrainConfig().optim, 16, 100, 80)  # lr0 not given: nothing to warn about
        plan_optimiser(TrainConfig.from_overrides(lr0=0.05, optimizer="SGD").optim, 16, 100, 80)
    assert not caplog.text
    assert "lr0" in TrainConfig.from_overrides(lr0=0.05).updated(epochs=3).optim.model_fields_set
