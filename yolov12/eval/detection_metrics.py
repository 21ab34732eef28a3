"""COCO detection metrics computed by pycocotools, from in-memory ground truth and predictions.

mAP50-95, mAP50, mAP75 and the per-class AP are pycocotools' numbers (101-point interpolated AP, greedy matching,
``maxDets`` detections per image and class). Precision and recall are read at the single confidence threshold that
maximises the F1 averaged over classes (IoU 0.5), on a 1000-point confidence grid, using pycocotools' own matches.
The size metrics (mAP50-95 and average recall of small, medium and large objects, and the overall average recall)
are read from ``COCOeval.stats``: the COCO size ranges are absolute areas in pixels of the original image (small
below 32², medium 32² to 96², large above). pycocotools reads them from each annotation's ``area``: the box area,
or the optional ``areas`` given with the boxes, for boxes in another resolution (a letterboxed network input);
IoU, hence every other metric, uses the boxes only.

Inputs are per image, boxes in xyxy pixels of the original image (or ``areas`` in them):
    ground truth: ``{"boxes": (G, 4), "classes": (G,)}``, optionally ``"areas": (G,)``
    predictions:  ``{"boxes": (K, 4), "scores": (K,), "classes": (K,)}``, optionally ``"areas": (K,)``
Arrays may be numpy arrays, torch tensors or lists. Class indices are 0-based; the COCO category id of class ``c``
is ``category_ids[c]`` (default ``c + 1``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov12.eval.metric_names import (
    AR50_95,
    AR50_95_LARGE,
    AR50_95_MEDIUM,
    AR50_95_SMALL,
    MAP50,
    MAP50_95,
    MAP50_95_LARGE,
    MAP50_95_MEDIUM,
    MAP50_95_SMALL,
    MAP75,
    PRECISION,
    RECALL,
)
from yolov12.utils.boxes import box_area, xyxy_to_xywh

logger = logging.getLogger(__name__)

__all__ = ["COCOEvaluator", "DetectionMetrics", "evaluate_detections"]

CONFIDENCE_GRID = np.linspace(0.0, 1.0, 1000)


@dataclass
class DetectionMetrics:
    """Detection metrics (all in [0, 1]).

    Attributes:
        map50_95, map50, map75: COCO mAP over classes with ground truth.
        map50_95_small, map50_95_medium, map50_95_large: COCO mAP50-95 of objects with an area below 32²,
            between 32² and 96², and above 96² pixels of the original image; -1 when no ground-truth box falls in
            the range (as pycocotools reports it).
        average_recall: COCO average recall (IoU 0.5:0.95, at most ``max_detections`` per image; AR@100 by default).
        average_recall_small, average_recall_medium, average_recall_large: the same per size range; -1 as above.
        precision, recall: mean over classes at ``f1_confidence`` (IoU 0.5).
        f1_confidence: confidence threshold maximising the class-mean F1.
        ap_per_class: class index -> AP50-95, for classes with ground truth.
        ap50_per_class: class index -> AP50, for classes with ground truth.
        recall_thresholds: (101,) recall points of the PR curve.
        pr_curves: class index -> (101,) interpolated precision at IoU 0.5 (the PR curve).
    """

    map50_95: float = 0.0
    map50: float = 0.0
    map75: float = 0.0
    map50_95_small: float = -1.0
    map50_95_medium: float = -1.0
    map50_95_large: float = -1.0
    average_recall: float = -1.0
    average_recall_small: float = -1.0
    average_recall_medium: float = -1.0
    average_recall_large: float = -1.0
    precision: float = 0.0
    recall: float = 0.0
    f1_confidence: float = 0.0
    ap_per_class: dict[int, float] = field(default_factory=dict)
    ap50_per_class: dict[int, float] = field(default_factory=dict)
    recall_thresholds: np.ndarray = field(default_factory=lambda: np.linspace(0.0, 1.0, 101))
    pr_curves: dict[int, np.ndarray] = field(default_factory=dict)

    def results_dict(self) -> dict[str, float]:
        """Flat metrics with the column names users know from results.csv, then the COCO size metrics."""
        return {
            PRECISION.engine: self.precision, RECALL.engine: self.recall,
            MAP50.engine: self.map50, MAP75.engine: self.map75, MAP50_95.engine: self.map50_95,
            MAP50_95_SMALL.engine: self.map50_95_small, MAP50_95_MEDIUM.engine: self.map50_95_medium,
            MAP50_95_LARGE.engine: self.map50_95_large, AR50_95.engine: self.average_recall,
            AR50_95_SMALL.engine: self.average_recall_small, AR50_95_MEDIUM.engine: self.average_recall_medium,
            AR50_95_LARGE.engine: self.average_recall_large,
        }


def _as_numpy(values: Any, dtype: type, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    """Tensor / array / list -> numpy array of shape (-1, *shape_tail)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape(-1, *shape_tail)


