"""Plots write non-empty PNGs without selecting a global matplotlib backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from yolov12.eval import evaluate_detections
from yolov12.eval.plots import (
    plot_confusion_matrix,
    plot_image_grid,
    plot_pr_curve,
    plot_predictions,
    plot_results,
    plot_training_batch,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_pr_curve_from_metrics(tmp_path: Path) -> None:
    truth = [{"boxes": [[0, 0, 50, 50], [100, 100, 150, 150]], "classes": [0, 1]}]
    prediction = [{"boxes": [[0, 0, 50, 50], [105, 100, 155, 150]], "scores": [0.9, 0.6], "classes": [0, 1]}]
    metrics = evaluate_detections(prediction, truth, num_classes=2)
    path = plot_pr_curve(metrics.recall_thresholds, metrics.pr_curves, tmp_path / "plots" / "PR_curve.png",
                         names={0: "cat", 1: "dog"})
    assert_png(path)


def test_confusion_matrix_plot(tmp_path: Path) -> None:
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    assert_png(plot_confusion_matrix(matrix, tmp_path / "confusion_matrix_normalized.png", names=["a", "b", "c"]))
    assert_png(plot_confusion_matrix(matrix, tmp_path / "confusion_matrix.png", normalise=False))


def test_results_curves_from_csv(tmp_path: Path) -> None:
    csv_path = tmp_path / "results.csv"
    csv_path.write_text(
        "                  epoch,     train/box_loss,   metrics/mAP50(B),  note\n"
        "1, 2.5, 0.10, warmup\n2, 2.1, 0.25, x\n3, 1.9, 0.31, y\n"
    )
    assert_png(plot_results(csv_path, tmp_path / "results.png"))


def test_training_batch_and_prediction_grids(tmp_path: Path) -> None:
    images = torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8)
    batch = {"images": images, "batch_index": torch.tensor([0, 0, 2]), "classes": torch.tensor([0, 1, 1]),
             "boxes": torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2], [0.7, 0.7, 0.3, 0.3]])}
    assert_png(plot_training_batch(batch, tmp_path / "train_batch0.png", names={0: "cat", 1: "dog"}))
    predictions = [{"boxes": torch.tensor([[10.0, 10.0, 40.0, 40.0]]), "scores": torch.tensor([0.8]),
                    "classes": torch.tensor([1])}] * 3
    assert_png(plot_predictions(images, predictions, tmp_path / "val_batch0_pred.png"))
    floats = images.float() / 255
    assert_png(plot_image_grid(floats, [np.zeros((0, 4))] * 3, [np.zeros(0)] * 3, tmp_path / "empty.png", bgr=True))


def test_plotting_leaves_the_global_backend_alone(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from yolov12.eval.plots import plot_confusion_matrix\n"
        f"plot_confusion_matrix(np.eye(2), {str(tmp_path / 'm.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "m.png")
