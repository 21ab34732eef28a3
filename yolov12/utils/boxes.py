"""Box helpers, named by format.

Formats:
    ``xyxy``   (x1, y1, x2, y2) corners.
    ``cxcywh`` (cx, cy, w, h) centre and size (YOLO labels, the detector's eval output).
    ``xywh``   (x, y, w, h) top-left corner and size (COCO JSON ``bbox``).

Conversions, :func:`box_area` and :func:`box_iou` accept torch tensors or numpy arrays of shape (..., 4) and return
the same type; integer inputs give floating-point results. :func:`bbox_iou` (IoU variants for the loss) is torch-only.

Ultralytics' public names keep their meaning where users meet them: ``Results.boxes.xywh``/``xywhn`` and the
dataset records' ``boxes_xywhn`` are centre boxes (``cxcywh``), as in YOLO label files.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import numpy as np
import torch

BoxArray = TypeVar("BoxArray", torch.Tensor, np.ndarray)
IoUKind = Literal["iou", "giou", "diou", "ciou"]

__all__ = [
    "BoxArray", "IoUKind", "bbox_iou", "box_area", "box_iou", "cxcywh_to_xyxy", "xywh_to_xyxy", "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]


def _stack(parts: list, like: BoxArray) -> BoxArray:
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, -1)
    return np.stack(parts, -1)


def cxcywh_to_xyxy(boxes: BoxArray) -> BoxArray:
    """(..., 4) centre/size boxes -> (..., 4) corner boxes.

    Example:
        >>> cxcywh_to_xyxy(torch.tensor([[5.0, 5.0, 4.0, 2.0]]))
        tensor([[3., 4., 7., 6.]])
    """
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], boxes)


def xyxy_to_cxcywh(boxes: BoxArray) -> BoxArray:
    """(..., 4) corner boxes -> (..., 4) centre/size boxes."""
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], boxes)


def xyxy_to_xywh(boxes: BoxArray) -> BoxArray:
    """(..., 4) corner boxes -> (..., 4) COCO boxes (top-left x, top-left y, width, height)."""
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _stack([x1, y1, x2 - x1, y2 - y1], boxes)


def xywh_to_xyxy(boxes: BoxArray) -> BoxArray:
    """(..., 4) COCO boxes (top-left x, top-left y, width, height) -> (..., 4) corner boxes."""
    x, y, w, h = (boxes[..., i] for i in range(4))
    return _stack([x, y, x + w, y + h], boxes)


def box_area(boxes: BoxArray) -> BoxArray:
    """(..., 4) xyxy boxes -> (...) areas (negative sizes clamp to zero)."""
    if isinstance(boxes, torch.Tensor):
        return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def box_iou(boxes1: BoxArray, boxes2: BoxArray, eps: float = 1e-9) -> BoxArray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M), torch or numpy like the inputs.

    The union is floored at ``eps``, so pairs of empty boxes give 0 rather than NaN; other pairs are exactly
    intersection / union.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 0, 3, 2], [0.0, 0, 2, 2]]))
        tensor([[0.3333, 1.0000]])
    """
    if isinstance(boxes1, torch.Tensor):
        top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        inter = (bottom_right - top_left).clamp(min=0).prod(-1)
        union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
        return inter / union.clamp(min=eps)
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / np.maximum(union, eps)


def bbox_iou(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    kind: IoUKind = "iou",
    box_format: Literal["xyxy", "cxcywh"] = "xyxy",
    eps: float = 1e-7,
) -> torch.Tensor:
    """Elementwise IoU of two broadcastable (..., 4) box tensors -> (...).

    ``kind`` selects the published variants: ``"giou"`` subtracts the empty fraction of the enclosing box,
    ``"diou"`` the squared centre distance over the squared enclosing diagonal, and ``"ciou"`` additionally the
    aspect-ratio term ``alpha * v`` with ``v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2`` and
    ``alpha = v / (v - iou + 1)`` (``alpha`` is treated as a constant: no gradient flows through it). ``eps`` is
    added to heights and the union, as in the published formula, so degenerate boxes give finite values.

    Example:
        >>> a, b = torch.tensor([0.0, 0, 2, 2]), torch.tensor([1.0, 0, 3, 2])
        >>> round(bbox_iou(a, b, kind="giou").item(), 4)
        0.3333
    """
    if box_format == "cxcywh":
        boxes1, boxes2 = cxcywh_to_xyxy(boxes1), cxcywh_to_xyxy(boxes2)
    b1_x1, b1_y1, b1_x2, b1_y2 = boxes1.unbind(-1)
    b2_x1, b2_y1, b2_x2, b2_y2 = boxes2.unbind(-1)
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = (torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(min=0) * (
        torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)
    ).clamp(min=0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou
    enclose_w = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    enclose_h = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    if kind == "giou":
        enclose_area = enclose_w * enclose_h + eps
        return iou - (enclose_area - union) / enclose_area
    if kind not in ("diou", "ciou"):
        raise ValueError(f"unknown IoU kind {kind!r}; use one of 'iou', 'giou', 'diou', 'ciou'")
    diagonal2 = enclose_w**2 + enclose_h**2 + eps
    centre_distance2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    if kind == "diou":
        return iou - centre_distance2 / diagonal2
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (centre_distance2 / diagonal2 + v * alpha)