def _areas(image_id: int | str, item: Mapping[str, Any], boxes: np.ndarray) -> np.ndarray:
    """The (n,) areas COCO's size ranges use: the item's ``areas`` (original-image pixels) or the box areas."""
    if item.get("areas") is None:
        return box_area(boxes)
    areas = _as_numpy(item["areas"], np.float64)
    if len(areas) != len(boxes):
        raise ValueError(f"image {image_id!r}: {len(boxes)} boxes but {len(areas)} areas; give one area per box")
    return areas


class COCOEvaluator:
    """Accumulates images, then evaluates them with pycocotools.

    Args:
        num_classes: number of classes (0-based class indices).
        category_ids: COCO category id per class index (default ``class + 1``); use the dataset's own ids to write
            predictions that score against its annotation file.
        names: optional class names (used as category names).
        max_detections: detections per image and class that count (COCO ``maxDets``, default 100).

    Example:
        >>> evaluator = COCOEvaluator(num_classes=1)
        >>> evaluator.update([{"boxes": [[0, 0, 10, 10]], "scores": [0.9], "classes": [0]}],
        ...                  [{"boxes": [[0, 0, 10, 10]], "classes": [0]}])
        >>> round(evaluator.compute().map50_95, 6)
        1.0
    """

    def __init__(
        self,
        num_classes: int,
        category_ids: Sequence[int] | None = None,
        names: Mapping[int, str] | Sequence[str] | None = None,
        max_detections: int = 100,
    ) -> None:
        if category_ids is not None and len(category_ids) != num_classes:
            raise ValueError(f"{len(category_ids)} category ids given for {num_classes} classes")
        self.num_classes = num_classes
        default_ids = range(1, num_classes + 1)
        self.category_ids = [int(c) for c in (category_ids if category_ids is not None else default_ids)]
        names = dict(enumerate(names)) if isinstance(names, Sequence) else dict(names or {})
        self.names = {c: str(names.get(c, f"class{c}")) for c in range(num_classes)}
        self.max_detections = max_detections
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated images."""
        self.image_ids: list[int | str] = []
        self._seen: set[int | str] = set()
        self._gt_annotations: list[dict] = []
        self._dt_annotations: list[dict] = []

    def update(
        self,
        predictions: Sequence[Mapping[str, Any]],
        ground_truths: Sequence[Mapping[str, Any]],
        image_ids: Sequence[int | str] | None = None,
    ) -> None:
        """Add images: one prediction and one ground-truth mapping per image (see the module docstring).

        ``image_ids`` (all int or all str) default to a running index; pass the dataset's ids for ``save_json``.
        """
        if len(predictions) != len(ground_truths):
            raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground-truth images")
        if image_ids is None:
            image_ids = range(len(self.image_ids), len(self.image_ids) + len(predictions))
        elif len(image_ids) != len(predictions):
            raise ValueError(f"{len(image_ids)} image ids for {len(predictions)} images")
        for image_id, prediction, truth in zip(image_ids, predictions, ground_truths):
            if image_id in self._seen:
                raise ValueError(f"image id {image_id!r} was added twice; image ids must be unique")
            self._seen.add(image_id)
            self.image_ids.append(image_id)
            self._gt_annotations += self._annotations(image_id, truth, scores=None)
            self._dt_annotations += self._annotations(image_id, prediction, scores=prediction.get("scores"))

    def _annotations(self, image_id: int | str, item: Mapping[str, Any], scores: Any | None) -> list[dict]:
        boxes = _as_numpy(item.get("boxes", []), np.float64, (4,))
        classes = _as_numpy(item.get("classes", []), np.int64)
        if len(boxes) != len(classes):
            raise ValueError(f"image {image_id!r}: {len(boxes)} boxes but {len(classes)} classes")
        if len(classes) and (classes.min() < 0 or classes.max() >= self.num_classes):
            raise ValueError(f"image {image_id!r}: class indices must lie in [0, {self.num_classes}), got {classes}")
        xywh, areas = xyxy_to_xywh(boxes), _areas(image_id, item, boxes)
        score_values = _as_numpy(scores, np.float64) if scores is not None else None
        rows = []
        for i in range(len(boxes)):
            row = {"image_id": image_id, "category_id": self.category_ids[classes[i]],
                   "bbox": [float(v) for v in xywh[i]], "area": float(areas[i]), "iscrowd": 0}
            if score_values is not None:
                row["score"] = float(score_values[i])
            rows.append(row)
        return rows

    def _coco(self, annotations: list[dict]) -> COCO:
        coco = COCO()
        coco.dataset = {
            "images": [{"id": image_id} for image_id in self.image_ids],
            "categories": [{"id": cid, "name": self.names[c]} for c, cid in enumerate(self.category_ids)],
            "annotations": [{**row, "id": i + 1} for i, row in enumerate(annotations)],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    def run_cocoeval(self) -> COCOeval:
        """Run pycocotools' ``evaluate`` and ``accumulate`` (its prints are swallowed); returns the ``COCOeval``."""
        coco_eval = COCOeval(self._coco(self._gt_annotations), self._coco(self._dt_annotations), "bbox")
        coco_eval.params.maxDets = [1, 10, self.max_detections]
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval.evaluate()
            coco_eval.accumulate()
        return coco_eval

    def compute(self) -> DetectionMetrics:
        """Metrics of all accumulated images (zeros when there is no ground truth at all)."""
        if not self._gt_annotations:
            logger.warning("no ground-truth boxes in %d images: detection metrics are 0", len(self.image_ids))
            return DetectionMetrics()
        coco_eval = self.run_cocoeval()
        metrics = _summarise(coco_eval, {cid: c for c, cid in enumerate(self.category_ids)})
        _add_size_metrics(metrics, coco_eval)
        f1_confidence, precision, recall = _f1_operating_point(coco_eval)
        metrics.f1_confidence, metrics.precision, metrics.recall = f1_confidence, precision, recall
        logger.info("mAP50-95 %.4f, mAP50 %.4f, P %.4f, R %.4f over %d images", metrics.map50_95, metrics.map50,
                    precision, recall, len(self.image_ids))
        return metrics

    def predictions_json(self) -> list[dict]:
        """COCO results format: ``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``."""
        return [
            {"image_id": row["image_id"], "category_id": row["category_id"],
             "bbox": [round(v, 3) for v in row["bbox"]], "score": round(row["score"], 5)}
            for row in self._dt_annotations
        ]

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`predictions_json` to ``path`` (parents created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.predictions_json()))
        logger.info("saved %d COCO-format predictions to %s", len(self._dt_annotations), path)
        return path


