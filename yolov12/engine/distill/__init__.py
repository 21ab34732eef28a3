"""Gradient-aware knowledge distillation (GKD): frozen teachers, distillation terms, adaptive weighting.

``DistillationLoss`` wraps the detection loss; :func:`yolov12.engine.losses.build_loss` builds it when the training
config's ``distill`` section names teachers. Definitions in loss.py, terms.py, weighting.py (ours, not the article's).
"""

from yolov12.engine.distill.loss import DistillationLoss
from yolov12.engine.distill.teachers import TeacherError, load_teachers
from yolov12.engine.distill.weighting import GradientBalancer, anchor_weights, fade_factor, gradient_norm

__all__ = ["DistillationLoss", "GradientBalancer", "TeacherError", "anchor_weights", "fade_factor", "gradient_norm",
           "load_teachers"]
