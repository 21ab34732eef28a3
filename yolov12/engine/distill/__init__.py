"""Gradient-aware knowledge distillation (GKD): frozen teachers, distillation terms, adaptive weighting.

``DistillationLoss`` wraps a task loss (detection or classification); :func:`yolov12.engine.losses.build_loss`
builds it when the training config's ``distill`` section names teachers. The per-task terms are in detection.py
(class KL, DFL-bin KL, neck imitation) and classification.py (logit KL); definitions in loss.py, terms.py,
weighting.py (ours, not the article's).
"""

from yolov12.engine.distill.loss import DISTILLERS, DistillationLoss
from yolov12.engine.distill.teachers import TeacherError, load_teachers
from yolov12.engine.distill.weighting import (
    PROBE_SCALE,
    GradientBalancer,
    anchor_weights,
    fade_factor,
    gradient_norm,
)

__all__ = ["DISTILLERS", "PROBE_SCALE", "DistillationLoss", "GradientBalancer", "TeacherError", "anchor_weights",
           "fade_factor", "gradient_norm", "load_teachers"]
