"""The classification code of the technical article "YOLOv12: Attention-Centric Real-Time Object Detectors" runs.

Its Validation, Training, Prediction and Export code blocks are vendored verbatim in
``tests/fixtures/article/yolov12_cls_usage.md`` (the file's header lists the two substitutions). Each block runs as
written in a fresh working folder that holds the local files it names: ``yolov12n-cls.pt`` (written here in the
Ultralytics checkpoint layout, the way the article's release files are) and an ImageNet-layout ``imagenet`` folder
(3 classes, a few digit images each) under a temporary ``datasets_dir``. Nothing is downloaded. What cannot run on a
CPU-only machine (``device="0"``, TensorRT) must fail at once with one line, asserted as type + message.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolov12.data.errors import DatasetNotFoundError
from yolov12.data.sample_dataset import load_digit_images
from yolov12.infer.device import DeviceError
from yolov12.models import build_model, load_architecture

ARTICLE = Path(__file__).parent / "fixtures" / "article" / "yolov12_cls_usage.md"
CLASSES = ("n01440764", "n01443537", "n01484850")  # ImageNet's folder names of its first three classes
SECTION = re.compile(r"^## (?P<title>.+?)[ \t]*\n(?:(?!## ).*\n)*?```python\n(?P<code>(?:.*\n)*?)```$", re.MULTILINE)
CUDA = torch.cuda.is_available()


def article_blocks() -> dict[str, str]:
    """Section title -> the code of its (single) python block, exactly as the file has it."""
    return {match["title"]: match["code"] for match in SECTION.finditer(ARTICLE.read_text(encoding="utf-8"))}


def run_block(code: str, title: str) -> dict:
    """Execute ``code`` as a script (its own globals) and return those globals."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, f"<article: {title}>", "exec"), namespace)  # noqa: S102 - the article's code is the test
    return namespace


def plain_module_tree(module: nn.Module) -> nn.Module:
    """Copy a module tree into plain ``nn.Module`` objects holding fp16 tensors: what a pickled foreign model looks
    like to our restricted unpickler (classes it does not know, with ``_parameters``, ``_buffers``, ``_modules``)."""
    plain = nn.Module()
    half = (lambda t: t.detach().clone().half() if t.is_floating_point() else t.detach().clone())
    plain._parameters = OrderedDict(
        (k, None if v is None else nn.Parameter(half(v), requires_grad=v.requires_grad))
        for k, v in module._parameters.items())
    plain._buffers = OrderedDict((k, None if v is None else half(v)) for k, v in module._buffers.items())
    plain._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    plain._modules = OrderedDict((k, plain_module_tree(v)) for k, v in module._modules.items())
    return plain


def write_ultralytics_classifier(path: Path) -> Path:
    """A ``yolov12n-cls.pt`` in the layout of the article's release files: ``{"ema": <model>, "train_args": ...}``
    whose model records its architecture (``yaml``), class names and task."""
    config = load_architecture("yolov12n-cls").with_overrides(num_classes=len(CLASSES))
    torch.manual_seed(0)
    model = build_model(config, names=dict(enumerate(CLASSES)))
    recorded = config.to_dict()
    root = plain_module_tree(model)
    root.yaml = {**{k: recorded[k] for k in ("nc", "scales", "backbone", "head", "scale")},
                 "channels": recorded["ch"], "yaml_file": "yolov12n-cls.yaml"}
    root.names, root.task = dict(enumerate(CLASSES)), "classify"
    torch.save({"date": "2025-02-18T10:00:00", "version": "8.3.63", "model": None, "ema": root,
                "train_args": {"task": "classify", "imgsz": 224, "data": "imagenet"}}, path)
    return path


def write_imagenet(root: Path, per_class: dict[str, int]) -> Path:
    """ImageNet layout ``root/<split>/<class>/*.JPEG``: digits 0, 1, 2 (32x32) stand for the three classes."""
    images, labels = load_digit_images()
    for split, count in per_class.items():
        for digit, name in enumerate(CLASSES):
            for i, index in enumerate(np.flatnonzero(labels == digit)[:count]):
                gray = cv2.resize((images[index] * 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_LINEAR)
                target = root / split / name / f"{split}_{digit}_{i}.JPEG"
                target.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(target.with_suffix(".jpg")), cv2.merge([gray, gray, gray]))
                target.with_suffix(".jpg").rename(target)  # OpenCV picks the encoder by suffix; ImageNet uses .JPEG
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ultralytics_classifier(tmp_path_factory.mktemp("release") / "yolov12n-cls.pt")


