"""Detection loss of the YOLOv8/11/12 recipe: task-aligned assignment, BCE classes, CIoU boxes, DFL.

Parts (ungained, each divided by ``S`` = sum of the assigner's target scores, at least 1):
    cls = sum BCE(logits, target_scores) / S
    box = sum_fg (1 - CIoU) * w / S
    dfl = sum_fg DFL * w / S
Gains box 7.5, cls 0.5, dfl 1.5.

Scale convention (published): the returned scalar is ``(7.5 box + 0.5 cls + 1.5 dfl) * batch_size``, the per-image
loss summed over the batch, so that with gradient accumulation up to the nominal batch ``nbs`` the gradient
magnitude matches the published ``lr0`` (0.01 for SGD). The ``parts`` dict holds the gained values *per image*
(``box``, ``cls``, ``dfl``; sum(parts) * batch_size == loss), detached, which is what is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from yolov12.engine.assigner import TaskAlignedAssigner
from yolov12.engine.losses.box_regression import box_regression_loss
from yolov12.nn.heads import dist2bbox, make_anchors
from yolov12.utils.boxes import cxcywh_to_xyxy

logger = logging.getLogger(__name__)

__all__ = ["DetectionLoss", "decode_distribution", "prepare_targets"]


def prepare_targets(
    batch: dict[str, torch.Tensor], batch_size: int, image_size: tuple[int, int], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat batch targets -> per-image padded targets.

    Args:
        batch: ``batch_index`` (N,) int64, ``classes`` (N,) int64, ``boxes`` (N, 4) normalised cx, cy, w, h.
        batch_size: B.
        image_size: (height, width) of the network input in pixels.
        device: where to put the result (default: the device of ``batch["boxes"]``).

    Returns:
        labels (B, M, 1) float, boxes (B, M, 4) xyxy pixels, mask (B, M, 1) bool; M = most objects in one image
        (0 when the batch has none).
    """
    boxes = batch["boxes"].to(device=device, dtype=torch.float32)
    device = boxes.device
    batch_index = batch["batch_index"].to(device=device, dtype=torch.long).view(-1)
    classes = batch["classes"].to(device=device, dtype=torch.float32).view(-1)
    counts = torch.bincount(batch_index, minlength=batch_size) if batch_index.numel() else None
    m = int(counts.max()) if counts is not None else 0
    labels = torch.zeros((batch_size, m, 1), device=device)
    padded = torch.zeros((batch_size, m, 4), device=device)
    mask = torch.zeros((batch_size, m, 1), dtype=torch.bool, device=device)
    if m == 0:
        return labels, padded, mask
    order = torch.argsort(batch_index, stable=True)
    sorted_index = batch_index[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(order), device=device) - starts[sorted_index]
    height, width = image_size
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=device)
    labels[sorted_index, slot, 0] = classes[order]
    padded[sorted_index, slot] = cxcywh_to_xyxy(boxes[order] * scale)
    mask[sorted_index, slot, 0] = True
    return labels, padded, mask


def decode_distribution(pred_distribution: torch.Tensor, anchor_points: torch.Tensor) -> torch.Tensor:
    """(B, A, 4 * reg_max) bin logits and (A, 2) anchor points -> (B, A, 4) xyxy boxes (expected distances).

    Units are those of ``anchor_points`` (stride units in the loss).
    """
    b, a, channels = pred_distribution.shape
    reg_max = channels // 4
    bins = torch.arange(reg_max, dtype=pred_distribution.dtype, device=pred_distribution.device)
    distances = pred_distribution.view(b, a, 4, reg_max).softmax(3) @ bins
    return dist2bbox(distances, anchor_points, cxcywh=False)


