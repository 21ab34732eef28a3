"""The AFF-neck and Dynamic-Head-v3 zoo variants: names, info(), training step, fusion, ONNX parity, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolov12 import YOLO
from yolov12.engine.losses import build_loss
from yolov12.models import build_model, load_architecture, zoo_names
from yolov12.nn.aff import AFFusion
from yolov12.nn.dyhead import DyHeadV3
from yolov12.weights import load_weights, save_checkpoint

VARIANTS = ("aff", "dyhead", "aff-dyhead")
N_MODELS = [*(f"yolov12n-{v}" for v in VARIANTS), "yolov12n-v1-aff-dyhead"]


def _model(name: str, num_classes: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    config = load_architecture(name).with_overrides(num_classes=num_classes)
    return build_model(config, names={i: f"c{i}" for i in range(num_classes)})


@pytest.mark.parametrize("release", ["", "-v1"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_scale_resolves_by_name(release: str, variant: str) -> None:
    for scale in "nsmlx":
        name = f"yolov12{scale}{release}-{variant}"
        config = load_architecture(f"{name}.yaml")
        assert config.name == name and config.scale == scale
        assert config.version == ("v1.0" if release else "turbo")
        modules = {layer.module for layer in config.layers}
        assert ("AFFusion" in modules) == ("aff" in variant)
        assert ("DyHeadV3" in modules) == ("dyhead" in variant) and ("Detect" in modules) != ("dyhead" in variant)
        assert name in zoo_names()


def test_info_reports_parameters_and_gflops() -> None:
    base = build_model(load_architecture("yolov12n")).info(verbose=False, image_size=160)
    for variant in VARIANTS:
        model = build_model(load_architecture(f"yolov12n-{variant}"))
        info = model.info(verbose=False, image_size=160)
        assert info["parameters"] == sum(p.numel() for p in model.parameters())
        assert info["gflops"] > 0.1 and info["parameters"] != base["parameters"]
        assert isinstance(model.head, DyHeadV3) == ("dyhead" in variant)
        assert any(isinstance(m, AFFusion) for m in model.modules()) == ("aff" in variant)


@pytest.mark.parametrize("name", N_MODELS)
def test_training_step_reaches_the_new_layers(name: str) -> None:
    model = _model(name).train()
    loss_fn = build_loss(model)
    batch = {"images": torch.rand(2, 3, 64, 64), "batch_index": torch.tensor([0, 1]),
             "classes": torch.tensor([1, 3]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.2]])}
    loss, _ = loss_fn(model(batch["images"]), batch)
    loss.backward()
    new_layers = [m for m in model.modules() if isinstance(m, (AFFusion, DyHeadV3))]
    assert new_layers
    for module in new_layers:
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_fused_and_onnx_outputs_match_eager(tmp_path: Path) -> None:
    """The combined model exercises both new modules (AFFusion nodes and DyHeadV3); exported with yolov12.export."""
    onnxruntime = pytest.importorskip("onnxruntime")
    model = _model("yolov12n-aff-dyhead").eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so a broken fold would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 1.5)
            module.running_mean.normal_(0, 0.1)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        eager = model(x)
        path = YOLO(model).export(format="onnx", imgsz=128, output=str(tmp_path / "aff-dyhead.onnx"))
        model.fuse()
        fused = model(x)
    torch.testing.assert_close(fused, eager, atol=1e-3, rtol=1e-4)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert exported.shape == tuple(eager.shape)
    assert np.abs(exported - eager.numpy()).max() <= 1e-3


def test_native_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _model("yolov12n-aff-dyhead").eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, AFFusion):
                module.weight.uniform_(-1, 2)
        model.head.cls_scale.uniform_(0.5, 1.5)
    path = save_checkpoint(model, tmp_path / "aff-dyhead.safetensors")
    loaded, _ = load_weights(path)
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model(x))
    assert loaded.config.name == "yolov12n-aff-dyhead"
