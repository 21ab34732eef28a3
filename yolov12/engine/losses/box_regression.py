"""Box regression terms of the detection loss: CIoU loss and distribution focal loss (DFL).

Published formulas (Generalized Focal Loss; YOLOv8 recipe):
    box = sum_fg (1 - CIoU(pred, target)) * w / S
    dfl = sum_fg mean_sides[CE(logits, l) * (l + 1 - t) + CE(logits, l + 1) * (t - l)] * w / S,  l = floor(t)
where ``w`` is the anchor's target score (summed over classes), ``S`` the sum of all target scores, and ``t`` the
distance from the anchor to a target side in stride units, clamped to ``[0, reg_max - 1 - 0.01]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from yolov12.utils.boxes import bbox_iou

__all__ = ["box_regression_loss", "boxes_to_distances", "distribution_focal_loss"]

DFL_MARGIN = 0.01  # targets stay below the last bin so that floor(t) + 1 is a valid bin


def boxes_to_distances(anchor_points: torch.Tensor, boxes: torch.Tensor, reg_max: int) -> torch.Tensor:
    """(A, 2) anchor points and (..., A, 4) xyxy boxes -> (..., A, 4) distances (left, top, right, bottom).

    Distances are clamped to ``[0, reg_max - 1 - 0.01]`` (all in the same units, stride units in the loss).
    """
    top_left, bottom_right = boxes.chunk(2, -1)
    distances = torch.cat((anchor_points - top_left, bottom_right - anchor_points), -1)
    return distances.clamp(0, reg_max - 1 - DFL_MARGIN)


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL: cross-entropy towards the two bins around a continuous target.

    Args:
        logits: (N, 4, reg_max) bin logits per box side.
        target: (N, 4) continuous targets in ``[0, reg_max - 1)``.

    Returns:
        (N, 1) loss per box (mean over the four sides).
    """
    n, sides, reg_max = logits.shape
    left = target.long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = 1 - weight_left
    flat = logits.reshape(-1, reg_max)
    loss_left = F.cross_entropy(flat, left.reshape(-1), reduction="none").view(n, sides)
    loss_right = F.cross_entropy(flat, right.reshape(-1), reduction="none").view(n, sides)
    return (loss_left * weight_left + loss_right * weight_right).mean(-1, keepdim=True)


def box_regression_loss(
    pred_distribution: torch.Tensor,
    pred_boxes: torch.Tensor,
    anchor_points: torch.Tensor,
    target_boxes: torch.Tensor,
    target_scores: torch.Tensor,
    target_scores_sum: torch.Tensor | float,
    fg_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIoU and DFL losses over the foreground anchors (ungained).

    Args:
        pred_distribution: (B, A, 4 * reg_max) raw bin logits.
        pred_boxes: (B, A, 4) decoded xyxy boxes in stride units (grid cells).
        anchor_points: (A, 2) anchor centres in stride units.
        target_boxes: (B, A, 4) assigned xyxy boxes in stride units.
        target_scores: (B, A, nc) soft targets from the assigner.
        target_scores_sum: normaliser ``S`` (>= 1).
        fg_mask: (B, A) bool foreground anchors (at least one).

    Returns:
        Scalars (box, dfl).
    """
    reg_max = pred_distribution.shape[-1] // 4
    weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)  # (F, 1)
    iou = bbox_iou(pred_boxes[fg_mask], target_boxes[fg_mask], kind="ciou").unsqueeze(-1)
    box = ((1.0 - iou) * weight).sum() / target_scores_sum
    target_distances = boxes_to_distances(anchor_points, target_boxes, reg_max)[fg_mask]  # (F, 4)
    logits = pred_distribution[fg_mask].view(-1, 4, reg_max)
    dfl = (distribution_focal_loss(logits, target_distances) * weight).sum() / target_scores_sum
    return box, dfl