@pytest.fixture
def workdir(tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with ``yolov12n-cls.pt``; ``datasets_dir`` holds ``imagenet``; no settings file, no display."""
    datasets = tmp_path / "datasets"
    write_imagenet(datasets / "imagenet", {"train": 2, "val": 1})
    monkeypatch.setenv("YOLOV12_DATASETS", str(datasets))
    monkeypatch.setenv("YOLOV12_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(checkpoint, work / "yolov12n-cls.pt")
    monkeypatch.chdir(work)
    return work


def test_the_vendored_article_has_its_four_blocks_with_our_import() -> None:
    blocks = article_blocks()
    assert list(blocks) == ["Validation", "Training", "Prediction", "Export"]
    for code in blocks.values():
        assert code.startswith("from yolov12 import YOLO\n") and "ultralytics" not in code and "{n/s/m/l/x}" not in code


def test_validation_block_runs_and_saves_json(workdir: Path) -> None:
    run_block(article_blocks()["Validation"], "Validation")
    saved = sorted((workdir / "runs" / "val").rglob("*.json"))
    assert [path.name for path in saved] == ["predictions.json"], "save_json=True wrote no predictions under runs/val"
    assert len(json.loads(saved[0].read_text(encoding="utf-8"))) == len(CLASSES)  # one entry per val image


@pytest.mark.skipif(CUDA, reason="with a GPU the block trains for 200 epochs")
def test_training_block_fails_at_once_in_one_line_without_a_gpu(workdir: Path, monkeypatch) -> None:
    code = article_blocks()["Training"]
    with pytest.raises(DeviceError, match=r"^device 'cuda:0' requested but CUDA is not available .*use device=cpu$"):
        run_block(code, "Training")
    assert not (workdir / "runs").exists()  # no run folder was made
    monkeypatch.setenv("YOLOV12_DATASETS", str(workdir / "no-datasets"))
    with pytest.raises(DeviceError):  # the device is checked before the data: a missing dataset is not reached
        run_block(code, "Training")


@pytest.mark.slow
def test_training_block_on_the_cpu_runs_to_its_last_line(workdir: Path, caplog) -> None:
    """The same block with ``device="cpu"``, 1 epoch at 64 px: train, val, predict one image, show it headless."""
    code = article_blocks()["Training"]
    for old, new in (('device="0"', 'device="cpu"'), ("epochs=200", "epochs=1"), ("imgsz=224", "imgsz=64")):
        assert code.count(old) == 1
        code = code.replace(old, new)
    image = workdir / "path" / "to" / "image.jpg"
    image.parent.mkdir(parents=True)
    shutil.copy(next((Path("..") / "datasets" / "imagenet" / "val" / CLASSES[1]).iterdir()), image)
    namespace = run_block(code, "Training (CPU)")
    assert 0.0 <= namespace["metrics"]["metrics/accuracy_top1"] <= 1.0
    result = namespace["results"][0]
    assert result.probs is not None and len(result.probs) == len(CLASSES)
    assert "no display available (DISPLAY is not set); use save() instead" in caplog.text  # show() did not block


def test_prediction_block_runs_on_the_bundled_photos(workdir: Path) -> None:
    namespace = run_block(article_blocks()["Prediction"], "Prediction")
    model = namespace["model"]
    assert model.task == "classify" and list(model.names.values()) == list(CLASSES)


def tensorrt_usable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return CUDA


@pytest.mark.skipif(tensorrt_usable(), reason="TensorRT and a GPU are here: the engine export would succeed")
def test_export_block_fails_in_one_line_without_tensorrt(workdir: Path) -> None:
    from yolov12.export.tensorrt import TensorRTUnavailableError

    expected = r"^TensorRT export needs an NVIDIA GPU and the tensorrt package: "
    with pytest.raises(TensorRTUnavailableError, match=expected):
        run_block(article_blocks()["Export"], "Export")
    assert not list(workdir.glob("*.engine"))


@pytest.mark.slow
def test_export_block_with_its_onnx_alternative(workdir: Path) -> None:
    """The block's comment offers ``format="onnx"``: that export runs here and predicts like the checkpoint."""
    code = article_blocks()["Export"]
    assert code.count('format="engine", half=True') == 1
    run_block(code.replace('format="engine", half=True', 'format="onnx"'), "Export (onnx)")
    from yolov12 import YOLO

    image = next((workdir.parent / "datasets" / "imagenet" / "val" / CLASSES[2]).iterdir())
    exported = YOLO("yolov12n-cls.onnx").predict(str(image))[0].probs
    original = YOLO("yolov12n-cls.pt").predict(str(image))[0].probs
    assert exported.top1 == original.top1
    np.testing.assert_allclose(np.asarray(exported.data), np.asarray(original.data), atol=1e-3)


def test_a_missing_imagenet_says_where_it_is_expected(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_DATASETS", str(workdir / "elsewhere"))
    expected = f"dataset 'imagenet' is not on this machine and is never downloaded: put it in {workdir / 'elsewhere'}"
    with pytest.raises(DatasetNotFoundError, match=f"^{re.escape(expected)}/imagenet \\(ImageNet layout"):
        run_block(article_blocks()["Validation"], "Validation")
