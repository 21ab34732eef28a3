"""Non-maximum suppression for decoded detector output.

Hand-written because torchvision (and so ``torchvision.ops.nms``) cannot be installed beside the CPU torch build
this project pins. :func:`nms` is exact greedy NMS with torchvision's semantics: visit boxes by descending score,
keep a box unless a kept box overlaps it with IoU strictly greater than the threshold. Score ties are broken by the
lower input index (a stable sort); torchvision leaves that order unspecified.

It is vectorised: the "IoU > threshold" matrix of a block of candidates is computed once (numpy, on CPU), and the
greedy pass is a cheap loop over only the rows of that boolean matrix that overlap a later box. Blocks of at most
``BLOCK_SIZE`` candidates bound memory (a full 30000-candidate matrix would need 3.6 GB); a block is first thinned
by the boxes kept in earlier blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from yolov12.utils.boxes import cxcywh_to_xyxy

logger = logging.getLogger(__name__)

BLOCK_SIZE = 256  # candidates per IoU block: small enough for the CPU cache, large enough to vectorise


def _overlaps(rows: np.ndarray, columns: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(N, M) boolean "IoU > threshold" of (N, 4) and (M, 4) xyxy boxes, as ``yolov12.utils.boxes.box_iou > t``.

    numpy with in-place temporaries: on CPU this is several times faster than torch, whose CPU allocator does not
    cache the large (N, M) buffers.
    """
    x1, y1, x2, y2 = (rows[:, i:i + 1] for i in range(4))
    cx1, cy1, cx2, cy2 = (columns[:, i] for i in range(4))
    width = np.minimum(x2, cx2)
    width -= np.maximum(x1, cx1)
    np.maximum(width, 0, out=width)
    height = np.minimum(y2, cy2)
    height -= np.maximum(y1, cy1)
    np.maximum(height, 0, out=height)
    inter = width
    inter *= height
    union = (x2 - x1) * (y2 - y1) + (cx2 - cx1) * (cy2 - cy1)
    union -= inter
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 for empty boxes gives NaN: never suppresses
        inter /= union
    return inter > iou_threshold


def _greedy_keep(overlaps: np.ndarray) -> np.ndarray:
    """Greedy pass over the (n, n) "IoU > threshold" matrix of score-sorted boxes -> (n,) bool kept mask.

    Box j is dropped iff an earlier kept box i overlaps it. Only rows with a forward overlap can drop anything, and
    when row i is reached every earlier decision is final, so the loop visits just those rows.
    """
    forward = np.triu(overlaps, 1)
    removed = np.zeros(len(overlaps), dtype=bool)
    for i in np.flatnonzero(forward.any(1)):
        if not removed[i]:
            removed |= forward[i]
    return ~removed


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_output: int | None = None) -> torch.Tensor:
    """Exact greedy NMS, like ``torchvision.ops.nms``.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        iou_threshold: suppress boxes whose IoU with a kept, higher-scoring box is greater than this.
        max_output: stop after this many kept boxes (the result is the prefix of the unlimited result).

    Returns:
        (K,) int64 indices of the kept boxes, by descending score, on the device of ``boxes``.

    Example:
        >>> boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
        >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
        tensor([0, 2])
    """
    kept = nms_numpy(boxes.detach().cpu().numpy(), scores.detach().float().cpu().numpy(), iou_threshold, max_output)
    return torch.from_numpy(kept).to(boxes.device)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_output: int | None = None) -> np.ndarray:
    """:func:`nms` on numpy arrays: (N, 4) xyxy boxes, (N,) scores -> (K,) int64 kept indices."""
    limit = len(boxes) if max_output is None else max_output
    order = np.argsort(-scores, kind="stable")  # descending; ties keep the lower index first
    ranked = boxes[order]
    kept_positions: list[np.ndarray] = []
    kept_boxes: list[np.ndarray] = []
    total = 0
    for start in range(0, len(ranked), BLOCK_SIZE):
        if total >= limit:
            break
        block = ranked[start:start + BLOCK_SIZE]
        if kept_boxes:  # suppression by the boxes kept in earlier blocks, all of them in one matrix
            earlier = kept_boxes[0] if len(kept_boxes) == 1 else np.concatenate(kept_boxes)
            candidates = np.flatnonzero(~_overlaps(earlier, block, iou_threshold).any(0))
        else:
            candidates = np.arange(len(block))
        block = block[candidates]
        keep = np.flatnonzero(_greedy_keep(_overlaps(block, block, iou_threshold)))[: limit - total]
        kept_positions.append(start + candidates[keep])
        kept_boxes.append(block[keep])
        total += len(keep)
    kept = order[np.concatenate(kept_positions)] if kept_positions else order[:0]
    return kept.astype(np.int64)


