"""One table of metric names: each metric as the engine, Ray reports and MLflow/Tune spell it.

Three spellings exist because three audiences read them:

- ``engine``: the training loop's key and the ``results.csv`` column, in Ultralytics' spelling
  (``metrics/mAP50-95(B)``), so users' scripts and plots keep working.
- ``short``: the flat name Ray Train and Tune reports carry as well, which checkpoints and trials are ranked by
  (``mAP50-95``); only the ranking metrics have one.
- ``safe``: the key MLflow and Tune accept (only ``[\\w\\-. :/]``): ``metrics/mAP50-95_B``.

Example:
    >>> find_metric("mAP50-95").safe
    'metrics/mAP50-95_B'
    >>> safe_name("metrics/mAP50-95(B)"), safe_name("hparam/lr0")
    ('metrics/mAP50-95_B', 'hparam/lr0')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Goal = Literal["max", "min"]

__all__ = [
    "ACCURACY_TOP1", "ACCURACY_TOP5", "AR50_95", "AR50_95_LARGE", "AR50_95_MEDIUM", "AR50_95_SMALL", "FITNESS",
    "IMAGES_PER_SECOND", "LEARNING_RATE", "MAP50", "MAP50_95", "MAP50_95_LARGE", "MAP50_95_MEDIUM", "MAP50_95_SMALL",
    "MAP75", "METRICS", "PRECISION", "RECALL", "SKIPPED_STEPS", "TOTAL_LOSS", "Goal", "MetricName",
    "UnknownMetricError", "find_metric", "loss_column", "objectives", "safe_name", "short_aliases",
    "total_training_loss",
]

_UNSAFE_CHARACTERS = re.compile(r"[^\w\-. :/]+")


class UnknownMetricError(LookupError):
    """A name that no row of :data:`METRICS` spells."""


@dataclass(frozen=True)
class MetricName:
    """One metric under each of its names.

    Attributes:
        engine: loop key and results.csv column; None for metrics derived after the epoch (``fitness``, ``loss``).
        safe: MLflow / Tune key.
        short: flat alias in Ray Train / Tune reports; None when the metric is reported under ``engine`` only.
        goal: which direction is better, for metrics that can be an objective; None for diagnostics.
    """

    engine: str | None
    safe: str
    short: str | None = None
    goal: Goal | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling of this metric (engine, short, safe), without repeats."""
        return tuple(dict.fromkeys(n for n in (self.engine, self.short, self.safe) if n is not None))


def loss_column(part: str) -> str:
    """The results.csv column of one named loss part: ``"box"`` -> ``"train/box_loss"``."""
    return f"train/{part}_loss"


def _loss(part: str) -> MetricName:
    return MetricName(loss_column(part), loss_column(part), goal="min")


def _distill(statistic: str) -> MetricName:
    return MetricName(f"distill/{statistic}", f"distill/{statistic}")


PRECISION = MetricName("metrics/precision(B)", "metrics/precision_B", goal="max")
RECALL = MetricName("metrics/recall(B)", "metrics/recall_B", goal="max")
MAP50 = MetricName("metrics/mAP50(B)", "metrics/mAP50_B", "mAP50", "max")
MAP75 = MetricName("metrics/mAP75(B)", "metrics/mAP75_B", goal="max")
MAP50_95 = MetricName("metrics/mAP50-95(B)", "metrics/mAP50-95_B", "mAP50-95", "max")
# COCO size ranges (absolute pixel areas: small < 32², medium < 96², large above) and average recall (AR), each over
# IoU 0.5:0.95 (yolov12.eval.detection_metrics.DetectionMetrics); -1 when no ground-truth box falls in the range.
MAP50_95_SMALL = MetricName("metrics/mAP50-95_small(B)", "metrics/mAP50-95_small_B", goal="max")
MAP50_95_MEDIUM = MetricName("metrics/mAP50-95_medium(B)", "metrics/mAP50-95_medium_B", goal="max")
MAP50_95_LARGE = MetricName("metrics/mAP50-95_large(B)", "metrics/mAP50-95_large_B", goal="max")
AR50_95 = MetricName("metrics/AR50-95(B)", "metrics/AR50-95_B", goal="max")
AR50_95_SMALL = MetricName("metrics/AR50-95_small(B)", "metrics/AR50-95_small_B", goal="max")
AR50_95_MEDIUM = MetricName("metrics/AR50-95_medium(B)", "metrics/AR50-95_medium_B", goal="max")
AR50_95_LARGE = MetricName("metrics/AR50-95_large(B)", "metrics/AR50-95_large_B", goal="max")
ACCURACY_TOP1 = MetricName("metrics/accuracy_top1", "metrics/accuracy_top1", "accuracy_top1", "max")
ACCURACY_TOP5 = MetricName("metrics/accuracy_top5", "metrics/accuracy_top5", goal="max")
IMAGES_PER_SECOND = MetricName("train/images_per_s", "train/images_per_s")
SKIPPED_STEPS = MetricName("train/skipped_steps", "train/skipped_steps")  # mixed precision: inf/NaN gradients
LEARNING_RATE = MetricName("lr/pg0", "lr/pg0")  # first parameter group, at the epoch's last step
FITNESS = MetricName(None, "fitness", "fitness", "max")  # yolov12.engine.evaluate.fitness: best.safetensors rule
TOTAL_LOSS = MetricName(None, "loss", "loss", "min")  # sum of the train/*_loss parts (total_training_loss)

