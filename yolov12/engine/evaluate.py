"""``evaluate``: metrics of a model on a validation loader (the EMA model during training, any model in ``val``).

Each task's evaluate (see :mod:`yolov12.tasks`) takes the same keywords: ``conf``, ``iou``, ``max_det`` (detection
post-processing; classifiers ignore them), ``save_json`` (a predictions file), ``plots_dir`` (where to draw the
confusion matrix and, for detection, the PR curve) and ``verbose`` (log each class's metrics too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from yolov12.eval.classification_metrics import ClassificationEvaluator, ClassificationMetrics
from yolov12.eval.detection_confusion import DetectionConfusionMatrix
from yolov12.eval.detection_metrics import COCOEvaluator, DetectionMetrics
from yolov12.eval.metric_names import ACCURACY_TOP1, MAP50, MAP50_95
from yolov12.infer.nms import non_max_suppression
from yolov12.tasks import task_spec
from yolov12.utils.boxes import box_area, cxcywh_to_xyxy

logger = logging.getLogger(__name__)

MAP_KEY, MAP50_KEY, TOP1_KEY = MAP50_95.engine, MAP50.engine, ACCURACY_TOP1.engine  # results.csv columns
CONFUSION_MIN_CONF = 0.25  # the detection confusion matrix leaves out the low-confidence tail that only the mAP needs
TOP_K = 5  # classes per image in a classifier's predictions file


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


def _with_original_areas(items: list[dict], ratios: torch.Tensor | None) -> list[dict]:
    """``items`` (per image, xyxy boxes of the network input), each with the ``areas`` of its boxes in pixels of
    its original image, which COCO's size ranges are defined on.

    ``ratios``: the batch's (B, 2) (width, height) scales from each image file to the network input; without them
    (batches of pipelines that do not letterbox) the items are returned as they are.
    """
    if ratios is None:
        return items
    scales = ratios.double().cpu().prod(dim=1)  # network-input pixels per original pixel
    return [{**item, "areas": box_area(item["boxes"].double()) / scale} for item, scale in zip(items, scales)]


@torch.no_grad()
def iter_detection_batches(model: torch.nn.Module, loader: Iterable[dict], device: torch.device, conf: float = 0.001,
                           iou: float = 0.7, max_det: int = 300) -> Iterator[tuple[list[dict], list[dict], list[str]]]:
    """Per batch: predictions and ground truth (xyxy pixels of the network input) and the image ids (paths).

    When the batch carries its letterbox geometry (``ratios``, see :func:`~yolov12.data.augment.collate_detection`),
    each prediction and ground-truth entry also has ``areas``: its boxes' areas in pixels of the original image.
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
            ratios = batch.get("ratios")
            yield (_with_original_areas(predictions, ratios),
                   _with_original_areas(_ground_truth(batch, images.shape[2:]), ratios),
                   [str(Path(p)) for p in batch["paths"]])
    finally:
        model.train(was_training)


def evaluate_detection(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str], device: torch.device,
                       conf: float = 0.001, iou: float = 0.7, max_det: int = 300, save_json: Path | None = None,
                       plots_dir: Path | None = None, verbose: bool = False) -> dict[str, float]:
    """COCO metrics (pycocotools) of ``model`` on ``loader``.

    Boxes are compared in pixels of the letterboxed network input (IoU, hence every IoU-based metric, is unchanged
    by the letterbox); the COCO size ranges of the size metrics (small < 32² < medium < 96² < large, absolute areas)
    apply to the boxes' areas in pixels of the original images, as in COCO, when the loader's batches carry their
    letterbox geometry (the validation loaders do); otherwise to areas in network-input pixels.

    Args:
        conf, iou, max_det: non-maximum suppression settings (confidence floor, IoU threshold, boxes per image).
        save_json: write the predictions in the COCO results format here.
        plots_dir: write ``PR_curve.png`` and ``confusion_matrix.png`` here (the matrix counts predictions with a
            score of at least ``max(conf, 0.25)``).
        verbose: log AP50 and AP50-95 of every class with ground truth.
    """
    evaluator = COCOEvaluator(len(names), names=names)
    confusion = DetectionConfusionMatrix(len(names), conf=max(conf, CONFUSION_MIN_CONF)) if plots_dir else None
    for predictions, ground_truth, image_ids in iter_detection_batches(model, loader, device, conf, iou, max_det):
        evaluator.update(predictions, ground_truth, image_ids=image_ids)
        if confusion is not None:
            confusion.update(predictions, ground_truth)
    if save_json is not None:
        evaluator.save_json(save_json)
    metrics = evaluator.compute()
    if verbose:
        _log_detection_classes(metrics, names)
    if confusion is not None:
        from yolov12.eval.plots import plot_confusion_matrix, plot_pr_curve  # noqa: PLC0415 - matplotlib on demand

        plot_pr_curve(metrics.recall_thresholds, metrics.pr_curves, Path(plots_dir) / "PR_curve.png", names)
        labels = dict(enumerate(confusion.labels(names)))
        plot_confusion_matrix(confusion.matrix, Path(plots_dir) / "confusion_matrix.png", labels)
    return metrics.results_dict()


