"""ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box", ECCV 2022).

Written here rather than taken from a package: Roboflow's ``trackers`` 2.6.1 (Apache-2.0) has ByteTrack and BoT-SORT,
but it requires ``opencv-python`` (the GUI build, which clashes with this project's ``opencv-python-headless``: both
install the ``cv2`` module) and ``supervision`` (PyAV, matplotlib; 3.3 s to import). Measured in one run on a busy
2-core CPU with 50 moving boxes a frame: its ByteTrack 9-16 ms a frame and its BoT-SORT (no camera-motion
compensation) 16-18 ms, this ByteTrack 6-8 ms and this BoT-SORT 7 ms.

Each frame: predict every track with a Kalman filter; match high-score detections to tracked and lost tracks by
IoU; match low-score detections to the tracks still unmatched (they extend tracks, never start one); match the rest
of the high-score detections to tracks seen once; start tracks from what is left; forget tracks lost for more than
``track_buffer`` frames. A track gets its id when it is confirmed (matched on a second frame), so ids have no gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from yolov12.config.tracker import TrackerConfig
from yolov12.track.kalman import KalmanFilter, Space, measurement_to_xyxy, xyxy_to_measurement
from yolov12.track.matching import assign, box_iou_xyxy, iou_cost

SECOND_MATCH_THRESH = 0.5  # largest cost (1 - IoU) of a low-score match, as in the paper's code
UNCONFIRMED_MATCH_THRESH = 0.7  # largest cost of a match to a track seen on one frame only
DUPLICATE_IOU = 0.85  # a tracked and a lost track this close are one object: the younger is dropped


class TrackState(Enum):
    """Where a track is in its life."""

    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


@dataclass(eq=False)
class Track:
    """One object over time: Kalman state, the detection it matched last and its id (0 until confirmed)."""

    mean: np.ndarray  # (8,)
    covariance: np.ndarray  # (8, 8)
    score: float
    class_id: float
    detection_index: int  # index of the matched detection in the current frame, -1 if none
    start_frame: int
    last_frame: int
    state: TrackState = TrackState.NEW
    track_id: int = 0
    confirmed: bool = False


@dataclass(frozen=True)
class TrackOutput:
    """Tracks of one frame: ``indices`` (K,) into the frame's detections and their ``ids`` (K,) int64."""

    indices: np.ndarray
    ids: np.ndarray


