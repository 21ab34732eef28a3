"""Plots written to the run folder at the end of training (rank 0): curves, a labelled batch, predictions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from yolov12.eval.plots import plot_predictions, plot_results, plot_training_batch
from yolov12.infer.nms import non_max_suppression

logger = logging.getLogger(__name__)


@torch.no_grad()
def write_run_plots(run_dir: Path, model: torch.nn.Module, train_loader: Any, val_loader: Any | None,
                    names: dict[int, str], device: torch.device) -> list[Path]:
    """``results.png`` (loss/metric curves), ``train_batch.jpg`` and ``val_predictions.jpg`` (detection)."""
    written = []
    if (run_dir / "results.csv").is_file():
        written.append(plot_results(run_dir / "results.csv", run_dir / "results.png"))
    if getattr(model, "task", "") != "detect":
        return written
    written.append(plot_training_batch(next(iter(train_loader)), run_dir / "train_batch.png", names=names))
    if val_loader is not None:
        batch = next(iter(val_loader))
        was_training = model.training
        model.eval()
        detections = non_max_suppression(model(batch["images"].to(device).float() / 255.0), conf=0.25)
        model.train(was_training)
        predictions = [{"boxes": d[:, :4].cpu(), "scores": d[:, 4].cpu(), "classes": d[:, 5].long().cpu()}
                       for d in detections]
        written.append(plot_predictions(batch["images"], predictions, run_dir / "val_predictions.png", names=names))
    logger.info("plots written to %s", run_dir)
    return written
