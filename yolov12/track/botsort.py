"""BoT-SORT without re-identification (Aharon et al., "BoT-SORT: Robust Associations Multi-Pedestrian Tracking", 2022).

ByteTrack's association on a Kalman state of centre, width and height (the paper's change to the state), with the
predicted states moved by the camera motion between frames (global motion compensation, :mod:`yolov12.track.gmc`).
Written on top of :class:`~yolov12.track.bytetrack.ByteTracker`; see there why no tracker package is used.
"""

from __future__ import annotations

import numpy as np

from yolov12.config.tracker import TrackerConfig
from yolov12.track.bytetrack import ByteTracker
from yolov12.track.gmc import GlobalMotion
from yolov12.track.kalman import Space


class BoTSortTracker(ByteTracker):
    """BoT-SORT: ByteTrack with an ``xywh`` Kalman state and camera-motion compensation; pass each frame's image to
    :meth:`update` (without it, the camera is taken as still).

    Example:
        >>> tracker = BoTSortTracker(TrackerConfig(tracker_type="botsort", gmc_method="none"))
        >>> tracker.update(np.array([[10.0, 10.0, 50.0, 60.0]]), np.array([0.9]), np.array([0.0])).ids.tolist()
        [1]
    """

    space: Space = "xywh"
    frozen_when_lost = (6, 7)  # width and height velocities

    def __init__(self, config: TrackerConfig) -> None:
        self.motion = GlobalMotion(config.gmc_method, config.gmc_downscale)
        super().__init__(config)

    def reset(self) -> None:
        """Forget every track and the previous frame."""
        super().reset()
        self.motion.reset()

    def _compensate(self, mean: np.ndarray, covariance: np.ndarray,
                    image: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Move (N, 8) means and (N, 8, 8) covariances by this frame's camera motion (rotation/scale + translation)."""
        warp = self.motion.estimate(image)
        if np.allclose(warp, np.eye(2, 3)):
            return mean, covariance
        rotation = np.kron(np.eye(4), warp[:, :2])  # acts on (x, y), (w, h), (vx, vy), (vw, vh)
        mean = mean @ rotation.T
        mean[:, :2] += warp[:, 2]
        covariance = rotation @ covariance @ rotation.T
        return mean, covariance
