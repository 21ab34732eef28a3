"""IoU costs, the cost-limited assignment and the Kalman filters the trackers are built on."""

from __future__ import annotations

import numpy as np
import pytest

from yolov12.track.kalman import KalmanFilter, measurement_to_xyxy, xyxy_to_measurement
from yolov12.track.matching import assign, box_iou_xyxy, iou_cost


def test_box_iou() -> None:
    first = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
    second = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert box_iou_xyxy(first, second) == pytest.approx(np.array([[50 / 150, 0.0], [0.0, 0.0]]))
    assert iou_cost(first[:1], second[:1], np.array([0.5])) == pytest.approx(1 - 0.5 * 50 / 150)


def test_assign_leaves_pairs_over_the_limit_unmatched() -> None:
    cost = np.array([[0.1, 0.9], [0.95, 0.99], [0.2, 0.3]])
    matches, rows, cols = assign(cost, limit=0.8)
    assert sorted(matches) == [(0, 0), (2, 1)] and rows == [1] and cols == []


def test_assign_prefers_cheap_matches_over_more_matches() -> None:
    """The cost-limit rule of lap.lapjv: two matches at 0.7 (1.4) lose to one at 0.1 plus two unmatched (0.1 + 0.8)."""
    cost = np.array([[0.1, 0.7], [0.7, 0.99]])
    matches, rows, cols = assign(cost, limit=0.8)
    assert matches == [(0, 0)] and rows == [1] and cols == [1]


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_assign_with_nothing_on_one_side(shape) -> None:
    matches, rows, cols = assign(np.zeros(shape), 0.5)
    assert matches == [] and rows == list(range(shape[0])) and cols == list(range(shape[1]))


@pytest.mark.parametrize("space", ["xyah", "xywh"])
def test_measurement_round_trip(space) -> None:
    boxes = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 4.0, 2.0]])
    assert measurement_to_xyxy(xyxy_to_measurement(boxes, space), space) == pytest.approx(boxes)


@pytest.mark.parametrize("space", ["xyah", "xywh"])
def test_kalman_learns_a_constant_velocity(space) -> None:
    kalman = KalmanFilter(space)
    box = np.array([[100.0, 100.0, 140.0, 180.0]])
    mean, covariance = kalman.initiate(xyxy_to_measurement(box, space))
    for step in range(1, 15):
        mean, covariance = kalman.predict(mean, covariance)
        mean, covariance = kalman.update(mean, covariance, xyxy_to_measurement(box + [5 * step, -3 * step] * 2, space))
    predicted, _ = kalman.predict(mean, covariance)
    assert predicted[0, :2] == pytest.approx([120 + 5 * 15, 140 - 3 * 15], abs=1.0)
    assert predicted[0, 4:6] == pytest.approx([5.0, -3.0], abs=0.3)
