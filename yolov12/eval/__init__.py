"""Validation metrics and plots: COCO detection metrics (pycocotools), classification accuracy, run-folder plots."""

from yolov12.eval.classification_metrics import (
    ClassificationEvaluator,
    ClassificationMetrics,
    confusion_matrix,
    topk_accuracy,
)
from yolov12.eval.detection_metrics import COCOEvaluator, DetectionMetrics, evaluate_detections

__all__ = [
    "COCOEvaluator", "ClassificationEvaluator", "ClassificationMetrics", "DetectionMetrics", "confusion_matrix",
    "evaluate_detections", "topk_accuracy",
]