class DetectionLoss:
    """Loss for the anchor-free DFL ``Detect`` head.

    Args:
        num_classes: classes ``nc``.
        strides: stride of each output level, e.g. (8, 16, 32).
        reg_max: DFL bins per box side.
        box_gain, cls_gain, dfl_gain: weights of the parts.
        topk, alpha, beta: :class:`TaskAlignedAssigner` settings.

    Example:
        >>> loss_fn = DetectionLoss(num_classes=2, strides=(8, 16, 32))
        >>> loss, parts = loss_fn(model(batch["images"].float() / 255), batch)  # doctest: +SKIP
        >>> loss.backward(); sorted(parts)  # doctest: +SKIP
        ['box', 'cls', 'dfl']
    """

    def __init__(
        self,
        num_classes: int,
        strides: Sequence[float] | torch.Tensor,
        reg_max: int = 16,
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
    ) -> None:
        self.num_classes = num_classes
        self.strides = [float(s) for s in (strides.tolist() if isinstance(strides, torch.Tensor) else strides)]
        self.reg_max = reg_max
        self.gains = {"box": box_gain, "cls": cls_gain, "dfl": dfl_gain}
        self.assigner = TaskAlignedAssigner(topk=topk, num_classes=num_classes, alpha=alpha, beta=beta)

    @classmethod
    def from_model(cls, model: torch.nn.Module, **kwargs: Any) -> DetectionLoss:
        """Read ``num_classes``, strides and ``reg_max`` from a detection model's head (``model.head``)."""
        head = model.head
        return cls(head.nc, head.stride, reg_max=head.reg_max, **kwargs)

    def __call__(
        self, maps: list[torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of the training-mode head output.

        Args:
            maps: per-level (B, 4 * reg_max + nc, H_i, W_i) raw maps.
            batch: ``batch_index`` (N,), ``classes`` (N,), ``boxes`` (N, 4) normalised cx, cy, w, h.

        Returns:
            ``(loss, parts)``: scalar ``sum(gain * part) * B`` for backward, and detached per-image gained parts
            ``{"box", "cls", "dfl"}``. Computed in float32 even under autocast.
        """
        if len(maps) != len(self.strides):
            raise ValueError(f"got {len(maps)} feature maps for {len(self.strides)} strides {self.strides}")
        with torch.autocast(device_type=maps[0].device.type, enabled=False):
            parts = self._parts([m.float() for m in maps], batch)
        gained = {name: value * self.gains[name] for name, value in parts.items()}
        batch_size = maps[0].shape[0]
        total = (gained["box"] + gained["cls"] + gained["dfl"]) * batch_size
        return total, {name: value.detach() for name, value in gained.items()}

    def _parts(self, maps: list[torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Ungained box, cls and dfl losses (scalars)."""
        b, device = maps[0].shape[0], maps[0].device
        channels = 4 * self.reg_max + self.num_classes
        if maps[0].shape[1] != channels:
            raise ValueError(f"maps have {maps[0].shape[1]} channels; expected 4*{self.reg_max} + {self.num_classes}")
        flat = torch.cat([m.view(b, channels, -1) for m in maps], 2).transpose(1, 2)  # (B, A, C)
        pred_distribution, pred_logits = flat.split((4 * self.reg_max, self.num_classes), 2)
        strides = torch.tensor(self.strides, device=device)
        anchor_points, stride_column = make_anchors(maps, strides, 0.5)  # (A, 2) cells, (A, 1)
        image_size = (int(maps[0].shape[2] * self.strides[0]), int(maps[0].shape[3] * self.strides[0]))
        gt_labels, gt_boxes, gt_mask = prepare_targets(batch, b, image_size, device)

        pred_boxes = decode_distribution(pred_distribution, anchor_points)  # (B, A, 4) cells
        assigned = self.assigner(
            pred_logits.detach().sigmoid(), pred_boxes.detach() * stride_column, anchor_points * stride_column,
            gt_labels, gt_boxes, gt_mask,
        )
        target_scores_sum = assigned.scores.sum().clamp(min=1.0)
        cls = F.binary_cross_entropy_with_logits(pred_logits, assigned.scores, reduction="none").sum()
        cls = cls / target_scores_sum
        if assigned.fg_mask.any():
            box, dfl = box_regression_loss(
                pred_distribution, pred_boxes, anchor_points, assigned.boxes / stride_column, assigned.scores,
                target_scores_sum, assigned.fg_mask,
            )
        else:  # keep the box branch in the graph (zero gradient) so that DDP sees every parameter used
            box = dfl = pred_distribution.sum() * 0.0
        return {"box": box, "cls": cls, "dfl": dfl}
