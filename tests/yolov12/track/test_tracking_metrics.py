"""The tracking metrics on sequences whose scores follow from their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from yolov12.track.metrics import evaluate_tracks

BOXES = np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])


def frames(ids_per_frame: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(BOXES, np.array(ids)) for ids in ids_per_frame]


def test_perfect_tracks_score_one_everywhere() -> None:
    truth = frames([[1, 2]] * 4)
    metrics = evaluate_tracks(truth, frames([[7, 9]] * 4))  # any id values: only their consistency counts
    assert (metrics.mota, metrics.idf1, metrics.hota, metrics.deta, metrics.assa) == (1.0, 1.0, 1.0, 1.0, 1.0)


def test_ids_swapped_halfway_keep_detection_and_cost_association() -> None:
    """Each match (true object 1 with track 1, say) holds 2 of the 4 frames of both: its association score is
    2 / (2 + 2 missed + 2 extra) = 1/3, and HOTA = sqrt(DetA x AssA) = sqrt(1/3)."""
    metrics = evaluate_tracks(frames([[1, 2]] * 4), frames([[1, 2], [1, 2], [2, 1], [2, 1]]))
    assert metrics.deta == pytest.approx(1.0) and metrics.id_switches == 2
    assert metrics.assa == pytest.approx(1 / 3) and metrics.hota == pytest.approx(np.sqrt(1 / 3))


def test_frames_must_pair_up() -> None:
    with pytest.raises(ValueError, match="3 frames of truth but 2 frames of tracks"):
        evaluate_tracks(frames([[1, 2]] * 3), frames([[1, 2]] * 2))
