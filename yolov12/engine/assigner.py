"""Task-aligned label assignment (TOOD, as used by YOLOv8/11/12).

For every ground-truth box (GT) the alignment metric of each anchor is ``t = s^alpha * IoU^beta``: ``s`` is the
predicted score of the GT's class, ``IoU`` the CIoU (clamped at 0) of the predicted box with the GT. Candidates are
the anchors whose centres lie strictly inside the GT; the ``topk`` candidates with the largest ``t`` become
positives of that GT. An anchor positive for several GTs goes to the GT (containing it) with the highest IoU. Soft
targets are the class one-hot times ``t / max t (of that GT) * max IoU (of that GT's positives)``.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch

from yolov12.utils.boxes import bbox_iou

logger = logging.getLogger(__name__)

__all__ = ["Assignment", "TaskAlignedAssigner"]


class Assignment(NamedTuple):
    """Targets for every anchor (B images, A anchors, nc classes).

    Attributes:
        labels: (B, A) int64 class of the assigned GT (meaningless where ``fg_mask`` is False).
        boxes: (B, A, 4) xyxy boxes of the assigned GT, same units as the GT input.
        scores: (B, A, nc) soft class targets (zero for background anchors).
        fg_mask: (B, A) bool, True for positive (foreground) anchors.
        gt_index: (B, A) int64 index into the M GTs of the image (0 where background).
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    fg_mask: torch.Tensor
    gt_index: torch.Tensor


