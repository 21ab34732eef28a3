"""Compile an :class:`~.policy.AugmentPolicy` to ``A.Compose`` and run it as one pipeline transform.

Boxes go through albumentations' own bbox machinery (``pascal_voc``, clipped, invalid ones dropped); polygons ride
along as keypoints (``remove_invisible=False``) and are re-assembled, clipped to the image and, after geometric ops,
used to tighten the boxes. albumentations expects RGB, so the BGR sample is converted around the call (hue-symmetric
ops would not care, but ``ToGray`` and ``CLAHE`` weight the channels).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from yolov12.data.augment._albumentations import load_albumentations, pascal_voc_bbox_params
from yolov12.data.augment.compose import has_segments, replace_sample
from yolov12.data.augment.geometry import clip_polygon, polygon_boxes
from yolov12.data.augment.policy import AugmentPolicy, PolicyError, load_policy
from yolov12.data.augment.policy_ops import OPS

if TYPE_CHECKING:
    import albumentations as A

    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)


def compile_policy(policy: AugmentPolicy, magnitude_scale: float = 1.0) -> A.Compose:
    """One ``A.Compose`` for the whole policy.

    When some op touches boxes (a dual transform such as ``Affine``, ``Perspective``, ``CoarseDropout``) the Compose
    carries box (``classes``, ``indices`` label fields) and keypoint (``keypoint_owner``) parameters; a pixel-only
    policy gets none and is called with the image alone.

    Raises:
        PolicyError: when albumentations rejects an op's parameters, or would silently adjust them (it warns and
            changes e.g. an even blur kernel); the message names the op.
    """
    albumentations = load_albumentations()
    transforms = build_policy_ops(policy, magnitude_scale)
    if not any(isinstance(t, albumentations.DualTransform) for t in transforms):
        return albumentations.Compose(transforms, p=1.0, strict=True)
    return albumentations.Compose(
        transforms,
        bbox_params=pascal_voc_bbox_params(),
        keypoint_params=albumentations.KeypointParams(
            format="xy", label_fields=["keypoint_owner"], remove_invisible=False
        ),
        p=1.0,
        strict=True,
    )


def build_policy_ops(policy: AugmentPolicy, magnitude_scale: float = 1.0) -> list[Any]:
    """The policy's albumentations transforms in order, at ``magnitude * magnitude_scale``.

    Raises:
        PolicyError: when albumentations rejects an op's parameters, or would silently adjust them (it warns and
            changes e.g. an even blur kernel); the message names the op.
    """
    albumentations = load_albumentations()
    transforms = []
    for index, op in enumerate(policy.ops):
        kwargs = op.transform_kwargs(magnitude_scale)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                transforms.append(getattr(albumentations, OPS[op.name].transform)(**kwargs))
            except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                raise PolicyError(
                    f"ops[{index}] {op.name!r} with {kwargs}: albumentations rejected it: {exc}"
                ) from None
        adjusted = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        if adjusted:
            raise PolicyError(f"ops[{index}] {op.name!r} with {kwargs}: albumentations rejected it: {adjusted[0]}")
    return transforms


class PolicyTransform:
    """Apply a policy to a :class:`Sample`; ``set_epoch`` applies the magnitude schedule.

    Pickles as the policy only (the compiled ``A.Compose`` is rebuilt in the worker), so DataLoader workers started
    with ``spawn`` never import albumentations outside :func:`load_albumentations`.

    Args:
        policy: an :class:`AugmentPolicy`, its dict form, a path to its YAML/JSON file, or a shipped policy's name
            (see :func:`~.policy.load_policy`).
    """

    def __init__(self, policy: AugmentPolicy | dict[str, Any] | str | Path) -> None:
        policy = load_policy(policy)
        self.policy = policy
        self.magnitude_scale = policy.schedule.factor(0, 1)
        self._compiled: Any = None
        compile_policy(policy, self.magnitude_scale)  # fail now, not in a worker, if albumentations rejects an op

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Scale every op's magnitude by the schedule's factor for this epoch."""
        scale = self.policy.schedule.factor(epoch, total_epochs)
        if scale != self.magnitude_scale:
            logger.debug("augment policy: epoch %d/%d, magnitude factor %.3f", epoch, total_epochs, scale)
            self.magnitude_scale = scale
            self._compiled = None

    @property
    def compiled(self) -> A.Compose:
        if self._compiled is None:
            self._compiled = compile_policy(self.policy, self.magnitude_scale)
        return self._compiled

    def __call__(self, sample: Sample) -> Sample:
        if not self.policy.ops:
            return sample
        compiled = self.compiled
        rgb = cv2.cvtColor(sample.image, cv2.COLOR_BGR2RGB)
        if not compiled.processors:  # pixel-only policy: boxes and polygons stay as they are
            return replace_sample(sample, image=cv2.cvtColor(compiled(image=rgb)["image"], cv2.COLOR_RGB2BGR))
        boxes = sample.boxes.reshape(-1, 4).astype(np.float32)
        with_segments = has_segments(sample) and len(boxes) > 0
        points, owners = _flatten_segments(sample.segments if with_segments else [])
        out = compiled(
            image=rgb,
            bboxes=boxes,
            classes=np.asarray(sample.classes, np.int64).reshape(-1),
            indices=np.arange(len(boxes)),
            keypoints=points,
            keypoint_owner=owners,
        )
        image = cv2.cvtColor(out["image"], cv2.COLOR_RGB2BGR)
        height, width = image.shape[:2]
        kept = np.asarray(out["indices"], np.int64).reshape(-1)
        new_boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        segments = None
        if with_segments:
            polygons = _group_segments(np.asarray(out["keypoints"], np.float32), owners, len(boxes))
            segments = [clip_polygon(polygons[i], height, width) for i in kept]
            if self.policy.is_geometric:
                tight = polygon_boxes(segments)
                usable = np.array([len(s) > 0 for s in segments], bool)
                new_boxes[usable] = tight[usable]
        return replace_sample(
            sample,
            image=image,
            boxes=new_boxes,
            classes=np.asarray(out["classes"], np.int64).reshape(-1),
            segments=segments,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_compiled"] = None
        return state

    def __repr__(self) -> str:
        names = ", ".join(f"{op.name}(p={op.p}, m={op.magnitude})" for op in self.policy.ops)
        return f"PolicyTransform([{names}], schedule={self.policy.schedule.kind})"


def _flatten_segments(segments: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """List of (k_i, 2) polygons -> (sum k_i, 2) points and (sum k_i,) owner indices."""
    if not segments:
        return np.zeros((0, 2), np.float32), np.zeros((0,), np.int64)
    points = np.concatenate([s.reshape(-1, 2) for s in segments]).astype(np.float32)
    owners = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(segments)])
    return points, owners


def _group_segments(points: np.ndarray, owners: np.ndarray, count: int) -> list[np.ndarray]:
    """Inverse of :func:`_flatten_segments` (albumentations keeps keypoint order when nothing is removed)."""
    points = points.reshape(-1, 2)[:, :2]
    return [points[owners == i] for i in range(count)]
