"""Importing Ultralytics-style ``.pt`` checkpoints, built here from our own models (no foreign code needed)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from checkpoint_helpers import generic_module_tree, make_model, model_outputs, save_ultralytics_style, ultralytics_yaml
from torch import nn

from yolov12.models import ArchitectureConfig, build_model, load_architecture
from yolov12.models.registry import UnknownLayerError
from yolov12.weights import (
    LOADERS,
    UnsupportedCheckpointError,
    UnsupportedTaskError,
    convert_checkpoint,
    import_checkpoint,
    load_checkpoint,
    load_weights,
    read_metadata,
)


def test_import_rebuilds_the_model_and_records_its_source(detection_model: nn.Module, tmp_path: Path) -> None:
    path = save_ultralytics_style(tmp_path / "best.pt", detection_model, ultralytics_yaml(detection_model.config))

    model, metadata = import_checkpoint(path)

    assert model.config.family == "yolov12" and model.config.version == "turbo" and model.config.scale == "n"
    assert model.names == detection_model.names and not model.training
    assert model.model[0].conv.weight.dtype == torch.float32
    for key, tensor in detection_model.state_dict().items():  # the file holds fp16 copies, as releases do
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(model.state_dict()[key], expected), key
    assert metadata.model_version == "turbo" and metadata.task == "detect" and metadata.image_size == 320
    assert metadata.training_args == {"imgsz": 320, "epochs": 3, "data": "datasets/toy.yaml", "lr0": 0.01}
    assert metadata.source == {
        "format": "ultralytics-pt", "file": "best.pt", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "entry": "model", "model_class": "torch.nn.modules.module.Module", "ultralytics_version": "8.3.0",
        "date": "2025-02-18T10:00:00",
    }


def test_ema_is_preferred_and_names_may_be_a_list(classification_model: nn.Module, tmp_path: Path) -> None:
    ema = generic_module_tree(classification_model)
    ema.yaml = ultralytics_yaml(classification_model.config)
    ema.names = [f"thing{i}" for i in range(5)]
    path = save_ultralytics_style(tmp_path / "cls.pt", nn.Identity(), {"nc": 1}, extra={"ema": ema})

    model, metadata = import_checkpoint(path)

    assert metadata.source["entry"] == "ema" and metadata.task == "classify"
    assert model.names == {i: f"thing{i}" for i in range(5)}
    assert torch.equal(model_outputs(model), model_outputs(classification_model))


def test_missing_scale_is_inferred_from_the_tensor_shapes(tmp_path: Path) -> None:
    base = load_architecture("yolov8n")
    scales = {"n": base.scales["n"], "t": dataclasses.replace(base.scales["n"], width=0.125)}
    config = dataclasses.replace(base, scales=scales, scale="t", num_classes=2, name="yolov8t")
    source = build_model(config).eval()
    path = save_ultralytics_style(tmp_path / "t.pt", source, ultralytics_yaml(config, keep_scale=False), half=False)

    model, _ = import_checkpoint(path)

    assert model.config.scale == "t"
    assert torch.equal(model_outputs(model), model_outputs(source))


def test_attention_layout_in_the_tensors_overrides_the_yaml_version(tmp_path: Path) -> None:
    # A v1.0-style layer table (no grouped convs) but turbo attention tensors (attn.qk + attn.v).
    config = dataclasses.replace(load_architecture("yolov12n-v1").with_overrides(num_classes=2), version="turbo")
    source = build_model(config).eval()
    yaml = ultralytics_yaml(config)
    assert ArchitectureConfig.from_dict(yaml).version == "v1.0"
    path = save_ultralytics_style(tmp_path / "mixed.pt", source, yaml, half=False)

    model, metadata = import_checkpoint(path)

    assert model.config.version == "turbo" and metadata.model_version == "turbo"
    assert torch.equal(model_outputs(model), model_outputs(source))


@pytest.mark.parametrize(("head", "message"), [
    ("Segment", "segmentation models are not supported yet; supported tasks: detect, classify"),
    ("Pose", "pose-estimation models are not supported yet"),
    ("OBB", "oriented-box (OBB) models are not supported yet"),
])
def test_unsupported_tasks_are_named(head: str, message: str, tmp_path: Path) -> None:
    yaml = ultralytics_yaml(load_architecture("yolov8n"))
    yaml["head"][-1] = [[15, 18, 21], 1, head, ["nc", 32, 256]]
    path = save_ultralytics_style(tmp_path / "seg.pt", nn.Identity(), yaml)
    with pytest.raises(UnsupportedTaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_checkpoint(path)


def test_unknown_module_raises_the_registry_error(tmp_path: Path) -> None:
    yaml = ultralytics_yaml(load_architecture("yolov8n"))
    yaml["backbone"][2] = [-1, 3, "C2fCIB", [128, True]]
    path = save_ultralytics_style(tmp_path / "v10.pt", nn.Identity(), yaml)
    with pytest.raises(UnknownLayerError, match="unknown module 'C2fCIB'"):
        import_checkpoint(path)


@pytest.mark.parametrize(("content", "message"), [
    ({"epoch": 3, "optimizer": None}, "not a YOLO checkpoint: it has no 'model' or 'ema' entry"),
    ({"model.0.conv.weight": torch.ones(1)}, "bare state dict with no recorded architecture"),
    ([torch.ones(1)], "holds a list, not a YOLO training checkpoint"),
])
def test_files_without_a_yolo_model_are_refused(content, message: str, tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(content, path)
    with pytest.raises(UnsupportedCheckpointError, match=message):
        load_weights(path)


def test_model_without_recorded_architecture_is_refused(tmp_path: Path) -> None:
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "linear.pt")
    with pytest.raises(UnsupportedCheckpointError, match=r"records no architecture \('yaml'"):
        import_checkpoint(tmp_path / "linear.pt")


def test_convert_writes_a_native_checkpoint_next_to_the_source(tmp_path: Path) -> None:
    source = make_model("yolov8n", 2)
    pt = save_ultralytics_style(tmp_path / "yolov8n_toy.pt", source, ultralytics_yaml(source.config), half=False)

    native = convert_checkpoint(pt)

    assert native == tmp_path / "yolov8n_toy.safetensors"
    model, metadata = load_checkpoint(native)
    assert metadata.source["file"] == "yolov8n_toy.pt" and metadata.training_args["epochs"] == 3
    assert metadata.model_version == "yolov8"
    assert torch.equal(model_outputs(model), model_outputs(source))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_checkpoint(pt)
    convert_checkpoint(pt, tmp_path / "copy.safetensors")
    assert read_metadata(tmp_path / "copy.safetensors").source == metadata.source


def test_loader_registry_covers_the_supported_suffixes() -> None:
    assert set(LOADERS) == {".safetensors", ".pt", ".pth"}
