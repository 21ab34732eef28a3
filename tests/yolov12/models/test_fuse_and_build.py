"""Conv+BN fusion leaves outputs unchanged; every zoo model builds, runs, and honours nc / input channels."""

from __future__ import annotations

import pytest
import torch

from yolov12.models import ArchitectureError, UnknownModelError, build_model, load_architecture
from yolov12.models.registry import UnknownLayerError


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 0.4 + 0.8)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.05)


@pytest.mark.parametrize("name", ["yolov12n", "yolov12n-v1", "yolo11n", "yolov8n", "yolov12n-cls"])
def test_fused_model_gives_the_same_outputs(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(load_architecture(name)).eval()
    _randomise_batchnorm(model)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        model.fuse()
        after = model(x)
    assert model.is_fused
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("name", ["yolov12s", "yolo12s", "yolov12m-v1", "yolo11s", "yolov8s"])
def test_detectors_build_for_any_class_and_channel_count(name: str) -> None:
    config = load_architecture(name).with_overrides(num_classes=7, input_channels=1)
    model = build_model(config).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 128, 160))
    anchors = (128 // 8) * (160 // 8) + (128 // 16) * (160 // 16) + (128 // 32) * (160 // 32)
    assert out.shape == (1, 4 + 7, anchors)
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    assert len(model.names) == 7


def test_classifier_outputs_probabilities() -> None:
    model = build_model(load_architecture("yolov12s-cls").with_overrides(num_classes=5)).eval()
    with torch.no_grad():
        probs = model(torch.rand(3, 3, 96, 96))
    assert probs.shape == (3, 5)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))


def test_training_mode_returns_raw_maps_per_level() -> None:
    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=2)).train()
    maps = model(torch.rand(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 66, 8, 8), (2, 66, 4, 4), (2, 66, 2, 2)]


def test_default_names_are_coco_for_80_classes() -> None:
    model = build_model(load_architecture("yolov12n"))
    assert model.names[0] == "person" and model.names[79] == "toothbrush"


def test_version_and_family_are_resolved() -> None:
    assert load_architecture("yolov12n").version == "turbo"
    assert load_architecture("yolov12n-v1").version == "v1.0"
    assert load_architecture("yolo12n").version == "v1.0"
    assert load_architecture("yolo11n").family == "yolo11"
    assert load_architecture("yolov8n.yaml").family == "yolov8"


def test_unknown_zoo_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="yolov12n"):
        load_architecture("yolov12q.yaml")


def test_unknown_module_in_yaml_names_close_matches(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, C3K2, [32]]\nhead:\n"
                   "  - [[-1], 1, Detect, [nc]]\n")
    with pytest.raises(UnknownLayerError, match="did you mean 'C3k2'"):
        build_model(load_architecture(bad))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nc: 2\nbackbone: []\nhead: []\n", "non-empty list"),
        ("nc: 0\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [-1, 1, Conv, [16]]\n", "positive integer"),
        ("backbone:\n  - [-1, 1, Conv]\nhead:\n  - [-1, 1, Conv, [16]]\n", r"\[from, repeats, module, args\]"),
        ("backbone:\n  - [5, 1, Conv, [16]]\nhead:\n  - [-1, 1, Conv, [16]]\n", "earlier layer"),
        ("backbone: [\n", "not valid YAML"),
    ],
)
def test_malformed_yaml_is_a_clear_error(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(ArchitectureError, match=match):
        build_model(load_architecture(path))


def test_info_reports_parameters_and_gflops(capsys) -> None:
    summary = build_model(load_architecture("yolov12n")).info(verbose=True)
    assert summary["parameters"] == 2_553_904
    assert summary["gflops"] == pytest.approx(5.99, rel=0.01)
    printed = capsys.readouterr().out
    assert "A2C2f" in printed and "2,553,904 parameters" in printed
