"""Plots written to a run folder: PR curve, confusion matrix, results.csv curves, image grids with boxes.

Every function draws on its own ``matplotlib.figure.Figure`` with an explicit Agg canvas and writes a PNG. pyplot is
never imported, so no global backend is selected (not at import, not when called) and a user's interactive backend
is left alone; this is the stricter form of calling ``matplotlib.use("Agg")`` inside each function.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from yolov12.utils.boxes import cxcywh_to_xyxy

logger = logging.getLogger(__name__)

__all__ = [
    "plot_confusion_matrix", "plot_image_grid", "plot_pr_curve", "plot_predictions", "plot_results",
    "plot_training_batch",
]

NamesLike = Mapping[int, str] | Sequence[str] | None
_COLOURS = ["#FF3838", "#2C99A8", "#FF9D97", "#1A9334", "#FF701F", "#00D4BB", "#FFB21D", "#3DDB86", "#CFD231",
            "#48F90A", "#92CC17", "#00C2FF", "#344593", "#6473FF", "#0018EC", "#8438FF", "#520085", "#CB38FF"]


def _name(names: NamesLike, index: int) -> str:
    if names is None:
        return str(index)
    if isinstance(names, Mapping):
        return str(names.get(index, index))
    return str(names[index]) if 0 <= index < len(names) else str(index)


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), tight_layout=True)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path, dpi: int = 150) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format="png")
    logger.debug("wrote plot %s", path)
    return path


def _to_numpy(values: Any, dtype: type | None = None) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def plot_pr_curve(
    recall: np.ndarray, precision_per_class: Mapping[int, np.ndarray], path: str | Path, names: NamesLike = None
) -> Path:
    """Precision-recall curves at IoU 0.5, one thin line per class and the class mean in bold.

    Args:
        recall: (R,) recall points (e.g. ``DetectionMetrics.recall_thresholds``).
        precision_per_class: class -> (R,) interpolated precision (e.g. ``DetectionMetrics.pr_curves``).
        path: PNG to write.
        names: class names (index -> name).
    """
    figure = _figure(9, 6)
    axes = figure.add_subplot()
    curves = {c: _to_numpy(p, np.float64) for c, p in precision_per_class.items()}
    label_each = len(curves) <= 20
    for c, precision in curves.items():
        axes.plot(recall, precision, linewidth=1, label=f"{_name(names, c)} {precision.mean():.3f}" if label_each
                  else None)
    if curves:
        mean = np.mean(np.stack(list(curves.values())), 0)
        axes.plot(recall, mean, linewidth=3, color="blue", label=f"all classes {mean.mean():.3f} mAP@0.5")
        axes.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    axes.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1), title="Precision-Recall Curve")
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, path: str | Path, names: NamesLike = None, normalise: bool = True
) -> Path:
    """(C, C) confusion matrix (rows true, columns predicted) as a heat map; ``normalise`` divides rows by their sum.

    Cells are annotated when C <= 30.
    """
    matrix = _to_numpy(matrix, np.float64)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(1, keepdims=True), 1e-9)
    c = len(matrix)
    size = min(max(6.0, 0.45 * c + 2), 24.0)
    figure = _figure(size, size * 0.85)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0 if normalise else None)
    figure.colorbar(image, ax=axes, fraction=0.046)
    if c <= 30:
        labels = [_name(names, i) for i in range(c)]
        axes.set_xticks(range(c), labels, rotation=90)
        axes.set_yticks(range(c), labels)
        threshold = matrix.max() / 2 if matrix.size else 0
        for i, j in np.ndindex(matrix.shape):
            if matrix[i, j] > 0:
                text = f"{matrix[i, j]:.2f}" if normalise else f"{int(matrix[i, j])}"
                axes.text(j, i, text, ha="center", va="center", fontsize=7,
                          color="white" if matrix[i, j] > threshold else "black")
    axes.set(xlabel="Predicted", ylabel="True", title="Confusion Matrix" + (" (normalised)" if normalise else ""))
    return _save(figure, path)


def _read_results(csv_path: str | Path) -> dict[str, np.ndarray]:
    """Numeric columns of a results.csv (header names stripped; non-numeric columns dropped)."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle, skipinitialspace=True))
    columns: dict[str, np.ndarray] = {}
    for name in rows[0].keys() if rows else []:
        try:
            columns[name.strip()] = np.array([float(row[name]) for row in rows])
        except (TypeError, ValueError):
            continue
    return columns