def non_max_suppression(
    prediction: torch.Tensor | np.ndarray,
    conf: float = 0.25,
    iou: float = 0.7,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    max_candidates: int = 30000,
) -> list[torch.Tensor]:
    """Filter decoded detections per image: best class per anchor, confidence threshold, class-aware NMS.

    Multi-label is off (each anchor votes for its best class only), as in Ultralytics' default. Classes are kept
    apart with the coordinate offset trick: each box is shifted by ``class * (max - min coordinate + 1)`` so boxes
    of different classes never overlap, and one NMS serves all classes.

    The dense part is batched: the best score of every anchor of every image is one reduction over (B, nc, A), and
    the class argmax is taken only for the anchors above ``conf``; the greedy NMS then runs per image on those few.

    Args:
        prediction: (B, 4 + nc, A) boxes (cx, cy, w, h) then per-class scores (torch or numpy).
        conf: keep anchors whose best score is greater than this.
        iou: NMS IoU threshold.
        classes: keep only these class ids.
        agnostic: one NMS over all classes.
        max_det: maximum detections per image.
        max_candidates: only the highest-scoring candidates enter NMS.

    Returns:
        B tensors (n, 6): x1, y1, x2, y2, score, class, by descending score (on the device of a torch input).

    Example:
        >>> out = non_max_suppression(torch.rand(2, 84, 8400) * 100, conf=0.5)
        >>> len(out), out[0].shape[1]
        (2, 6)
    """
    # numpy from here on: this is small, sequential work, and torch's CPU ops each start a parallel region that can
    # cost milliseconds when the cores are busy (e.g. several replicas on one node).
    if isinstance(prediction, torch.Tensor):
        device = prediction.device
        values = prediction.detach().float().cpu().numpy()
    else:
        device, values = torch.device("cpu"), np.asarray(prediction, dtype=np.float32)
    rows = non_max_suppression_numpy(values, conf, iou, classes, agnostic, max_det, max_candidates)
    return [torch.from_numpy(image_rows).to(device) for image_rows in rows]


def non_max_suppression_numpy(
    values: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.7,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    max_candidates: int = 30000,
) -> list[np.ndarray]:
    """:func:`non_max_suppression` of a float32 numpy (B, 4 + nc, A) array -> B float32 (n, 6) numpy arrays."""
    wanted = None if classes is None else np.asarray(list(classes))
    best = values[:, 4:].max(1) if values.shape[2] else np.zeros(values.shape[::2], np.float32)  # (B, A)
    outputs = []
    for image, image_best in zip(values, best):  # (4 + nc, A), (A,)
        candidates = np.flatnonzero(image_best > conf)
        labels = image[4:, candidates].argmax(0) if len(candidates) else np.zeros(0, np.int64)
        scores = image_best[candidates]
        if wanted is not None:
            keep_class = np.isin(labels, wanted)
            candidates, labels, scores = candidates[keep_class], labels[keep_class], scores[keep_class]
        boxes = cxcywh_to_xyxy(image[:4, candidates].T)
        if len(scores) > max_candidates:
            top = np.argsort(-scores, kind="stable")[:max_candidates]
            boxes, scores, labels = boxes[top], scores[top], labels[top]
        shifted = boxes
        if not agnostic and len(boxes):
            span = boxes.max() - boxes.min() + 1  # also separates classes when coordinates are negative
            shifted = boxes + (labels * span).astype(boxes.dtype)[:, None]
        keep = nms_numpy(shifted, scores, iou, max_output=max_det)
        rows = np.empty((len(keep), 6), dtype=np.float32)
        rows[:, :4], rows[:, 4], rows[:, 5] = boxes[keep], scores[keep], labels[keep]
        outputs.append(rows)
    return outputs