def _summarise(coco_eval: COCOeval, category_to_class: dict[int, int]) -> DetectionMetrics:
    """mAPs, per-class APs and PR curves from ``coco_eval.eval["precision"]`` (T, R, K, areas, maxDets).

    ``category_to_class`` maps COCO category ids to class indices (pycocotools sorts the category ids).
    """
    precision = coco_eval.eval["precision"][:, :, :, 0, -1]  # area "all", largest maxDets -> (T, R, K)
    iou_thresholds = coco_eval.params.iouThrs
    t50, t75 = (int(np.argmin(np.abs(iou_thresholds - t))) for t in (0.5, 0.75))

    def mean_valid(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else 0.0

    metrics = DetectionMetrics(
        map50_95=mean_valid(precision), map50=mean_valid(precision[t50]), map75=mean_valid(precision[t75]),
        recall_thresholds=np.asarray(coco_eval.params.recThrs),
    )
    for k, category_id in enumerate(coco_eval.params.catIds):
        if (precision[:, :, k] > -1).any():
            c = category_to_class[category_id]
            metrics.ap_per_class[c] = mean_valid(precision[:, :, k])
            metrics.ap50_per_class[c] = mean_valid(precision[t50, :, k])
            metrics.pr_curves[c] = np.clip(precision[t50, :, k], 0.0, None)
    for name in ("ap_per_class", "ap50_per_class", "pr_curves"):
        setattr(metrics, name, dict(sorted(getattr(metrics, name).items())))
    return metrics


def _add_size_metrics(metrics: DetectionMetrics, coco_eval: COCOeval) -> None:
    """Copy the size and average-recall entries of ``COCOeval.stats`` into ``metrics`` (its prints swallowed).

    ``stats`` (12,): 0-2 AP, AP50, AP75; 3-5 AP small, medium, large; 6-8 AR at maxDets[0], [1], [2]; 9-11 AR small,
    medium, large. All but entry 0 use the largest ``maxDets`` (``max_detections``); -1 marks an empty size range.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.summarize()
    stats = [float(v) for v in coco_eval.stats]
    metrics.map50_95_small, metrics.map50_95_medium, metrics.map50_95_large = stats[3:6]
    metrics.average_recall = stats[8]
    metrics.average_recall_small, metrics.average_recall_medium, metrics.average_recall_large = stats[9:12]


def _class_matches(coco_eval: COCOeval, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores, true-positive flags (IoU 0.5) of the counted detections of category index ``k``, and #GT."""
    images = len(coco_eval.params.imgIds)
    areas = len(coco_eval.params.areaRng)
    records = [e for e in coco_eval.evalImgs[k * areas * images:(k * areas + 1) * images] if e is not None]
    if not records:
        return np.zeros(0), np.zeros(0, dtype=bool), 0
    scores = np.concatenate([e["dtScores"] for e in records])
    matched = np.concatenate([e["dtMatches"][0] > 0 for e in records])
    ignored = np.concatenate([e["dtIgnore"][0].astype(bool) for e in records])
    num_gt = int(sum(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0) for e in records))
    return scores[~ignored], matched[~ignored], num_gt


