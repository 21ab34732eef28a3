"""End-to-end training on the offline sample datasets: exact resume, learning, corrupt data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from yolov12 import YOLO
from yolov12.engine.callbacks import Callback

TINY = dict(data="sample", imgsz=64, batch=8, fraction=0.25, workers=0, val=False, verbose=False, seed=3,
            warmup_epochs=1, close_mosaic=1, optimizer="SGD", lr0=0.01, amp=False)


class CrashAfterEpoch(Callback):
    """Simulates a node failure right after the checkpoint of epoch ``epoch`` was written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_checkpoint(self, state, paths) -> None:
        if state.epoch + 1 == self.epoch:
            raise KeyboardInterrupt("simulated crash")


@pytest.mark.slow
def _seeded_model() -> YOLO:
    torch.manual_seed(0)  # same initial weights for both runs
    return YOLO("yolov12n.yaml")


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    _seeded_model().train(epochs=4, project=str(tmp_path), name="straight", **TINY)
    with pytest.raises(KeyboardInterrupt):
        _seeded_model().train(epochs=4, project=str(tmp_path), name="resumed", callbacks=[CrashAfterEpoch(2)],
                                    **TINY)
    YOLO("yolov12n.yaml").train(epochs=4, project=str(tmp_path), name="resumed", resume=True, **TINY)
    straight = load_file(tmp_path / "straight/weights/last.safetensors")
    resumed = load_file(tmp_path / "resumed/weights/last.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    rows = (tmp_path / "resumed/results.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]


@pytest.mark.slow
def test_classifier_learns_the_digits(tmp_path: Path) -> None:
    torch.manual_seed(0)  # unseeded, one initialisation in several stopped at 0.43
    model = YOLO("yolov12n-cls.yaml")
    before = model.val(data="sample-cls", imgsz=32, batch=64)["metrics/accuracy_top1"]
    # Enough iterations (2 x 90) for BatchNorm running statistics (momentum 0.03) to settle before eval mode.
    metrics = model.train(data="sample-cls", epochs=2, imgsz=32, batch=16, workers=0, project=str(tmp_path),
                          verbose=False, optimizer="AdamW", lr0=0.002, warmup_epochs=0, amp=False, seed=0)
    assert metrics["metrics/accuracy_top1"] > max(0.5, before + 0.3), (before, metrics)
    assert (model.trainer_result.run_dir / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.slow
def test_detector_learns_the_sample_scenes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = YOLO("yolov12n.yaml")
    settings = dict(imgsz=160, batch=16, workers=0)
    before = model.val(data="sample", **settings)["metrics/mAP50(B)"]
    # nbs=16: one optimiser step per batch (nbs 64 would merge 4 of the 6 batches an epoch into one step).
    metrics = model.train(data="sample", epochs=20, nbs=16, project=str(tmp_path), verbose=False, optimizer="AdamW",
                          lr0=0.004, warmup_epochs=1, close_mosaic=5, seed=0, amp=False, plots=False, **settings)
    # mAP50 is 0.0 untrained; it rises from about epoch 13 on this tiny set (measured: 0.36 after 25 epochs).
    assert metrics["metrics/mAP50(B)"] > before + 0.02, (before, metrics)
    assert metrics["train/box_loss"] < 3.0


def test_a_run_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    for _ in range(2):
        YOLO("yolov12n.yaml").train(epochs=2, project=str(tmp_path), name="exp", save_period=2, **TINY)
    assert sorted(p.name for p in (tmp_path / "exp/weights").glob("epoch*")) == ["epoch2.safetensors"]
    assert (tmp_path / "exp/weights/last.safetensors").is_file()
    assert (tmp_path / "exp2/weights/last.safetensors").is_file()
    for plot in ("results.png", "train_batch.png"):
        assert (tmp_path / "exp2" / plot).stat().st_size > 1000


def test_a_validated_run_writes_the_validation_plots(tmp_path: Path) -> None:
    result = YOLO("yolov12n.yaml").train(epochs=1, project=str(tmp_path), name="exp", **{**TINY, "val": True})
    assert "metrics/mAP50-95(B)" in result
    for plot in ("results.png", "train_batch.png", "val_predictions.png", "PR_curve.png", "confusion_matrix.png"):
        assert (tmp_path / "exp" / plot).stat().st_size > 1000


def test_corrupt_data_trains_and_is_counted(tmp_path: Path, caplog) -> None:
    from yolov12.data.dataset_config import load_dataset_config
    from yolov12.data.labels import load_labels
    from yolov12.data.sample_dataset import ensure_sample_detection

    source = Path(ensure_sample_detection()).parent
    root = tmp_path / "broken"
    shutil.copytree(source, root)
    data_yaml = root / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace(str(source), str(root)))
    images = sorted((root / "images/train").iterdir())
    images[0].write_bytes(b"not a jpeg at all")  # corrupt image
    images[1].write_bytes(images[1].read_bytes()[:200])  # truncated image
    label = root / "labels/train" / (images[2].stem + ".txt")
    label.write_text(label.read_text() + "3 0.5 0.5\n" + "77 0.5 0.5 0.1 0.1\n")  # malformed row, class out of range
    config = load_dataset_config(str(data_yaml))
    _, report = load_labels(config, "train", use_cache=False)
    assert report.corrupt_images == 2
    assert report.malformed_rows == 1
    assert report.class_out_of_range == 1
    metrics = YOLO("yolov12n.yaml").train(**{**TINY, "data": str(data_yaml), "fraction": 1.0}, epochs=1,
                                          project=str(tmp_path / "runs"))
    assert np.isfinite(metrics["train/box_loss"])