class ByteTracker:
    """ByteTrack over frames of one video or stream; call :meth:`update` once per frame, in order.

    Example:
        >>> tracker = ByteTracker(TrackerConfig())
        >>> boxes = np.array([[10.0, 10.0, 50.0, 60.0]])
        >>> [tracker.update(boxes + i, np.array([0.9]), np.array([0.0])).ids.tolist() for i in range(2)]
        [[1], [1]]
    """

    space: Space = "xyah"
    frozen_when_lost: tuple[int, ...] = (7,)  # state velocities zeroed while a track is not matched (height)

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.kalman = KalmanFilter(self.space)
        self.reset()

    def reset(self) -> None:
        """Forget every track and restart ids at 1."""
        self.tracks: list[Track] = []
        self.frame = 0
        self.next_id = 1

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               image: np.ndarray | None = None) -> TrackOutput:
        """Associate one frame's detections: (N, 4) xyxy pixels, (N,) scores, (N,) class ids; ``image`` (H, W, 3) BGR
        is used by trackers that compensate camera motion. Returns the detections that belong to a confirmed track."""
        self.frame += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores, classes = np.asarray(scores, np.float64).reshape(-1), np.asarray(classes, np.float64).reshape(-1)
        for track in self.tracks:
            track.detection_index = -1
        self._predict(image)
        high = np.flatnonzero(scores >= self.config.track_high_thresh)
        low = np.flatnonzero((scores > self.config.track_low_thresh) & (scores < self.config.track_high_thresh))
        active = [t for t in self.tracks if t.confirmed and t.state in (TrackState.TRACKED, TrackState.LOST)]
        fresh = [t for t in self.tracks if not t.confirmed]
        left_tracks, left_high = self._match(active, high, boxes, scores, classes, self.config.match_thresh,
                                             self.config.fuse_score)
        still_tracked = [t for t in left_tracks if t.state == TrackState.TRACKED]
        unmatched, _ = self._match(still_tracked, low, boxes, scores, classes, SECOND_MATCH_THRESH, False)
        for track in unmatched:
            track.state = TrackState.LOST
        unmatched_fresh, left_high = self._match(fresh, left_high, boxes, scores, classes, UNCONFIRMED_MATCH_THRESH,
                                                 self.config.fuse_score)
        for track in unmatched_fresh:
            track.state = TrackState.REMOVED
        self._start_tracks(left_high, boxes, scores, classes)
        self._forget_old()
        return self._output()

    def _predict(self, image: np.ndarray | None) -> None:
        """Kalman prediction of every track; a lost track's size velocities (``frozen_when_lost``) are zeroed first."""
        if not self.tracks:
            self._compensate(np.zeros((0, 8)), np.zeros((0, 8, 8)), image)  # camera motion needs every frame
            return
        mean = np.stack([t.mean for t in self.tracks])
        covariance = np.stack([t.covariance for t in self.tracks])
        lost = np.array([t.state != TrackState.TRACKED for t in self.tracks])
        mean[np.ix_(lost, self.frozen_when_lost)] = 0.0
        mean, covariance = self.kalman.predict(mean, covariance)
        mean, covariance = self._compensate(mean, covariance, image)
        for track, m, c in zip(self.tracks, mean, covariance):
            track.mean, track.covariance = m, c

    def _compensate(self, mean: np.ndarray, covariance: np.ndarray,
                    image: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Camera-motion compensation of predicted states; ByteTrack assumes a still camera."""
        return mean, covariance

    def _match(self, tracks: list[Track], detections: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
               classes: np.ndarray, limit: float, fuse: bool) -> tuple[list[Track], np.ndarray]:
        """Match ``tracks`` to the detection indices ``detections``; updates the matched tracks and returns the
        unmatched tracks and the unmatched detection indices."""
        track_boxes = self.track_boxes(tracks)
        cost = iou_cost(track_boxes, boxes[detections], scores[detections] if fuse else None)
        matches, left_rows, left_cols = assign(cost, limit)
        if matches:
            rows, cols = (np.array(part) for part in zip(*matches))
            self._correct([tracks[r] for r in rows], detections[cols], boxes, scores, classes)
        return [tracks[r] for r in left_rows], detections[left_cols]

    def _correct(self, tracks: list[Track], indices: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                 classes: np.ndarray) -> None:
        """Kalman update of ``tracks`` with their detections; confirms tracks and (re)marks them tracked."""
        mean = np.stack([t.mean for t in tracks])
        covariance = np.stack([t.covariance for t in tracks])
        mean, covariance = self.kalman.update(mean, covariance, xyxy_to_measurement(boxes[indices], self.space))
        for track, m, c, index in zip(tracks, mean, covariance, indices):
            track.mean, track.covariance, track.detection_index = m, c, int(index)
            track.score, track.class_id, track.last_frame = float(scores[index]), float(classes[index]), self.frame
            track.state = TrackState.TRACKED
            if not track.confirmed:
                track.confirmed, track.track_id = True, self._new_id()

    def _start_tracks(self, indices: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> None:
        """New tracks from detections scoring at least ``new_track_thresh``; confirmed at once on the first frame."""
        indices = indices[scores[indices] >= self.config.new_track_thresh]
        if len(indices) == 0:
            return
        mean, covariance = self.kalman.initiate(xyxy_to_measurement(boxes[indices], self.space))
        for m, c, index in zip(mean, covariance, indices):
            track = Track(m, c, float(scores[index]), float(classes[index]), int(index), self.frame, self.frame,
                          TrackState.TRACKED)
            if self.frame == 1:
                track.confirmed, track.track_id = True, self._new_id()
            self.tracks.append(track)

    def _forget_old(self) -> None:
        """Drop removed tracks, tracks lost for longer than ``track_buffer`` frames, and lost duplicates."""
        buffer = self.config.track_buffer
        kept = [t for t in self.tracks if t.state != TrackState.REMOVED and self.frame - t.last_frame <= buffer]
        tracked = [t for t in kept if t.state == TrackState.TRACKED and t.confirmed]
        lost = [t for t in kept if t.state == TrackState.LOST]
        if tracked and lost:
            overlap = box_iou_xyxy(self.track_boxes(tracked), self.track_boxes(lost)) > DUPLICATE_IOU
            for row, col in zip(*np.nonzero(overlap)):
                younger = min(tracked[row], lost[col], key=lambda t: t.last_frame - t.start_frame)
                younger.state = TrackState.REMOVED
            kept = [t for t in kept if t.state != TrackState.REMOVED]
        self.tracks = kept

    def _output(self) -> TrackOutput:
        matched = [t for t in self.tracks if t.confirmed and t.detection_index >= 0]
        matched.sort(key=lambda t: t.detection_index)
        return TrackOutput(np.array([t.detection_index for t in matched], np.int64),
                           np.array([t.track_id for t in matched], np.int64))

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def track_boxes(self, tracks: list[Track]) -> np.ndarray:
        """(N, 4) xyxy boxes of the tracks' current Kalman states."""
        if not tracks:
            return np.zeros((0, 4))
        return measurement_to_xyxy(np.stack([t.mean[:4] for t in tracks]), self.space)
