"""CLEAR MOT and identity metrics (MOTA, IDF1, id switches) of tracks against ground truth, with ``motmetrics``.

``motmetrics`` (MIT) is needed for these metrics only; the trackers do not use it. Its 1.4.0 release calls
``np.asfarray`` (removed in NumPy 2) in its IoU helper, so the IoU distances are computed here. It has no HOTA.
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
    id switches, precision, recall and the number of frames."""

    mota: float
    idf1: float
    id_switches: int
    precision: float
    recall: float
    frames: int


FrameBoxes = tuple[np.ndarray, np.ndarray]  # (n, 4) xyxy boxes and (n,) ids


def evaluate_tracks(truth: Iterable[FrameBoxes], tracks: Iterable[FrameBoxes]) -> TrackingMetrics:
    """Score per-frame ``tracks`` against ``truth``: both give (n, 4) xyxy boxes and (n,) ids, frame by frame.

    Example:
        >>> frame = (np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([1]))
        >>> evaluate_tracks([frame, frame], [frame, frame]).idf1
        1.0
    """
    if importlib.util.find_spec("motmetrics") is None:
        raise ModuleNotFoundError("tracking metrics need motmetrics: pip install motmetrics==1.4.0")
    import motmetrics  # noqa: PLC0415 - only the metrics need it; it imports pandas

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for (true_boxes, true_ids), (track_boxes, track_ids) in zip(truth, tracks, strict=True):
        distance = 1.0 - box_iou_xyxy(true_boxes, track_boxes)
        distance[distance > 1.0 - MATCH_IOU] = np.nan  # not a possible match
        accumulator.update(np.asarray(true_ids).tolist(), np.asarray(track_ids).tolist(), distance)
    names = ["mota", "idf1", "num_switches", "precision", "recall", "num_frames"]
    row = motmetrics.metrics.create().compute(accumulator, metrics=names, name="sequence").iloc[0]
    return TrackingMetrics(float(row["mota"]), float(row["idf1"]), int(row["num_switches"]), float(row["precision"]),
                           float(row["recall"]), int(row["num_frames"]))