def plot_results(csv_path: str | Path, path: str | Path) -> Path:
    """One small plot per numeric column of ``csv_path`` against ``epoch`` (or the row number)."""
    columns = _read_results(csv_path)
    if not columns:
        raise ValueError(f"{csv_path} has no numeric columns to plot")
    x = columns.pop("epoch", None)
    series = list(columns.items())
    cols = min(5, max(len(series), 1))
    rows = math.ceil(len(series) / cols)
    figure = _figure(3.2 * cols, 2.6 * rows)
    for i, (name, values) in enumerate(series):
        axes = figure.add_subplot(rows, cols, i + 1)
        axes.plot(np.arange(1, len(values) + 1) if x is None else x, values, marker=".", linewidth=1.5)
        axes.set_title(name, fontsize=9)
    return _save(figure, path)


def plot_image_grid(
    images: Any,
    boxes: Sequence[Any],
    classes: Sequence[Any],
    path: str | Path,
    scores: Sequence[Any] | None = None,
    names: NamesLike = None,
    max_images: int = 16,
    bgr: bool = False,
) -> Path:
    """A grid of images with their boxes.

    Args:
        images: (B, 3, H, W) uint8 (or float in [0, 1]) tensor/array, RGB unless ``bgr``.
        boxes: per image (K_i, 4) xyxy boxes in pixels of ``images``.
        classes: per image (K_i,) class indices.
        path: PNG to write.
        scores: optional per image (K_i,) confidences (shown after the name).
        names: class names.
        max_images: at most this many images are drawn.
    """
    images = _to_numpy(images)[:max_images]
    if images.dtype != np.uint8:
        images = (np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    images = images.transpose(0, 2, 3, 1)[..., ::-1] if bgr else images.transpose(0, 2, 3, 1)
    count = max(len(images), 1)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    figure = _figure(3 * cols, 3 * rows)
    for i, image in enumerate(images):
        axes = figure.add_subplot(rows, cols, i + 1)
        axes.imshow(image)
        axes.set_axis_off()
        image_scores = _to_numpy(scores[i], np.float64) if scores is not None else None
        _draw_boxes(axes, _to_numpy(boxes[i], np.float64).reshape(-1, 4),
                    _to_numpy(classes[i], np.int64).reshape(-1), image_scores, names)
    return _save(figure, path, dpi=100)


def _draw_boxes(axes: Any, boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray | None,
                names: NamesLike) -> None:
    for j, (x1, y1, x2, y2) in enumerate(boxes):
        colour = _COLOURS[int(classes[j]) % len(_COLOURS)]
        axes.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.2))
        label = _name(names, int(classes[j])) + (f" {scores[j]:.2f}" if scores is not None else "")
        axes.text(x1, y1, label, fontsize=6, color="white", va="bottom",
                  bbox={"facecolor": colour, "edgecolor": "none", "pad": 0.5})


def plot_training_batch(batch: Mapping[str, Any], path: str | Path, names: NamesLike = None,
                        max_images: int = 16) -> Path:
    """A training batch (``images``, ``batch_index``, ``classes``, normalised cx, cy, w, h ``boxes``) as a grid."""
    images = _to_numpy(batch["images"])
    b, _, height, width = images.shape
    index = _to_numpy(batch["batch_index"], np.int64).reshape(-1)
    classes = _to_numpy(batch["classes"], np.int64).reshape(-1)
    boxes = cxcywh_to_xyxy(_to_numpy(batch["boxes"], np.float64).reshape(-1, 4)) * [width, height, width, height]
    per_image = [index == i for i in range(min(b, max_images))]
    return plot_image_grid(images, [boxes[m] for m in per_image], [classes[m] for m in per_image], path,
                           names=names, max_images=max_images)


def plot_predictions(
    images: Any, predictions: Sequence[Mapping[str, Any]], path: str | Path, names: NamesLike = None,
    confidence: float = 0.25, max_images: int = 16,
) -> Path:
    """Predictions (per image ``boxes`` xyxy pixels, ``scores``, ``classes``) above ``confidence`` as a grid."""
    boxes, classes, scores = [], [], []
    for prediction in predictions[:max_images]:
        keep = _to_numpy(prediction["scores"], np.float64).reshape(-1) >= confidence
        boxes.append(_to_numpy(prediction["boxes"], np.float64).reshape(-1, 4)[keep])
        classes.append(_to_numpy(prediction["classes"], np.int64).reshape(-1)[keep])
        scores.append(_to_numpy(prediction["scores"], np.float64).reshape(-1)[keep])
    return plot_image_grid(images, boxes, classes, path, scores=scores, names=names, max_images=max_images)
