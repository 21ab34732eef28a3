"""``load_model``: every kind of spec loads, a bad spec says what it got and what is accepted, callers go through it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from yolov12.engine.distill import load_teachers
from yolov12.models import (
    ClassificationModel,
    DetectionModel,
    ModelLoadError,
    YOLOModel,
    build_model,
    load_architecture,
    load_model,
    load_model_with_metadata,
)
from yolov12.models.zoo import config_path
from yolov12.weights import CheckpointMetadata, save_checkpoint

WEIGHTS_TESTS = Path(__file__).resolve().parents[1] / "weights"


def _checkpoint_helpers() -> ModuleType:
    """The synthetic Ultralytics ``.pt`` writer the checkpoint tests use (their folder is not on this path)."""
    spec = importlib.util.spec_from_file_location("load_model_checkpoint_helpers",
                                                  WEIGHTS_TESTS / "checkpoint_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def detector() -> YOLOModel:
    torch.manual_seed(0)
    names = {0: "cat", 1: "dog", 2: "bird"}
    return build_model(load_architecture("yolov12n").with_overrides(num_classes=3), names=names).eval()


@pytest.fixture(scope="module")
def native_weights(detector: YOLOModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(detector, tmp_path_factory.mktemp("native") / "detector.safetensors")


def _same_weights(one: torch.nn.Module, two: torch.nn.Module) -> bool:
    first, second = one.state_dict(), two.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(("spec", "model_class", "name"), [
    ("yolov12n", DetectionModel, "yolov12n"),
    ("yolov12n.yaml", DetectionModel, "yolov12n"),
    ("yolov12s-cls.yaml", ClassificationModel, "yolov12s-cls"),
    (Path("yolo11n.yml"), DetectionModel, "yolo11n"),
])
def test_architecture_names_build_untrained_models(spec: str | Path, model_class: type, name: str) -> None:
    model, metadata = load_model_with_metadata(spec)
    assert type(model) is model_class and model.config.name == name and metadata is None
    assert model.training  # built, not loaded: train mode as build_model leaves it


def test_a_model_yaml_file_builds_its_architecture(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(config_path("yolov12-cls.yaml").read_text())
    model = load_model(path)
    assert isinstance(model, ClassificationModel) and model.task == "classify"


def test_native_weights_load_with_their_metadata(detector: YOLOModel, native_weights: Path) -> None:
    model, metadata = load_model_with_metadata(native_weights, device="cpu")
    assert isinstance(metadata, CheckpointMetadata) and metadata.names == detector.names
    assert model.names == detector.names and not model.training and _same_weights(model, detector)
    assert _same_weights(load_model(str(native_weights)), detector)


def test_foreign_pt_goes_through_the_restricted_importer(detector: YOLOModel, tmp_path: Path) -> None:
    helpers = _checkpoint_helpers()
    path = helpers.save_ultralytics_style(tmp_path / "foreign.pt", detector, helpers.ultralytics_yaml(detector.config),
                                          half=False)
    model, metadata = load_model_with_metadata(path)
    assert metadata.source["format"] == "ultralytics-pt" and metadata.image_size == 320
    assert model.names == detector.names and _same_weights(model, detector)


def test_a_built_model_is_returned_as_it_is(detector: YOLOModel) -> None:
    assert load_model(detector) is detector
    assert load_model_with_metadata(detector) == (detector, None)


@pytest.mark.parametrize(("spec", "given"), [
    ("notes.txt", "unknown model file type '.txt'"),
    ("yolov12q", "'yolov12q' is neither a model file nor a zoo model"),
    ("missing.yaml", "'missing.yaml' is neither a model file nor a zoo model"),
    ("model.onnx", "it is an exported model"),
    (3, "cannot load a model from a int (3)"),
])
def test_a_bad_spec_names_what_was_given_and_what_is_accepted(spec: object, given: str) -> None:
    with pytest.raises(ModelLoadError) as raised:
        load_model(spec)
    message = str(raised.value)
    assert given in message
    assert ".safetensors" in message and ".pt" in message


def test_missing_weights_are_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="never downloads weights.*'yolo12n.yaml'"):
        load_model(tmp_path / "yolo12n.pt")


def test_a_folder_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="it is a folder; pass a zoo name"):
        load_model(tmp_path)


def test_teachers_and_the_facade_load_through_load_model(native_weights: Path, detector: YOLOModel,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import yolov12.engine.distill.teachers as teachers
    import yolov12.yolo as facade

    calls: list[object] = []
    real = load_model_with_metadata

    def spy(spec: object, **kwargs: object):
        calls.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(teachers, "load_model", lambda spec, **kwargs: spy(spec, **kwargs)[0])
    monkeypatch.setattr(facade, "load_model_with_metadata", spy)
    (teacher,) = load_teachers([native_weights], detector, "cpu")
    assert _same_weights(teacher, detector) and not teacher.training
    assert facade.YOLO(native_weights).names == detector.names
    assert calls == [native_weights, native_weights]


def test_loading_teachers_does_not_import_the_facade(native_weights: Path) -> None:
    code = (
        "import sys\n"
        "from yolov12.engine.distill.teachers import load_teachers\n"
        "from yolov12.models import load_model\n"
        f"student = load_model({str(native_weights)!r})\n"
        f"load_teachers([{str(native_weights)!r}], student, 'cpu')\n"
        "assert 'yolov12.yolo' not in sys.modules, 'the engine imported the YOLO facade'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
