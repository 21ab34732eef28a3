"""Constant-velocity Kalman filters on box states, vectorised over tracks.

Two measurement spaces, as in the ByteTrack and BoT-SORT papers: ``xyah`` (centre x, centre y, aspect w/h, height;
ByteTrack) and ``xywh`` (centre x, centre y, width, height; BoT-SORT). The state is the measurement and its velocity
(8 values). Noise scales with the box size: position noise 1/20, velocity noise 1/160 of the height (or width).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Space = Literal["xyah", "xywh"]
POSITION_WEIGHT = 1.0 / 20
VELOCITY_WEIGHT = 1.0 / 160


class KalmanFilter:
    """Kalman filter for (N, 8) means and (N, 8, 8) covariances in ``space``.

    Example:
        >>> kf = KalmanFilter("xywh")
        >>> mean, cov = kf.initiate(np.array([[50.0, 40.0, 20.0, 10.0]]))
        >>> kf.predict(mean, cov)[0].shape
        (1, 8)
    """

    def __init__(self, space: Space = "xyah") -> None:
        self.space = space
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)  # x_{t+1} = x_t + v_t
        self.observation = np.eye(4, 8)

    def _sizes(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) scale of each coordinate's noise: the height, or (width, height, width, height) for ``xywh``."""
        if self.space == "xyah":
            height = boxes[:, 3]
            return np.stack([height, height, np.full_like(height, np.nan), height], 1)
        return np.stack([boxes[:, 2], boxes[:, 3], boxes[:, 2], boxes[:, 3]], 1)

    def _std(self, boxes: np.ndarray, weight: float, aspect: float) -> np.ndarray:
        """(N, 4) standard deviations: ``weight`` x size; the aspect ratio (``xyah``) gets the constant ``aspect``."""
        std = weight * self._sizes(boxes)
        if self.space == "xyah":
            std[:, 2] = aspect
        return std

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) measurements -> (N, 8) means (zero velocity) and (N, 8, 8) covariances."""
        measurements = np.asarray(measurements, np.float64).reshape(-1, 4)
        mean = np.concatenate([measurements, np.zeros_like(measurements)], 1)
        std = np.concatenate([self._std(measurements, 2 * POSITION_WEIGHT, 1e-2),
                              self._std(measurements, 10 * VELOCITY_WEIGHT, 1e-5)], 1)
        return mean, _diagonal(std**2)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead for every track: (N, 8), (N, 8, 8) -> (N, 8), (N, 8, 8)."""
        if len(mean) == 0:
            return mean, covariance
        std = np.concatenate([self._std(mean[:, :4], POSITION_WEIGHT, 1e-2),
                              self._std(mean[:, :4], VELOCITY_WEIGHT, 1e-5)], 1)
        mean = mean @ self.motion.T
        covariance = self.motion @ covariance @ self.motion.T + _diagonal(std**2)
        return mean, covariance

    def update(self, mean: np.ndarray, covariance: np.ndarray,
               measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct (N, 8) means and (N, 8, 8) covariances with (N, 4) measurements."""
        projected = mean[:, :4]
        noise = _diagonal(self._std(projected, POSITION_WEIGHT, 1e-1) ** 2)
        innovation_cov = covariance[:, :4, :4] + noise
        cross = covariance[:, :, :4]  # P H^T
        gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)  # (N, 8, 4)
        innovation = measurements - projected
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
        return mean, covariance


def _diagonal(values: np.ndarray) -> np.ndarray:
    """(N, k) -> (N, k, k) diagonal matrices."""
    out = np.zeros((*values.shape, values.shape[-1]))
    index = np.arange(values.shape[-1])
    out[:, index, index] = values
    return out


def xyxy_to_measurement(boxes: np.ndarray, space: Space) -> np.ndarray:
    """(N, 4) corners -> (N, 4) measurements in ``space``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    third = width / np.maximum(height, 1e-6) if space == "xyah" else width
    return np.stack([centre_x, centre_y, third, height], 1)


def measurement_to_xyxy(measurements: np.ndarray, space: Space) -> np.ndarray:
    """(N, 4) measurements in ``space`` -> (N, 4) corners."""
    measurements = np.asarray(measurements, np.float64).reshape(-1, 4)
    height = measurements[:, 3]
    width = measurements[:, 2] * height if space == "xyah" else measurements[:, 2]
    half_w, half_h = width / 2, height / 2
    return np.stack([measurements[:, 0] - half_w, measurements[:, 1] - half_h,
                     measurements[:, 0] + half_w, measurements[:, 1] + half_h], 1)