def _f1_operating_point(coco_eval: COCOeval) -> tuple[float, float, float]:
    """(confidence, precision, recall) at the grid confidence maximising the class-mean F1 at IoU 0.5.

    Classes without ground truth are left out; ties go to the lowest confidence.
    """
    precisions, recalls = [], []
    for k in range(len(coco_eval.params.catIds)):
        scores, true_positive, num_gt = _class_matches(coco_eval, k)
        if num_gt == 0:
            continue
        order = np.argsort(-scores, kind="stable")
        cumulative_tp = np.concatenate([[0], np.cumsum(true_positive[order])])
        kept = np.searchsorted(-scores[order], -CONFIDENCE_GRID, side="right")  # detections with score >= c
        tp = cumulative_tp[kept]
        # above its highest score a class's precision is 1 (as at the start of a PR curve); without any detection, 0
        precisions.append(np.where(kept > 0, tp / np.maximum(kept, 1), 1.0 if len(scores) else 0.0))
        recalls.append(tp / num_gt)
    if not precisions:
        return 0.0, 0.0, 0.0
    precision, recall = np.stack(precisions), np.stack(recalls)  # (classes, grid)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-16)
    best = int(f1.mean(0).argmax())
    return float(CONFIDENCE_GRID[best]), float(precision[:, best].mean()), float(recall[:, best].mean())


def evaluate_detections(
    predictions: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    num_classes: int,
    category_ids: Sequence[int] | None = None,
    image_ids: Sequence[int | str] | None = None,
    max_detections: int = 100,
    save_json: str | Path | None = None,
) -> DetectionMetrics:
    """One-shot :class:`COCOEvaluator`: metrics of these images; optionally writes COCO-format predictions.

    Example:
        >>> truth = [{"boxes": [[0, 0, 100, 100]], "classes": [0]}]
        >>> shifted = [{"boxes": [[10, 0, 110, 100]], "scores": [0.9], "classes": [0]}]  # IoU 0.818
        >>> round(evaluate_detections(shifted, truth, num_classes=1).map50_95, 3)
        0.7
    """
    evaluator = COCOEvaluator(num_classes, category_ids=category_ids, max_detections=max_detections)
    evaluator.update(predictions, ground_truths, image_ids=image_ids)
    if save_json is not None:
        evaluator.save_json(save_json)
    return evaluator.compute()
