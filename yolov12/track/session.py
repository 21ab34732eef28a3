"""Tracking over prediction results: one tracker per video, stream or image sequence of a source.

Frames of one video or stream are named ``<video>:frame<i>``; every other frame (image files, in-memory images)
belongs to one image sequence. A :class:`TrackingSession` keeps a tracker for each, so a folder of videos is tracked
video by video, and ids start at 1 in each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from yolov12.config.tracker import TrackerConfig
from yolov12.infer.results import Boxes, Results
from yolov12.track.bytetrack import ByteTracker
from yolov12.track.registry import create_tracker

IMAGE_SEQUENCE = "<images>"


def sequence_name(frame_name: str) -> str:
    """``clip.mp4:frame12`` -> ``clip.mp4``; any other name (an image) -> the shared image-sequence name."""
    video, marker, index = frame_name.rpartition(":frame")
    return video if marker and index.isdigit() else IMAGE_SEQUENCE


def track_detections(tracker: ByteTracker, detections: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """One frame through ``tracker``: (N, 6) x1, y1, x2, y2, conf, cls in, (K, 7) x1, y1, x2, y2, id, conf, cls out
    (float64): the detections that belong to a confirmed track, in the tracker's order. ``image`` (H, W, 3) BGR is
    needed by trackers that compensate camera motion (BoT-SORT)."""
    array = np.asarray(detections, np.float64).reshape(-1, 6)
    output = tracker.update(array[:, :4], array[:, 4], array[:, 5], image)
    kept = array[output.indices]
    return np.concatenate([kept[:, :4], output.ids[:, None].astype(np.float64), kept[:, 4:]], 1)


class TrackingSession:
    """Trackers of one source, by sequence; :meth:`track` adds track ids to each result, in frame order.

    Example:
        >>> session = TrackingSession(TrackerConfig())
        >>> tracked = session.track(results)  # doctest: +SKIP
        >>> tracked.boxes.id  # doctest: +SKIP
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.trackers: dict[str, ByteTracker] = {}

    def tracker_for(self, frame_name: str) -> ByteTracker:
        """The tracker of the sequence ``frame_name`` belongs to, created on its first frame."""
        sequence = sequence_name(frame_name)
        if sequence not in self.trackers:
            self.trackers[sequence] = create_tracker(self.config)
        return self.trackers[sequence]

    def track(self, result: Results) -> Results:
        """``result`` with its boxes replaced by the tracked ones: (K, 7) x1, y1, x2, y2, id, conf, cls.

        Only detections that belong to a confirmed track are kept (a new object appears from its second frame on,
        or on the sequence's first frame); boxes are the detections', not the Kalman states. A classification
        result is returned unchanged.
        """
        if result.boxes is None:
            return result
        data = result.boxes.data
        array = (data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)).astype(np.float64)
        tracked = track_detections(self.tracker_for(result.path), array, result.orig_img)
        if isinstance(data, torch.Tensor):
            tracked = torch.as_tensor(tracked, dtype=data.dtype, device=data.device)
        else:
            tracked = tracked.astype(data.dtype)
        result.boxes = Boxes(tracked, result.boxes.orig_shape)
        return result

    def track_all(self, results: Iterable[Results]) -> Iterator[Results]:
        """:meth:`track` over ``results`` lazily, one at a time."""
        for result in results:
            yield self.track(result)
