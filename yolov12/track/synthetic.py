"""A generated video of moving digits with known identities, for tracking tests and benchmarks.

Digits from the sample dataset (:mod:`yolov12.data.sample_dataset`, scikit-learn's handwritten digits) move on
straight paths that bounce off the frame edges, over one textured background with fresh noise each frame; some pairs
are set on paths that cross head-on, the classic trap for identity switches. Everything is seeded.

Example:
    >>> video = MovingDigits(SequenceSpec(num_frames=3, num_objects=2))
    >>> image, truth = video.frame(0)
    >>> image.shape, truth.boxes.shape, truth.ids.tolist()
    ((320, 320, 3), (2, 4), [1, 2])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from yolov12.data.sample_dataset import BACKGROUNDS, _scaled_digit, load_digit_images
from yolov12.track.matching import box_iou_xyxy


@dataclass(frozen=True)
class SequenceSpec:
    """What the generated video contains."""

    num_frames: int = 150
    num_objects: int = 8
    image_size: int = 320
    min_digit_size: int = 28
    max_digit_size: int = 48
    max_speed: float = 4.0  # pixels per frame along each axis
    crossing_pairs: int = 2  # pairs of digits moving head-on along one row, so that they cross
    noise: float = 6.0  # standard deviation of the per-frame pixel noise
    seed: int = 0


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame: (n, 4) xyxy pixel boxes, (n,) int64 identities (from 1) and (n,) classes."""

    boxes: np.ndarray
    ids: np.ndarray
    classes: np.ndarray


class MovingDigits:
    """The frames (S, S, 3) BGR uint8 of a :class:`SequenceSpec` and their ground truth; frames are drawn on demand."""

    def __init__(self, spec: SequenceSpec = SequenceSpec()) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        images, labels = load_digit_images()
        picks = rng.choice(len(labels), spec.num_objects, replace=False)
        sizes = rng.integers(spec.min_digit_size, spec.max_digit_size + 1, spec.num_objects)
        self.alphas = [_scaled_digit(images[i], int(s)) for i, s in zip(picks, sizes)]
        self.classes = labels[picks].astype(np.int64)
        self.colours = rng.integers(0, 90, (spec.num_objects, 3)).astype(np.float32)
        self.background = BACKGROUNDS["texture"](rng, spec.image_size)
        self.positions = self._trajectories(rng)  # (frames, objects, 2) top-left x, y

    def __len__(self) -> int:
        return self.spec.num_frames

    def _trajectories(self, rng: np.random.Generator) -> np.ndarray:
        """Top-left corners of every object in every frame: straight lines folded back at the edges."""
        spec = self.spec
        room = np.array([[spec.image_size - a.shape[1], spec.image_size - a.shape[0]] for a in self.alphas], float)
        start = rng.uniform(0, 1, (spec.num_objects, 2)) * room
        velocity = rng.uniform(-spec.max_speed, spec.max_speed, (spec.num_objects, 2))
        for pair in range(min(spec.crossing_pairs, spec.num_objects // 2)):
            first, second = 2 * pair, 2 * pair + 1
            row = rng.uniform(0.2, 0.8) * min(room[first, 1], room[second, 1])
            start[first], start[second] = (0.1 * room[first, 0], row), (0.9 * room[second, 0], row)
            speed = rng.uniform(0.5, 1.0) * spec.max_speed
            velocity[first], velocity[second] = (speed, 0.0), (-speed, 0.0)
        times = np.arange(spec.num_frames, dtype=float)[:, None, None]
        folded = np.mod(start[None] + velocity[None] * times, 2 * room[None])
        return np.where(folded <= room[None], folded, 2 * room[None] - folded)

    def truth(self, index: int) -> FrameTruth:
        """Ground truth of frame ``index``: every digit, occluded or not."""
        corners = np.round(self.positions[index])
        sizes = np.array([[a.shape[1], a.shape[0]] for a in self.alphas], float)
        boxes = np.concatenate([corners, corners + sizes], 1).astype(np.float32)
        return FrameTruth(boxes, np.arange(1, self.spec.num_objects + 1, dtype=np.int64), self.classes.copy())

    def frame(self, index: int) -> tuple[np.ndarray, FrameTruth]:
        """Frame ``index`` as (S, S, 3) BGR uint8 (later digits are drawn over earlier ones) and its truth."""
        truth = self.truth(index)
        canvas = self.background.copy()
        for alpha, colour, (left, top) in zip(self.alphas, self.colours, truth.boxes[:, :2].astype(int)):
            region = canvas[top:top + alpha.shape[0], left:left + alpha.shape[1]]
            region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
        noise = np.random.default_rng([self.spec.seed, index]).standard_normal(canvas.shape, dtype=np.float32)
        return np.clip(canvas + noise * self.spec.noise, 0, 255).astype(np.uint8), truth

    def __iter__(self) -> Iterator[tuple[np.ndarray, FrameTruth]]:
        return (self.frame(i) for i in range(len(self)))

    def write_video(self, path: str | Path, fps: float = 30.0) -> Path:
        """Write the frames to a Motion-JPEG ``.avi`` (OpenCV's always-available codec); returns the path."""
        path = Path(path)
        size = self.spec.image_size
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write the video {path}; use an .avi path")
        try:
            for image, _ in self:
                writer.write(image)
        finally:
            writer.release()
        return path


def noisy_detections(truth: FrameTruth, rng: np.random.Generator, jitter: float = 0.05, drop_rate: float = 0.1,
                     false_positives: float = 0.3, image_size: int = 320) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A simulated detector's output for one frame: (N, 4) xyxy boxes, (N,) scores, (N,) classes.

    Each true box is missed with probability ``drop_rate``, else kept with corners moved by up to ``jitter`` of its
    size and a score in [0.5, 0.95] (in [0.15, 0.45] when another box covers it by IoU > 0.3, as for an occluded
    object); ``false_positives`` is the mean number of stray boxes a frame, scoring 0.1 to 0.4.
    """
    boxes = truth.boxes.astype(np.float64)
    sizes = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, 1)
    moved = boxes + rng.uniform(-jitter, jitter, boxes.shape) * sizes
    overlap = box_iou_xyxy(boxes, boxes) - np.eye(len(boxes))
    occluded = (overlap > 0.3).any(1)
    scores = np.where(occluded, rng.uniform(0.15, 0.45, len(boxes)), rng.uniform(0.5, 0.95, len(boxes)))
    kept = rng.random(len(boxes)) >= drop_rate
    strays = int(rng.poisson(false_positives))
    corner = rng.uniform(0, image_size - 40, (strays, 2))
    stray_boxes = np.concatenate([corner, corner + rng.uniform(15, 40, (strays, 2))], 1)
    return (np.concatenate([moved[kept], stray_boxes]), np.concatenate([scores[kept], rng.uniform(0.1, 0.4, strays)]),
            np.concatenate([truth.classes[kept], rng.integers(0, 10, strays)]).astype(np.float64))
