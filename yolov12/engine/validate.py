"""``validate``: the ``model.val(...)`` / ``yolov12 val`` entry point."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.evaluate import evaluate
from yolov12.engine.run_dir import new_run_dir
from yolov12.infer.device import select_device
from yolov12.tasks import task_spec

logger = logging.getLogger(__name__)


def validate(model: Any, data: Any, imgsz: int | None = None, batch: int = 32, workers: int = 0,
             device: str = "cpu", split: str = "val", save_json: bool = False, project: str = "runs/val",
             name: str = "exp") -> dict[str, float]:
    """Metrics of ``model`` on a split of ``data``; ``save_json`` writes ``predictions.json`` to the run folder."""
    spec = task_spec(model.task)
    imgsz = imgsz or spec.default_image_size
    torch_device = select_device(device)
    model = model.to(torch_device)
    loader = build_val_loader(data, model.task, imgsz, batch, workers, split=split)
    json_path = None
    if save_json:
        if not spec.predicts_boxes:
            raise ValueError("save_json writes COCO detections; it applies to detection models only")
        json_path = new_run_dir(project, name) / "predictions.json"
    metrics = evaluate(model, loader, model.names, torch_device, save_json=json_path)
    logger.info("val %s: %s", split, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    if json_path is not None:
        logger.info("COCO-format predictions written to %s", Path(json_path))
    return metrics
