"""The per-task table: every entry resolves, lookups fail helpfully, defaults are the published ones."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch

from yolov12.engines.torch_engine import TorchEngine
from yolov12.infer.preprocess import PreparedBatch
from yolov12.models import build_model, load_architecture
from yolov12.tasks import TASKS, LazyFunction, TaskSpec, UnknownTaskError, task_spec

ZOO_MODEL = {"detect": "yolov12n", "classify": "yolov12n-cls"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_entry_of_every_task_resolves(name: str) -> None:
    spec = task_spec(name)
    assert isinstance(spec, TaskSpec) and spec.name == name and spec.description
    functions = spec.functions()
    assert set(functions) == {field for field, kind in TaskSpec.__annotations__.items() if kind == "LazyFunction"}
    for field, function in functions.items():
        assert callable(function.resolve()), f"{name}.{field} -> {function.target}"


@pytest.mark.parametrize("field", sorted(TASKS["detect"].functions()))
def test_each_entry_takes_the_same_arguments_in_every_task(field: str) -> None:
    """Callers pass the same arguments whatever the task: the required parameters line up."""
    def required(function: LazyFunction) -> list[str]:
        parameters = inspect.signature(function.resolve()).parameters.values()
        return [p.kind.name for p in parameters if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    shapes = {name: required(getattr(spec, field)) for name, spec in TASKS.items()}
    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes


def test_default_image_sizes_are_the_published_ones() -> None:
    assert task_spec("detect").default_image_size == 640
    assert task_spec("classify").default_image_size == 224


@pytest.mark.parametrize("name", sorted(TASKS))
def test_the_torch_engine_defaults_to_the_task_size(name: str) -> None:
    model = build_model(load_architecture(ZOO_MODEL[name]).with_overrides(num_classes=2)).eval()
    size = TASKS[name].default_image_size
    assert TorchEngine(model).info.imgsz == (size, size)


@pytest.mark.parametrize(("name", "canvas", "letterboxed"), [("detect", (2, 64, 96, 3), True),
                                                            ("classify", (2, 64, 64, 3), False)])
def test_prepare_batch_letterboxes_detection_and_crops_classification(name: str, canvas: tuple, letterboxed: bool
                                                                      ) -> None:
    images = [np.zeros((120, 80, 3), np.uint8), np.zeros((50, 200, 3), np.uint8)]
    prepared = task_spec(name).prepare_batch(images, (64, 96), 32)
    assert isinstance(prepared, PreparedBatch) and prepared.canvas.shape == canvas
    assert (prepared.letterboxes is not None) is letterboxed


def test_postprocess_is_called_alike_for_both_tasks() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    options = {"conf": 0.25, "iou": 0.7, "max_det": 300, "classes": None, "agnostic": False, "end2end": False,
               "paths": ["a.jpg"]}
    probabilities = torch.tensor([[0.2, 0.8]])
    (classified,) = task_spec("classify").postprocess(probabilities, [image], None, {0: "a", 1: "b"}, **options)
    assert classified.probs.top1 == 1 and classified.path == "a.jpg"
    prepared = task_spec("detect").prepare_batch([image], 64)
    raw = torch.zeros(1, 4 + 2, 84)
    (detected,) = task_spec("detect").postprocess(raw, [image], prepared.letterboxes, {0: "a", 1: "b"}, **options)
    assert len(detected.boxes) == 0 and detected.probs is None


def test_fitness_ranks_by_the_task_metric() -> None:
    metrics = {"metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.3, "metrics/accuracy_top1": 0.9}
    assert task_spec("detect").fitness(metrics) == pytest.approx(0.1 * 0.5 + 0.9 * 0.3)
    assert task_spec("classify").fitness(metrics) == 0.9


@pytest.mark.parametrize("name", ["segment", None, "", 3])
def test_an_unknown_task_names_the_known_tasks(name: object) -> None:
    with pytest.raises(UnknownTaskError, match="known tasks: detect, classify"):
        task_spec(name)


def test_unknown_task_error_is_a_value_and_key_error_with_a_hint() -> None:
    with pytest.raises(UnknownTaskError) as raised:
        task_spec("detct")
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, KeyError)
    assert str(raised.value) == "unknown task 'detct'; did you mean 'detect'?; known tasks: detect, classify"


def test_a_stale_entry_says_where_to_fix_it() -> None:
    assert LazyFunction("math:sqrt")(9.0) == 3.0
    with pytest.raises(ImportError, match="yolov12/tasks.py"):
        LazyFunction("math:no_such_function").resolve()


def test_importing_the_table_is_cheap() -> None:
    code = ("import sys\nimport yolov12.tasks\n"
            "heavy = [m for m in ('torch', 'numpy', 'cv2', 'yolov12.infer', 'yolov12.engine') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
