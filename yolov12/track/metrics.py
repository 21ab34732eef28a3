"""Tracking quality against ground truth: CLEAR MOT and identity metrics (MOTA, IDF1, id switches) with
``motmetrics``, and HOTA (with its detection and association parts, DetA and AssA) with ``trackeval``.

Both (MIT) are needed for these metrics only; the trackers use neither. ``motmetrics`` 1.4.0 calls ``np.asfarray``
(removed in NumPy 2) in its IoU helper, so the IoU distances are computed here; it has no HOTA, which is why
``trackeval`` (the MOTChallenge reference code) is used for that.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from yolov12.track.matching import box_iou_xyxy

MATCH_IOU = 0.5  # a track box matches a true box when their IoU is at least this (the MOTChallenge rule)


@dataclass(frozen=True)
class TrackingMetrics:
    """MOTA (1 - (misses + false positives + id switches) / true boxes), IDF1 (F1 of identity-consistent matches),
    id switches, precision, recall, the number of frames, and HOTA (the geometric mean of detection accuracy DetA
    and association accuracy AssA, averaged over IoU thresholds 0.05-0.95)."""

    mota: float
    idf1: float
    id_switches: int
    precision: float
    recall: float
    frames: int
    hota: float
    deta: float
    assa: float


FrameBoxes = tuple[np.ndarray, np.ndarray]  # (n, 4) xyxy boxes and (n,) ids


def evaluate_tracks(truth: Iterable[FrameBoxes], tracks: Iterable[FrameBoxes]) -> TrackingMetrics:
    """Score per-frame ``tracks`` against ``truth``: both give (n, 4) xyxy boxes and (n,) ids, frame by frame.

    Example:
        >>> frame = (np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([1]))
        >>> evaluate_tracks([frame, frame], [frame, frame]).idf1
        1.0
    """
    for package, install in (("motmetrics", "pip install motmetrics==1.4.0"),
                             ("trackeval", "pip install --no-deps trackeval==1.3.0")):
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"tracking metrics need {package}: {install}")
    import motmetrics  # noqa: PLC0415 - only the metrics need it; it imports pandas

    truth, tracks = list(truth), list(tracks)
    if len(truth) != len(tracks):
        raise ValueError(f"{len(truth)} frames of truth but {len(tracks)} frames of tracks; give both for every frame")
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for (true_boxes, true_ids), (track_boxes, track_ids) in zip(truth, tracks):
        distance = 1.0 - box_iou_xyxy(true_boxes, track_boxes)
        distance[distance > 1.0 - MATCH_IOU] = np.nan  # not a possible match
        accumulator.update(np.asarray(true_ids).tolist(), np.asarray(track_ids).tolist(), distance)
    names = ["mota", "idf1", "num_switches", "precision", "recall", "num_frames"]
    row = motmetrics.metrics.create().compute(accumulator, metrics=names, name="sequence").iloc[0]
    hota = _hota(truth, tracks)
    return TrackingMetrics(float(row["mota"]), float(row["idf1"]), int(row["num_switches"]), float(row["precision"]),
                           float(row["recall"]), int(row["num_frames"]), *hota)


def _hota(truth: list[FrameBoxes], tracks: list[FrameBoxes]) -> tuple[float, float, float]:
    """(HOTA, DetA, AssA), each averaged over trackeval's 19 IoU thresholds; similarity is the boxes' IoU."""
    from trackeval.metrics import HOTA  # noqa: PLC0415 - only the metrics need it

    def dense(frames: list[FrameBoxes]) -> tuple[list[np.ndarray], int]:  # ids as 0..n-1, as trackeval wants
        ids = sorted({int(i) for _, frame_ids in frames for i in np.asarray(frame_ids).tolist()})
        index = {value: position for position, value in enumerate(ids)}
        return [np.array([index[int(i)] for i in np.asarray(frame_ids).tolist()], np.int64)
                for _, frame_ids in frames], len(ids)

    true_ids, true_count = dense(truth)
    track_ids, track_count = dense(tracks)
    data = {"gt_ids": true_ids, "tracker_ids": track_ids, "num_gt_ids": true_count, "num_tracker_ids": track_count,
            "num_gt_dets": sum(len(i) for i in true_ids), "num_tracker_dets": sum(len(i) for i in track_ids),
            "num_timesteps": len(truth),
            "similarity_scores": [box_iou_xyxy(np.asarray(t, np.float64).reshape(-1, 4),
                                               np.asarray(k, np.float64).reshape(-1, 4))
                                  for (t, _), (k, _) in zip(truth, tracks)]}
    result = HOTA().eval_sequence(data)
    return tuple(float(np.mean(result[key])) for key in ("HOTA", "DetA", "AssA"))  # type: ignore[return-value]
