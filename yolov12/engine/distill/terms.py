"""Distillation terms per anchor: class KL, DFL-bin KL (with reg_max resampling), masked feature imitation.

Shapes: B images, A anchors (all levels concatenated, P3 first), R DFL bins per box side, nc classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split_maps(maps: list[torch.Tensor], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-level (B, 4R + nc, H_i, W_i) maps -> DFL logits (B, A, 4R) and class logits (B, A, nc), float32."""
    b, channels = maps[0].shape[:2]
    flat = torch.cat([m.float().reshape(b, channels, -1) for m in maps], 2).transpose(1, 2)
    return flat.split((channels - num_classes, num_classes), 2)


def class_kl(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, A) sum over classes of the Bernoulli KL(teacher || student) at temperature T, times T^2.

    ``teacher_probs`` are sigmoid(teacher logits / T). Zero (with zero gradient) when the student agrees.
    """
    cross = F.binary_cross_entropy_with_logits(student_logits / temperature, teacher_probs, reduction="none")
    entropy = -(torch.xlogy(teacher_probs, teacher_probs) + torch.xlogy(1 - teacher_probs, 1 - teacher_probs))
    return (cross - entropy).sum(-1) * temperature**2


def resampling_matrix(source_bins: int, target_bins: int, device: torch.device | None = None) -> torch.Tensor:
    """(source_bins, target_bins) matrix moving probability mass between DFL bin sets.

    Bins are distances in stride units (bin j is distance j) whatever reg_max is, so a source bin's mass goes to
    the target bins around the same distance by linear interpolation; mass beyond the target range goes to the
    last bin. Rows sum to 1 (mass is preserved); the expected distance is preserved while it lies in range.
    """
    matrix = torch.zeros(source_bins, target_bins, device=device)
    for j in range(source_bins):
        x = min(float(j), float(target_bins - 1))
        low = int(x)
        high = min(low + 1, target_bins - 1)
        matrix[j, low] += 1 - (x - low)
        matrix[j, high] += x - low
    return matrix


def bin_distribution(box_logits: torch.Tensor, target_bins: int, temperature: float) -> torch.Tensor:
    """(B, A, 4R_t) DFL logits -> (B, A, 4, target_bins) probabilities at temperature T (resampled if R differs)."""
    b, a, channels = box_logits.shape
    bins = channels // 4
    probs = (box_logits.view(b, a, 4, bins) / temperature).softmax(-1)
    if bins != target_bins:
        probs = probs @ resampling_matrix(bins, target_bins, probs.device)
    return probs


def bin_kl(student_box_logits: torch.Tensor, teacher_bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, A) sum over the 4 sides of KL(teacher bins || student bins) at temperature T, times T^2."""
    b, a, _ = student_box_logits.shape
    log_student = (student_box_logits.view(b, a, 4, -1) / temperature).log_softmax(-1)
    kl = torch.xlogy(teacher_bins, teacher_bins) - teacher_bins * log_student
    return kl.sum((-1, -2)) * temperature**2


class FeatureAdapters(nn.Module):
    """1x1 convs mapping each student neck level to each teacher's width (identity-initialised when equal)."""

    def __init__(self, student_channels: list[int], teacher_channels: list[list[int]]) -> None:
        super().__init__()
        self.adapters = nn.ModuleList()
        for channels in teacher_channels:
            per_level = nn.ModuleList()
            for cs, ct in zip(student_channels, channels):
                conv = nn.Conv2d(cs, ct, 1)
                if cs == ct:
                    with torch.no_grad():
                        conv.weight.copy_(torch.eye(cs).view(cs, cs, 1, 1))
                        conv.bias.zero_()
                per_level.append(conv)
            self.adapters.append(per_level)

    def forward(self, student: list[torch.Tensor], teacher_index: int | None = None
                ) -> list[torch.Tensor] | list[list[torch.Tensor]]:
        """Student levels [(B, C_s, H_i, W_i)] -> the levels at teacher ``teacher_index``'s widths, or for every
        teacher (a list per teacher) when it is None: one call per step, as a DDP-wrapped module needs."""
        if teacher_index is not None:
            return [conv(f.float()) for conv, f in zip(self.adapters[teacher_index], student)]
        return [[conv(f.float()) for conv, f in zip(per_level, student)] for per_level in self.adapters]


def feature_imitation(adapted: list[torch.Tensor], teacher: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Scalar: per-location squared error (mean over channels), weighted by ``weights`` (B, A), weighted mean."""
    errors = torch.cat([(s - t).pow(2).mean(1).flatten(1) for s, t in zip(adapted, teacher)], 1)  # (B, A)
    return (errors * weights).sum() / weights.sum().clamp(min=1e-9)


def logit_kl(student_logits: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B,) KL(teacher || student) of the softmax class distributions at temperature T, times T^2.

    ``student_logits`` (B, nc); ``teacher_log_probs`` (B, nc): log of the teachers' softened probabilities,
    ``log_softmax(z_t / T)`` (averaged over teachers in probability space). T^2 keeps the gradient's scale
    independent of T (Hinton et al.). Exactly zero when the student's ``log_softmax(z_s / T)`` equals them.
    """
    log_student = (student_logits.float() / temperature).log_softmax(-1)
    kl = F.kl_div(log_student, teacher_log_probs, reduction="none", log_target=True)
    return kl.sum(-1) * temperature**2
