"""The detection confusion matrix: which class each ground-truth box was detected as, with a background class.

Rows are true classes, columns predicted classes; index ``num_classes`` is *background*. Per image, predictions
with a score below ``conf`` are dropped, then predictions and ground-truth boxes are matched one-to-one, greedily by
descending IoU, among pairs with IoU above ``iou`` (class-agnostic, so a box found with the wrong class lands
off the diagonal). A matched pair counts at ``[true, predicted]``; an unmatched ground-truth box at
``[true, background]`` (missed); an unmatched prediction at ``[background, predicted]`` (false alarm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from yolov12.utils.boxes import box_iou

__all__ = ["DetectionConfusionMatrix"]


def _array(values: Any, dtype: type, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape((-1, *shape_tail))


class DetectionConfusionMatrix:
    """Accumulates images into a ``(num_classes + 1, num_classes + 1)`` count matrix.

    Example:
        >>> matrix = DetectionConfusionMatrix(num_classes=2)
        >>> matrix.update([{"boxes": [[0, 0, 10, 10]], "scores": [0.9], "classes": [1]}],
        ...               [{"boxes": [[0, 0, 10, 10]], "classes": [0]}])
        >>> matrix.matrix[0, 1]
        1
    """

    def __init__(self, num_classes: int, conf: float = 0.25, iou: float = 0.45) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.conf = conf
        self.iou = iou
        self.matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)

    @property
    def background(self) -> int:
        return self.num_classes

    def update(self, predictions: Sequence[Mapping[str, Any]], ground_truths: Sequence[Mapping[str, Any]]) -> None:
        """Add images: per image ``{"boxes", "scores", "classes"}`` predictions and ``{"boxes", "classes"}`` truth."""
        if len(predictions) != len(ground_truths):
            raise ValueError(f"{len(predictions)} prediction entries for {len(ground_truths)} ground-truth entries")
        for predicted, truth in zip(predictions, ground_truths):
            self._update_image(predicted, truth)

    def _update_image(self, predicted: Mapping[str, Any], truth: Mapping[str, Any]) -> None:
        scores = _array(predicted["scores"], np.float64)
        keep = scores >= self.conf
        boxes = _array(predicted["boxes"], np.float64, (4,))[keep]
        classes = _array(predicted["classes"], np.int64)[keep]
        true_boxes = _array(truth["boxes"], np.float64, (4,))
        true_classes = _array(truth["classes"], np.int64)
        matched_truth = np.zeros(len(true_boxes), dtype=bool)
        matched_prediction = np.zeros(len(boxes), dtype=bool)
        if len(boxes) and len(true_boxes):
            overlaps = box_iou(true_boxes, boxes)
            rows, columns = np.nonzero(overlaps > self.iou)
            for index in np.argsort(-overlaps[rows, columns], kind="stable"):
                t, p = rows[index], columns[index]
                if matched_truth[t] or matched_prediction[p]:
                    continue
                matched_truth[t] = matched_prediction[p] = True
                self.matrix[true_classes[t], classes[p]] += 1
        np.add.at(self.matrix, (true_classes[~matched_truth], self.background), 1)
        np.add.at(self.matrix, (self.background, classes[~matched_prediction]), 1)

    def labels(self, names: Mapping[int, str] | None = None) -> list[str]:
        """Axis labels: the class names, then ``background``."""
        names = names or {}
        return [str(names.get(c, c)) for c in range(self.num_classes)] + ["background"]
