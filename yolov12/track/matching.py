"""Association of tracks and detections: IoU costs and a linear assignment with a cost limit."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou_xyxy(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(N, 4) and (M, 4) corner boxes -> (N, M) intersection over union."""
    first, second = np.asarray(first, np.float64).reshape(-1, 4), np.asarray(second, np.float64).reshape(-1, 4)
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(2)
    area_first = (first[:, 2:] - first[:, :2]).clip(0).prod(1)
    area_second = (second[:, 2:] - second[:, :2]).clip(0).prod(1)
    union = area_first[:, None] + area_second[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def iou_cost(track_boxes: np.ndarray, detection_boxes: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """(N, M) cost ``1 - IoU``, or ``1 - IoU x score`` when detection ``scores`` (M,) are given (score fusion)."""
    similarity = box_iou_xyxy(track_boxes, detection_boxes)
    if scores is not None:
        similarity = similarity * np.asarray(scores, np.float64)[None, :]
    return 1.0 - similarity


def assign(cost: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost matching where no pair costs more than ``limit``: (matches, unmatched rows, unmatched columns).

    Leaving a row and a column unmatched costs ``limit`` (half each), so a pair above the limit is never chosen and
    the matching of the rest stays optimal: the cost-limited assignment of ``lap.lapjv(cost, cost_limit=limit)``,
    solved with SciPy on the (N + M) square matrix.
    """
    rows, cols = cost.shape
    valid = cost <= limit
    candidate_rows, candidate_cols = np.flatnonzero(valid.any(1)), np.flatnonzero(valid.any(0))
    matches: list[tuple[int, int]] = []
    if len(candidate_rows):  # rows and columns without a pair under the limit stay unmatched: solve the rest
        sub = cost[np.ix_(candidate_rows, candidate_cols)]
        matches = [(int(candidate_rows[r]), int(candidate_cols[c])) for r, c in _limited_assignment(sub, limit)]
    matched_rows, matched_cols = {r for r, _ in matches}, {c for _, c in matches}
    return (matches, [r for r in range(rows) if r not in matched_rows],
            [c for c in range(cols) if c not in matched_cols])


def _limited_assignment(cost: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """The pairs of :func:`assign` for a non-empty (N, M) ``cost``, from the (N + M) square extended problem."""
    rows, cols = cost.shape
    blocked = limit + 1.0  # costlier than leaving both sides unmatched
    extended = np.full((rows + cols, cols + rows), blocked)
    extended[:rows, :cols] = np.where(cost > limit, blocked, cost)
    extended[np.arange(rows), cols + np.arange(rows)] = limit / 2  # row left unmatched
    extended[rows + np.arange(cols), np.arange(cols)] = limit / 2  # column left unmatched
    extended[rows:, cols:] = 0.0
    row_index, col_index = linear_sum_assignment(extended)
    return [(int(r), int(c)) for r, c in zip(row_index, col_index) if r < rows and c < cols and cost[r, c] <= limit]