def _log_detection_classes(metrics: DetectionMetrics, names: dict[int, str]) -> None:
    for c, ap in metrics.ap_per_class.items():
        logger.info("%20s  AP50 %.4f  AP50-95 %.4f", names.get(c, c), metrics.ap50_per_class[c], ap)


@torch.no_grad()
def iter_classification_batches(model: torch.nn.Module, loader: Iterable[dict], device: torch.device
                                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """Per batch: (B, C) class probabilities (float32, CPU), (B,) true classes and the image paths.

    The model is put in eval mode for the pass (its head then returns softmax probabilities) and its previous mode
    restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            scores = model(batch["images"].to(device).float() / 255.0).float().cpu()
            yield scores, batch["classes"].cpu(), [str(p) for p in batch["paths"]]
    finally:
        model.train(was_training)


def classification_metrics(model: torch.nn.Module, loader: Iterable[dict], num_classes: int,
                           device: torch.device) -> ClassificationMetrics:
    """Top-1 / top-5 accuracy and the confusion matrix of ``model`` on ``loader``."""
    evaluator = ClassificationEvaluator(num_classes)
    for scores, classes, _ in iter_classification_batches(model, loader, device):
        evaluator.update(scores, classes)
    return evaluator.compute()


def classification_records(scores: torch.Tensor, classes: torch.Tensor, paths: list[str],
                           names: dict[int, str]) -> list[dict]:
    """One predictions-file record per image: its path, true class and top-5 classes with their probabilities.

    Example:
        >>> records = classification_records(torch.tensor([[0.2, 0.8]]), torch.tensor([0]), ["a.png"],
        ...                                  {0: "cat", 1: "dog"})
        >>> records[0]["true_name"], records[0]["top5_names"], records[0]["top5_probabilities"]
        ('cat', ['dog', 'cat'], [0.8, 0.2])
    """
    top = scores.float().topk(min(TOP_K, scores.shape[1]), dim=1)
    records = []
    for path, true_class, values, indices in zip(paths, classes.tolist(), top.values.tolist(), top.indices.tolist()):
        records.append({
            "image": path, "true_class": int(true_class), "true_name": str(names.get(true_class, true_class)),
            "top5_classes": indices, "top5_names": [str(names.get(i, i)) for i in indices],
            "top5_probabilities": [round(v, 6) for v in values],
        })
    return records


def evaluate_classification(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str],
                            device: torch.device, conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
                            save_json: Path | None = None, plots_dir: Path | None = None,
                            verbose: bool = False) -> dict[str, float]:
    """Top-1 / top-5 accuracy of ``model`` on ``loader``.

    Args:
        conf, iou, max_det: detection settings, accepted so that every task's evaluate is called alike; unused.
        save_json: write a JSON list with one record per image here (see :func:`classification_records`).
        plots_dir: write ``confusion_matrix.png`` here.
        verbose: log the top-1 accuracy of every class.
    """
    del conf, iou, max_det
    evaluator = ClassificationEvaluator(len(names))
    records: list[dict] = []
    for scores, classes, paths in iter_classification_batches(model, loader, device):
        evaluator.update(scores, classes)
        if save_json is not None:
            records += classification_records(scores, classes, paths, names)
    metrics = evaluator.compute()
    if save_json is not None:
        Path(save_json).parent.mkdir(parents=True, exist_ok=True)
        Path(save_json).write_text(json.dumps(records))
        logger.info("saved %d image predictions to %s", len(records), save_json)
    if verbose:
        for c, row in enumerate(metrics.confusion):
            if row.sum():
                logger.info("%20s  top-1 %.4f over %d images", names.get(c, c), row[c] / row.sum(), row.sum())
    if plots_dir is not None:
        from yolov12.eval.plots import plot_confusion_matrix  # noqa: PLC0415 - matplotlib on demand

        plot_confusion_matrix(metrics.confusion, Path(plots_dir) / "confusion_matrix.png", names)
    return metrics.results_dict()


def evaluate(model: torch.nn.Module, loader: Iterable[dict], names: dict[int, str], device: torch.device,
             config: object = None, *, conf: float = 0.001, iou: float = 0.7, max_det: int = 300,
             save_json: Path | None = None, plots_dir: Path | None = None, verbose: bool = False) -> dict[str, float]:
    """Validation metrics for the model's task (see :mod:`yolov12.tasks`).

    The defaults of ``conf``, ``iou`` and ``max_det`` are the validation ones (a low confidence floor, so the whole
    precision-recall curve counts); ``config`` is accepted for the training loop's call and not read.
    """
    del config
    return task_spec(getattr(model, "task", "detect")).evaluate(
        model, loader, names, device, conf=conf, iou=iou, max_det=max_det, save_json=save_json, plots_dir=plots_dir,
        verbose=verbose)
