"""Raw engine output of one batch -> :class:`Results`, for callers that run an engine themselves (e.g. serving).

The steps are the library's own: :func:`non_max_suppression` for (B, 4 + nc, A) detector output, a confidence filter
for end-to-end (B, max_det, 6) output, :func:`scale_boxes` back to original pixels, and :class:`Probs` for (B, nc)
classifier output. Nothing here decodes or filters differently from :class:`Predictor`.

Example:
    >>> batch = letterbox_batch(images, 640)                                       # doctest: +SKIP
    >>> results = detection_results(engine(batch.to_float_nchw()), images, batch.letterboxes, engine.info.names)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from yolov12.infer.letterbox import LetterboxInfo, scale_boxes
from yolov12.infer.nms import non_max_suppression_numpy
from yolov12.infer.results import Boxes, Probs, Results

Array = np.ndarray | torch.Tensor


def _paths(paths: Sequence[str] | None, count: int) -> list[str]:
    return list(paths) if paths is not None else [f"image{i}" for i in range(count)]


def detection_results(
    outputs: Array,
    images: Sequence[np.ndarray],
    letterboxes: Sequence[LetterboxInfo],
    names: dict[int, str],
    *,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    end2end: bool = False,
    paths: Sequence[str] | None = None,
) -> list[Results]:
    """One :class:`Results` per image, boxes in original-image pixels.

    Args:
        outputs: (B, 4 + nc, A) boxes (cx, cy, w, h) and class scores, or with ``end2end`` (B, max_det, 6)
            x1, y1, x2, y2, score, class already suppressed.
        images: the B original (H, W, 3) BGR uint8 images.
        letterboxes: how each image was letterboxed into the input.
        names: class id -> name.
    """
    if end2end:
        values = torch.as_tensor(np.asarray(outputs, dtype=np.float32))
        detections = []
        for rows in values:
            rows = rows[rows[:, 4] > conf]
            if classes is not None:
                rows = rows[torch.isin(rows[:, 5].long(), torch.as_tensor(list(classes)))]
            detections.append(rows[:max_det])
    else:
        if outputs.shape[1] != 4 + len(names):
            raise ValueError(f"detector output has {outputs.shape[1]} rows, expected 4 + {len(names)} classes")
        values = outputs.detach().float().cpu().numpy() if isinstance(outputs, torch.Tensor) else outputs
        detections = non_max_suppression_numpy(np.asarray(values, dtype=np.float32), conf=conf, iou=iou,
                                               classes=classes, agnostic=agnostic, max_det=max_det)
    results = []
    for path, image, info, det in zip(_paths(paths, len(images)), images, letterboxes, detections):
        det = det.cpu().numpy() if isinstance(det, torch.Tensor) else det
        rows = det.astype(np.float32)  # a copy: the boxes are scaled in place
        rows[:, :4] = scale_boxes(rows[:, :4], info, image.shape[:2])
        boxes = Boxes(torch.from_numpy(rows), image.shape[:2])
        results.append(Results(orig_img=image, path=path, names=dict(names), boxes=boxes))
    return results


def classification_results(outputs: Array, images: Sequence[np.ndarray], names: dict[int, str],
                           paths: Sequence[str] | None = None) -> list[Results]:
    """One :class:`Results` with :class:`Probs` per image from (B, nc) probabilities."""
    probabilities = torch.as_tensor(np.asarray(outputs, dtype=np.float32))
    if probabilities.ndim != 2 or probabilities.shape[1] != len(names):
        raise ValueError(f"classifier output has shape {tuple(probabilities.shape)}, expected (B, {len(names)})")
    return [Results(orig_img=image, path=path, names=dict(names), probs=Probs(row))
            for path, image, row in zip(_paths(paths, len(images)), images, probabilities)]


def classification_postprocess(
    outputs: Array,
    images: Sequence[np.ndarray],
    letterboxes: Sequence[LetterboxInfo] | None,
    names: dict[int, str],
    *,
    paths: Sequence[str] | None = None,
    **detection_options: object,
) -> list[Results]:
    """:func:`classification_results` called like :func:`detection_results` (the per-task table's ``postprocess``).

    ``letterboxes`` (None for centre crops) and the detection options (``conf``, ``iou``, ``max_det``, ``classes``,
    ``agnostic``, ``end2end``) do not apply to (B, nc) probabilities and are ignored.
    """
    del letterboxes, detection_options
    return classification_results(outputs, images, names, paths=paths)
