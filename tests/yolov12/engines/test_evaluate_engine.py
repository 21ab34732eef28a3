"""``evaluate_engine`` scores an engine exactly as ``yolov12 val`` scores its PyTorch model."""

from __future__ import annotations

import pytest
import torch
from support.models import perturb_batchnorm

from yolov12.engine.validate import validate
from yolov12.engines import EngineError, load_engine
from yolov12.engines.evaluate import evaluate_engine
from yolov12.models import load_model


def test_the_torch_engine_scores_what_validate_scores() -> None:
    torch.manual_seed(0)
    model = perturb_batchnorm(load_model("yolov12n.yaml"))
    expected = validate(model, data="sample", imgsz=64, batch=32, device="cpu")
    engine = load_engine(model, backend="torch", imgsz=64, fuse=False)
    assert evaluate_engine(engine, "sample", batch=32) == pytest.approx(expected, abs=1e-6)


def test_engines_with_nms_inside_are_refused() -> None:
    class EndToEnd:
        info = type("Info", (), {"end2end": True, "artifact": "m.onnx", "backend": "onnxruntime",
                                 "imgsz": (64, 64)})()

    with pytest.raises(EngineError, match="without nms=True"):
        evaluate_engine(EndToEnd(), "sample")
