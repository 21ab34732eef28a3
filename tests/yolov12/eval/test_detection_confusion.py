from __future__ import annotations

import numpy as np
import pytest

from yolov12.eval.detection_confusion import DetectionConfusionMatrix


def prediction(boxes, scores, classes) -> dict:
    return {"boxes": np.asarray(boxes, float).reshape(-1, 4), "scores": np.asarray(scores, float),
            "classes": np.asarray(classes, int)}


def truth(boxes, classes) -> dict:
    return {"boxes": np.asarray(boxes, float).reshape(-1, 4), "classes": np.asarray(classes, int)}


def test_hits_confusions_misses_and_false_alarms_land_in_their_cells() -> None:
    matrix = DetectionConfusionMatrix(num_classes=3)
    matrix.update(
        [prediction([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [0, 0, 10, 10]],
                    [0.9, 0.8, 0.7, 0.1], [0, 2, 1, 1])],
        [truth([[0, 0, 10, 10], [21, 21, 30, 30], [80, 80, 90, 90]], [0, 1, 2])],
    )
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = 1  # hit
    expected[1, 2] = 1  # class-1 box found as class 2
    expected[2, 3] = 1  # class-2 box missed
    expected[3, 1] = 1  # false alarm (the 0.1-score prediction is below conf and ignored)
    np.testing.assert_array_equal(matrix.matrix, expected)


def test_matching_is_one_to_one_by_best_iou() -> None:
    matrix = DetectionConfusionMatrix(num_classes=1)
    matrix.update([prediction([[0, 0, 10, 10], [1, 1, 10, 10]], [0.5, 0.9], [0, 0])], [truth([[0, 0, 10, 10]], [0])])
    assert matrix.matrix[0, 0] == 1 and matrix.matrix[1, 0] == 1  # duplicate detection is a false alarm


def test_every_box_is_counted_exactly_once() -> None:
    rng = np.random.default_rng(0)
    matrix = DetectionConfusionMatrix(num_classes=4, conf=0.0)
    total_truth = total_predictions = 0
    for _ in range(20):
        n, m = rng.integers(0, 6, size=2)
        corners = rng.uniform(0, 50, size=(n + m, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(5, 30, size=(n + m, 2))], 1)
        matrix.update([prediction(boxes[:m], rng.uniform(size=m), rng.integers(0, 4, m))],
                      [truth(boxes[m:], rng.integers(0, 4, n))])
        total_truth, total_predictions = total_truth + n, total_predictions + m
    assert matrix.matrix[:4].sum() == total_truth
    assert matrix.matrix[:, :4].sum() == total_predictions
    assert matrix.matrix[4, 4] == 0


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="1 prediction entries for 2"):
        DetectionConfusionMatrix(2).update([prediction([], [], [])], [truth([], []), truth([], [])])
