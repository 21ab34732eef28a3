"""Plots written to the run folder at the end of training (rank 0).

Always ``results.png`` (loss/metric curves). Detection: ``train_batch.png`` (a labelled augmented batch),
``val_predictions.png``, ``PR_curve.png`` and ``confusion_matrix.png`` (final EMA model on the validation set).
Classification: ``confusion_matrix.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from yolov12.engine.evaluate import classification_metrics, iter_detection_batches
from yolov12.eval.detection_confusion import DetectionConfusionMatrix
from yolov12.eval.detection_metrics import COCOEvaluator
from yolov12.eval.plots import (
    plot_confusion_matrix,
    plot_pr_curve,
    plot_predictions,
    plot_results,
    plot_training_batch,
)
from yolov12.tasks import TASKS

logger = logging.getLogger(__name__)


def write_detection_validation_plots(run_dir: Path, model: torch.nn.Module, val_loader: Iterable[dict],
                                     names: dict[int, str], device: torch.device) -> list[Path]:
    """One validation pass feeding pycocotools (PR curves) and the confusion matrix; the first batch is drawn."""
    evaluator = COCOEvaluator(len(names), names=names)
    confusion = DetectionConfusionMatrix(len(names))
    written = []
    for index, (predictions, ground_truth, image_ids) in enumerate(iter_detection_batches(model, val_loader, device)):
        evaluator.update(predictions, ground_truth, image_ids=image_ids)
        confusion.update(predictions, ground_truth)
        if index == 0:
            shown = [{k: v[p["scores"] >= 0.25] for k, v in p.items()} for p in predictions]
            images = next(iter(val_loader))["images"]
            written.append(plot_predictions(images, shown, run_dir / "val_predictions.png", names=names))
    metrics = evaluator.compute()
    labels = dict(enumerate(confusion.labels(names)))
    written.append(plot_pr_curve(metrics.recall_thresholds, metrics.pr_curves, run_dir / "PR_curve.png", names))
    written.append(plot_confusion_matrix(confusion.matrix, run_dir / "confusion_matrix.png", labels))
    return written


def write_classification_validation_plots(run_dir: Path, model: torch.nn.Module, val_loader: Iterable[dict],
                                          names: dict[int, str], device: torch.device) -> list[Path]:
    """The top-1 confusion matrix of the final model on the validation set."""
    metrics = classification_metrics(model, val_loader, len(names), device)
    return [plot_confusion_matrix(metrics.confusion, run_dir / "confusion_matrix.png", names)]


def write_run_plots(run_dir: Path, model: torch.nn.Module, train_loader: Any, val_loader: Any | None,
                    names: dict[int, str], device: torch.device) -> list[Path]:
    """Write the run's plots (see the module docstring); returns the written paths."""
    written = []
    if (run_dir / "results.csv").is_file():
        written.append(plot_results(run_dir / "results.csv", run_dir / "results.png"))
    spec = TASKS.get(getattr(model, "task", ""))
    if spec is not None and spec.predicts_boxes:
        written.append(plot_training_batch(next(iter(train_loader)), run_dir / "train_batch.png", names=names))
    if val_loader is not None and spec is not None:
        written.extend(spec.validation_plots(run_dir, model, val_loader, names, device))
    logger.info("plots written to %s", run_dir)
    return written
