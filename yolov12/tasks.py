"""The per-task table: what differs between detection and classification, in one typed record per task.

Everything the library dispatches on a model's task is read from :data:`TASKS` (``task_spec(model.task)``) instead of
``if task == "detect"`` branches: the default input size, how images become a batch (letterbox or resize + centre
crop), how raw output becomes :class:`~yolov12.infer.Results`, the loss, the validation metrics and the checkpoint
fitness, the training data pipeline and the end-of-training plots.

Functions are stored as import paths (:class:`LazyFunction`) and imported on first use, so ``import yolov12.tasks``
costs nothing and creates no import circle: predict needs no loss module, and the trainer no exporter.

Example:
    >>> from yolov12.tasks import task_spec
    >>> spec = task_spec("classify")
    >>> spec.default_image_size, spec.predicts_boxes
    (224, False)
    >>> batch = spec.prepare_batch([np.zeros((300, 400, 3), np.uint8)], spec.default_image_size)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["TASKS", "LazyFunction", "TaskSpec", "UnknownTaskError", "task_spec"]


class UnknownTaskError(ValueError, KeyError):
    """No task of that name is in :data:`TASKS`; the message lists the known tasks.

    A ``ValueError`` (a bad task setting) and a ``KeyError`` (a failed table lookup).
    """

    __str__ = ValueError.__str__  # KeyError would quote the message


@dataclass(frozen=True)
class LazyFunction:
    """A function named by ``"package.module:function"``, imported when first called (picklable, cheap to hold).

    Example:
        >>> LazyFunction("math:sqrt")(4.0)
        2.0
    """

    target: str

    def resolve(self) -> Any:
        """Import the module and return the function (pass this to code that calls it often or pickles it)."""
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise ImportError(f"{module_name} has no {attribute!r}; the task table entry {self.target!r} is stale, "
                              "fix it in yolov12/tasks.py") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


@dataclass(frozen=True)
class TaskSpec:
    """What one task does differently. Every function entry has the same signature across tasks.

    Attributes:
        name: the task's name, as models, checkpoints and exported artifacts record it.
        description: what the task is in words, for messages (``"detection"``).
        default_image_size: input side in pixels when none is given (training, validation, predict, export).
        predicts_boxes: the model outputs boxes (NMS, COCO-format predictions, in-graph NMS, anchor axes).
        supports_distillation: gradient-aware knowledge distillation from teachers is implemented.
        prepare_batch: ``(images, imgsz, stride=32) -> PreparedBatch``: BGR uint8 images to one input canvas.
        postprocess: ``(outputs, images, letterboxes, names, *, conf, iou, max_det, classes, agnostic, end2end,
            paths) -> list[Results]``: raw engine output of a batch to one result per image.
        build_loss: ``(model, section) -> loss``: the loss, configured from the training config's ``loss`` section.
        evaluate: ``(model, loader, names, device, conf=0.001, iou=0.7, max_det=300, save_json=None,
            plots_dir=None, verbose=False) -> dict[str, float]``: validation metrics (classifiers ignore the
            detection settings conf, iou and max_det).
        fitness: ``(metrics) -> float``: the number checkpoints are ranked by.
        collate: ``(samples) -> dict``: a data-loader batch from dataset items.
        dataset_transform: ``(augment, imgsz, dataset, training) -> (transform, epoch-aware pipeline or None)``:
            the per-item transform of a training (augmented) or validation dataset.
        validation_plots: ``(run_dir, model, val_loader, names, device) -> list[Path]``: end-of-training plots.
    """

    name: str
    description: str
    default_image_size: int
    predicts_boxes: bool
    supports_distillation: bool
    prepare_batch: LazyFunction
    postprocess: LazyFunction
    build_loss: LazyFunction
    evaluate: LazyFunction
    fitness: LazyFunction
    collate: LazyFunction
    dataset_transform: LazyFunction
    validation_plots: LazyFunction

    def functions(self) -> dict[str, LazyFunction]:
        """The function entries by field name (what a test resolves to check the table)."""
        return {name: value for name, value in vars(self).items() if isinstance(value, LazyFunction)}


TASKS: dict[str, TaskSpec] = {
    "detect": TaskSpec(
        name="detect",
        description="detection",
        default_image_size=640,
        predicts_boxes=True,
        supports_distillation=True,
        prepare_batch=LazyFunction("yolov12.infer.preprocess:letterbox_batch"),
        postprocess=LazyFunction("yolov12.infer.postprocess:detection_results"),
        build_loss=LazyFunction("yolov12.engine.losses:build_detection_loss"),
        evaluate=LazyFunction("yolov12.engine.evaluate:evaluate_detection"),
        fitness=LazyFunction("yolov12.engine.evaluate:detection_fitness"),
        collate=LazyFunction("yolov12.data.augment.formatting:collate_detection"),
        dataset_transform=LazyFunction("yolov12.engine.data_setup:detection_dataset_transform"),
        validation_plots=LazyFunction("yolov12.engine.run_plots:write_detection_validation_plots"),
    ),
    "classify": TaskSpec(
        name="classify",
        description="classification",
        default_image_size=224,  # classifiers are trained and published at 224 px
        predicts_boxes=False,
        supports_distillation=True,
        prepare_batch=LazyFunction("yolov12.infer.preprocess:center_crop_batch"),
        postprocess=LazyFunction("yolov12.infer.postprocess:classification_postprocess"),
        build_loss=LazyFunction("yolov12.engine.losses:build_classification_loss"),
        evaluate=LazyFunction("yolov12.engine.evaluate:evaluate_classification"),
        fitness=LazyFunction("yolov12.engine.evaluate:classification_fitness"),
        collate=LazyFunction("yolov12.engine.data_setup:collate_classification"),
        dataset_transform=LazyFunction("yolov12.engine.data_setup:classification_dataset_transform"),
        validation_plots=LazyFunction("yolov12.engine.run_plots:write_classification_validation_plots"),
    ),
}


def task_spec(name: str | None) -> TaskSpec:
    """The :class:`TaskSpec` of task ``name``.

    Raises:
        UnknownTaskError: ``name`` is not in :data:`TASKS` (the message names the known tasks).
    """
    spec = TASKS.get(name) if isinstance(name, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownTaskError(f"unknown task {name!r}{hint}; known tasks: {', '.join(TASKS)}")
    return spec