def anchors_inside_boxes(anchor_points: torch.Tensor, gt_boxes: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """(A, 2) points and (B, M, 4) xyxy boxes -> (B, M, A) bool, True where the point lies strictly inside."""
    b, m, _ = gt_boxes.shape
    top_left, bottom_right = gt_boxes.view(-1, 1, 4).chunk(2, 2)  # (B*M, 1, 2)
    deltas = torch.cat((anchor_points[None] - top_left, bottom_right - anchor_points[None]), 2)
    return (deltas.amin(2) > eps).view(b, m, -1)


class TaskAlignedAssigner:
    """Assign ground truth to anchors by the task-alignment metric.

    Args:
        topk: positives per GT (at most; fewer when fewer anchors lie inside the GT).
        num_classes: number of classes ``nc``.
        alpha: exponent of the classification score in the metric.
        beta: exponent of the IoU in the metric.
        eps: numerical floor.

    Example:
        >>> assigner = TaskAlignedAssigner(topk=10, num_classes=80)
        >>> result = assigner(scores, boxes, anchor_points, gt_labels, gt_boxes, gt_mask)  # doctest: +SKIP
        >>> result.fg_mask.shape  # (B, A)  # doctest: +SKIP
    """

    def __init__(
        self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9
    ) -> None:
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        self.topk = topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def __call__(
        self,
        pred_scores: torch.Tensor,
        pred_boxes: torch.Tensor,
        anchor_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_mask: torch.Tensor,
    ) -> Assignment:
        """Assign targets.

        Args:
            pred_scores: (B, A, nc) class probabilities (after sigmoid).
            pred_boxes: (B, A, 4) predicted xyxy boxes in pixels.
            anchor_points: (A, 2) anchor centres in pixels.
            gt_labels: (B, M, 1) GT classes (padded rows arbitrary).
            gt_boxes: (B, M, 4) GT xyxy boxes in pixels (padded rows arbitrary).
            gt_mask: (B, M, 1) 1 for real GTs, 0 for padding.

        Returns:
            :class:`Assignment`; all-background when M == 0.
        """
        if gt_boxes.shape[1] == 0:
            return self._empty(pred_scores, pred_boxes)
        candidates = anchors_inside_boxes(anchor_points, gt_boxes) & gt_mask.bool()  # (B, M, A)
        metric, overlaps = self._metrics(pred_scores, pred_boxes, gt_labels, gt_boxes, candidates)
        positive = self._topk_mask(metric, gt_mask.bool()) & candidates
        positive, fg_mask, gt_index = self._resolve_multiple(positive, overlaps, candidates)
        labels, boxes, scores = self._targets(gt_labels, gt_boxes, gt_index, fg_mask)

        metric = metric * positive
        max_metric = metric.amax(-1, keepdim=True)  # (B, M, 1)
        max_overlap = (overlaps * positive).amax(-1, keepdim=True)
        normalised = (metric * max_overlap / (max_metric + self.eps)).amax(-2).unsqueeze(-1)  # (B, A, 1)
        return Assignment(labels, boxes, scores * normalised, fg_mask, gt_index)

    def _empty(self, pred_scores: torch.Tensor, pred_boxes: torch.Tensor) -> Assignment:
        b, a, _ = pred_scores.shape
        device = pred_scores.device
        return Assignment(
            torch.full((b, a), self.num_classes, dtype=torch.long, device=device),
            torch.zeros_like(pred_boxes),
            torch.zeros_like(pred_scores),
            torch.zeros((b, a), dtype=torch.bool, device=device),
            torch.zeros((b, a), dtype=torch.long, device=device),
        )

    def _metrics(
        self,
        pred_scores: torch.Tensor,
        pred_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_boxes: torch.Tensor,
        candidates: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment metric and CIoU (both (B, M, A), zero outside ``candidates``)."""
        b, m, a = candidates.shape
        labels = gt_labels.long().squeeze(-1).clamp(0, self.num_classes - 1)  # (B, M)
        class_scores = pred_scores.gather(2, labels[:, None, :].expand(b, a, m)).transpose(1, 2)  # (B, M, A)
        pd = pred_boxes[:, None].expand(b, m, a, 4)[candidates]
        gt = gt_boxes[:, :, None].expand(b, m, a, 4)[candidates]
        iou = bbox_iou(gt, pd, kind="ciou").clamp_(min=0).to(pred_boxes.dtype)  # only candidate pairs
        overlaps = torch.zeros((b, m, a), dtype=pred_boxes.dtype, device=pred_boxes.device)
        metric = torch.zeros_like(overlaps)
        overlaps[candidates] = iou
        metric[candidates] = class_scores[candidates].to(iou.dtype).pow(self.alpha) * iou.pow(self.beta)
        return metric, overlaps

    def _topk_mask(self, metric: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
        """(B, M, A) metric -> (B, M, A) bool marking each real GT's ``topk`` anchors."""
        k = min(self.topk, metric.shape[-1])
        top_index = metric.topk(k, dim=-1, largest=True).indices  # (B, M, k), distinct per row
        selected = torch.zeros_like(metric, dtype=torch.bool)
        selected.scatter_(-1, top_index, True)
        return selected & gt_mask

    @staticmethod
    def _resolve_multiple(
        positive: torch.Tensor, overlaps: torch.Tensor, candidates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """An anchor positive for several GTs goes to the GT with the highest IoU among all GTs that contain it.

        As published, that GT need not be one whose top-k picked the anchor. Unlike the published argmax over all
        GTs, GTs that do not contain the anchor are excluded, which only matters when every IoU is 0 (the published
        code then picks GT 0, possibly one that does not contain the anchor).

        Returns the resolved (B, M, A) mask, the (B, A) fg mask and the (B, A) assigned GT index.
        """
        m = positive.shape[1]
        counts = positive.sum(1)  # (B, A)
        if counts.max() > 1:
            best = overlaps.masked_fill(~candidates, -1.0).argmax(1)  # (B, A)
            is_best = torch.nn.functional.one_hot(best, m).transpose(1, 2).bool()  # (B, M, A)
            positive = torch.where((counts > 1)[:, None], is_best, positive)
        fg_mask = positive.any(1)
        gt_index = positive.to(torch.uint8).argmax(1)
        return positive, fg_mask, gt_index

    def _targets(
        self, gt_labels: torch.Tensor, gt_boxes: torch.Tensor, gt_index: torch.Tensor, fg_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather labels (B, A), boxes (B, A, 4) and one-hot scores (B, A, nc) of the assigned GTs."""
        labels = gt_labels.long().squeeze(-1).gather(1, gt_index).clamp_(0, self.num_classes - 1)
        boxes = gt_boxes.gather(1, gt_index[..., None].expand(-1, -1, 4))
        scores = torch.nn.functional.one_hot(labels, self.num_classes).to(gt_boxes.dtype)
        scores = scores * fg_mask[..., None]
        return labels, boxes, scores
