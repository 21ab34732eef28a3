"""``evaluate``: metrics of a model on a validation loader (the EMA model during training, any model in ``val``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from yolov12.eval.classification_metrics import ClassificationEvaluator, ClassificationMetrics
from yolov12.eval.detection_metrics import COCOEvaluator
from yolov12.eval.metric_names import ACCURACY_TOP1, MAP50, MAP50_95
from yolov12.infer.nms import non_max_suppression
from yolov12.tasks import task_spec
from yolov12.utils.boxes import cxcywh_to_xyxy

MAP_KEY, MAP50_KEY, TOP1_KEY = MAP50_95.engine, MAP50.engine, ACCURACY_TOP1.engine  # results.csv columns


def fitness(metrics: dict[str, float], task: str) -> float:
    """The number checkpoints are ranked by: 0.1 mAP50 + 0.9 mAP50-95 (detection), top-1 (classification)."""
    return task_spec(task).fitness(metrics)


def detection_fitness(metrics: dict[str, float]) -> float:
    """0.1 mAP50 + 0.9 mAP50-95 (the Ultralytics rule)."""
    return 0.1 * metrics.get(MAP50_KEY, 0.0) + 0.9 * metrics.get(MAP_KEY, 0.0)


def classification_fitness(metrics: dict[str, float]) -> float:
    """Top-1 accuracy."""
    return metrics.get(TOP1_KEY, 0.0)


def _ground_truth(batch: dict, image_size: tuple[int, int]) -> list[dict]:
    """Per image xyxy pixel boxes of the (letterboxed) input; IoU, hence mAP, is unchanged by the letterbox."""
    height, width = image_size
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    boxes = cxcywh_to_xyxy(batch["boxes"].float().cpu() * scale)
    index, classes = batch["batch_index"].cpu(), batch["classes"].cpu()
    return [{"boxes": boxes[index == i], "classes": classes[index == i]} for i in range(len(batch["paths"]))]


@torch.no_grad()
def iter_detection_batches(model: torch.nn.Module, loader: Iterable[dict], device: torch.device, conf: float = 0.001,
                           iou: float = 0.7, max_det: int = 300) -> Iterator[tuple[list[dict], list[dict], list[str]]]:
    """Per batch: predictions and ground truth (xyxy pixels of the network input) and the image ids (paths).

    The model is put in eval mode for the pass and its previous mode restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            images = batch["images"].to(device).float() / 255.0
            detections = non_max_suppression(model(images), conf=conf, iou=iou, max_det=max_det)
            predictions = [{"boxes": d[:, :4].cpu(), "scores": d[:, 4].cpu(), "classes": d[:, 5].long().cpu()}
                           for d in detections]
            yield predictions, _ground_truth(batch, images.shape[2:]), [str(Path(p)) for p in batch["paths"]]
    finally:
        model.train(was_training)


def evaluate_detection(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str], device: torch.device,
                       conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
                       save_json: Path | None = None) -> dict[str, float]:
    """COCO metrics (pycocotools) of ``model`` on ``loader``; optionally writes COCO-format predictions."""
    evaluator = COCOEvaluator(len(names), names=names)
    for predictions, ground_truth, image_ids in iter_detection_batches(model, loader, device, conf, iou, max_det):
        evaluator.update(predictions, ground_truth, image_ids=image_ids)
    if save_json is not None:
        evaluator.save_json(save_json)
    return evaluator.compute().results_dict()


@torch.no_grad()
def classification_metrics(model: torch.nn.Module, loader: Iterable[dict], num_classes: int,
                           device: torch.device) -> ClassificationMetrics:
    """Top-1 / top-5 accuracy and the confusion matrix of ``model`` on ``loader``."""
    was_training = model.training
    model.eval()
    evaluator = ClassificationEvaluator(num_classes)
    try:
        for batch in loader:
            evaluator.update(model(batch["images"].to(device).float() / 255.0), batch["classes"])
    finally:
        model.train(was_training)
    return evaluator.compute()


def evaluate_classification(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str],
                            device: torch.device, save_json: Path | None = None) -> dict[str, float]:
    """Top-1 / top-5 accuracy of ``model`` on ``loader``.

    ``save_json`` is accepted so that every task's evaluate is called alike; classifiers write no predictions file.
    """
    del save_json
    return classification_metrics(model, loader, len(names), device).results_dict()


def evaluate(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str], device: torch.device,
             config=None, save_json: Path | None = None) -> dict[str, float]:
    """Validation metrics for the model's task (see :mod:`yolov12.tasks`)."""
    return task_spec(getattr(model, "task", "detect")).evaluate(model, loader, names, device, save_json=save_json)
