"""Global motion compensation: the 2x3 affine camera motion between consecutive frames, with OpenCV.

``sparseOptFlow`` tracks Shi-Tomasi corners with pyramidal Lucas-Kanade and fits a similarity transform with RANSAC;
``ecc`` maximises the enhanced correlation coefficient (``cv2.findTransformECC``) of a Euclidean motion, which is
slower (several times, on textured frames) but needs no corners. Frames are shrunk by ``downscale`` first; the
translation is scaled back to full-size pixels.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)

ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
ECC_BLUR = 5  # Gaussian smoothing before ECC: without it fine texture shifted a few pixels does not converge
MIN_FLOW_POINTS = 4  # fewer tracked corners than this: no motion is estimated for the frame


class GlobalMotion:
    """Camera motion of each frame relative to the previous one; :meth:`estimate` is called once per frame.

    Example:
        >>> gmc = GlobalMotion("sparseOptFlow")
        >>> gmc.estimate(np.zeros((64, 64, 3), np.uint8)).tolist()  # the first frame has no motion
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    def __init__(self, method: str = "sparseOptFlow", downscale: int = 2) -> None:
        if method not in ("sparseOptFlow", "ecc", "none"):
            raise ValueError(f"gmc_method={method!r} is not supported; use sparseOptFlow, ecc or none")
        self.method, self.downscale = method, max(1, int(downscale))
        self.previous: np.ndarray | None = None
        self.previous_points: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new video starts)."""
        self.previous, self.previous_points = None, None

    def estimate(self, image: np.ndarray | None) -> np.ndarray:
        """(2, 3) float64 affine map from the previous frame's pixels to this (H, W, 3) BGR frame's; identity for the
        first frame, for ``method="none"``, without an image, or when the motion cannot be estimated."""
        identity = np.eye(2, 3)
        if self.method == "none" or image is None:
            return identity
        gray = self._prepare(image)
        previous, self.previous = self.previous, gray
        if previous is None or previous.shape != gray.shape:
            self.previous_points = self._corners(gray) if self.method == "sparseOptFlow" else None
            return identity
        warp = self._sparse_flow(previous, gray) if self.method == "sparseOptFlow" else self._ecc(previous, gray)
        if warp is None:
            return identity
        warp[:, 2] *= self.downscale
        return warp

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if self.downscale > 1:
            height, width = gray.shape[:2]
            gray = cv2.resize(gray, (width // self.downscale, height // self.downscale), interpolation=cv2.INTER_AREA)
        return gray

    @staticmethod
    def _corners(gray: np.ndarray) -> np.ndarray | None:
        return cv2.goodFeaturesToTrack(gray, maxCorners=1000, qualityLevel=0.01, minDistance=1, blockSize=3)

    def _sparse_flow(self, previous: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
        points, self.previous_points = self.previous_points, self._corners(gray)
        if points is None or len(points) < MIN_FLOW_POINTS:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, points, None)
        good = status.reshape(-1) == 1
        if good.sum() < MIN_FLOW_POINTS:
            return None
        warp, _ = cv2.estimateAffinePartial2D(points[good], moved[good], method=cv2.RANSAC)
        return warp

    def _ecc(self, previous: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(previous, gray, warp, cv2.MOTION_EUCLIDEAN, ECC_CRITERIA, None, ECC_BLUR)
        except cv2.error as exc:  # no convergence on a flat or changing frame: assume a still camera for it
            logger.debug("ECC motion estimate failed, assuming no camera motion: %s", str(exc).splitlines()[-1])
            return None
        return warp.astype(np.float64)