METRICS: tuple[MetricName, ...] = (
    # Losses per named part: detection (box, cls, dfl), classification (cls), distillation terms.
    *(_loss(part) for part in ("box", "cls", "dfl", "distill_cls", "distill_box", "distill_feat")),
    IMAGES_PER_SECOND, SKIPPED_STEPS, LEARNING_RATE,
    # Distillation diagnostics (yolov12.engine.distill.loss.DistillationLoss.epoch_metrics).
    *(_distill(statistic) for statistic in ("weight", "grad_norm_det", "grad_norm_kd", "grad_ratio", "fade",
                                            "raw_cls", "raw_box", "raw_feat")),
    PRECISION, RECALL, MAP50_95, MAP50, MAP75,
    MAP50_95_SMALL, MAP50_95_MEDIUM, MAP50_95_LARGE, AR50_95, AR50_95_SMALL, AR50_95_MEDIUM, AR50_95_LARGE,
    ACCURACY_TOP1, ACCURACY_TOP5, FITNESS, TOTAL_LOSS,
)
_BY_NAME: dict[str, MetricName] = {name: metric for metric in METRICS for name in metric.names}


def find_metric(name: str) -> MetricName:
    """The row of ``name`` in any of its spellings (engine, short or safe).

    Raises:
        UnknownMetricError: no row spells ``name``; the message suggests the closest names.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownMetricError(f"unknown metric {name!r}{hint} Metrics are listed in yolov12.eval.metric_names.METRICS")


def safe_name(name: str) -> str:
    """The MLflow/Tune key of ``name`` as spelled: unsafe characters become ``_``.

    Each spelling keeps its own key: the engine name gives the row's ``safe`` name, and a short name (``mAP50-95``,
    already safe) stays itself, so a report that carries both keeps both.

    Example:
        >>> safe_name("metrics/mAP50(B)"), safe_name("mAP50"), safe_name("train.optim.lr0")
        ('metrics/mAP50_B', 'mAP50', 'train.optim.lr0')
    """
    return _UNSAFE_CHARACTERS.sub("_", name).strip("_") or "_"


def short_aliases(metrics: Mapping[str, float]) -> dict[str, float]:
    """The short aliases of the engine metrics present: ``{"metrics/mAP50-95(B)": 0.4}`` -> ``{"mAP50-95": 0.4}``."""
    return {row.short: float(metrics[row.engine]) for row in METRICS
            if row.short is not None and row.engine is not None and row.engine in metrics}


def objectives() -> dict[str, Goal]:
    """The short names trials report that a sweep can rank by, with their better direction."""
    return {row.short: row.goal for row in METRICS if row.short is not None and row.goal is not None}


def total_training_loss(metrics: Mapping[str, float]) -> float:
    """:data:`TOTAL_LOSS`: the sum of an epoch's ``train/*_loss`` parts."""
    return float(sum(value for key, value in metrics.items() if key.startswith("train/") and key.endswith("_loss")))
