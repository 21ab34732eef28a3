"""The zoo reproduces the published sizes: exact parameter counts and GFLOPs (paper convention)."""

from __future__ import annotations

import pytest

from yolov12.models import build_model, load_architecture
from yolov12.utils.flops import count_gflops, count_parameters

# Exact unfused parameter counts and fused GFLOPs at 640 (nc=80), from the official releases (yolov12-spec.md).
YOLOV12_DETECTION = {
    # name: (parameters, gflops)
    "yolov12n-v1": (2_602_288, 6.49), "yolov12s-v1": (9_284_096, 21.38), "yolov12m-v1": (20_199_168, 67.45),
    "yolov12l-v1": (26_450_784, 88.89), "yolov12x-v1": (59_210_784, 199.03),
    "yolov12n": (2_553_904, 5.99), "yolov12s": (9_127_424, 19.43), "yolov12m": (19_670_784, 59.81),
    "yolov12l": (26_506_496, 82.40), "yolov12x": (59_414_176, 184.60),
}
# Published parameter counts of the comparison generations (Ultralytics model summaries, nc=80).
COMPARISON_DETECTION = {
    "yolov8n": 3_157_200, "yolov8s": 11_166_560, "yolov8m": 25_902_640, "yolov8l": 43_691_520, "yolov8x": 68_229_648,
    "yolo11n": 2_624_080, "yolo11s": 9_458_752, "yolo11m": 20_114_688, "yolo11l": 25_372_160, "yolo11x": 56_966_176,
}
# Published classifier table (ImageNet, 224 px): params (M), GFLOPs.
YOLOV12_CLASSIFICATION = {
    "yolov12n-cls": (2.9, 0.5), "yolov12s-cls": (7.2, 1.5), "yolov12m-cls": (12.7, 4.5),
    "yolov12l-cls": (16.8, 6.2), "yolov12x-cls": (35.5, 13.7),
}
LARGE = {"yolov12l-v1", "yolov12x-v1", "yolov12l", "yolov12x", "yolov8l", "yolov8x", "yolo11l", "yolo11x"}


def _marks(name: str) -> list:
    return [pytest.mark.slow] if name in LARGE else []


@pytest.mark.parametrize(
    ("name", "parameters", "gflops"),
    [pytest.param(n, p, g, id=n, marks=_marks(n)) for n, (p, g) in YOLOV12_DETECTION.items()],
)
def test_yolov12_detection_matches_published_size(name: str, parameters: int, gflops: float) -> None:
    model = build_model(load_architecture(name))
    assert count_parameters(model) == parameters
    assert count_gflops(model, 640) == pytest.approx(gflops, rel=0.01)


@pytest.mark.parametrize(
    ("name", "parameters"), [pytest.param(n, p, id=n, marks=_marks(n)) for n, p in COMPARISON_DETECTION.items()]
)
def test_comparison_generations_match_published_parameters(name: str, parameters: int) -> None:
    assert count_parameters(build_model(load_architecture(name))) == parameters


@pytest.mark.parametrize(("name", "millions", "gflops"), [(n, p, g) for n, (p, g) in YOLOV12_CLASSIFICATION.items()])
def test_yolov12_classifiers_match_published_table(name: str, millions: float, gflops: float) -> None:
    model = build_model(load_architecture(name))
    model.fuse()
    assert count_parameters(model) / 1e6 == pytest.approx(millions, rel=0.02)
    # The published table extrapolated a 32x32 count to 224 px (see yolov12.utils.flops); reproduce that convention.
    assert count_gflops(model, 224, extrapolate_from=32) == pytest.approx(gflops, rel=0.02)
    # The exact count is lower by the 48 extra copies of the Linear layer (1280 x 1000 MACs each).
    extra = 48 * 2 * 1280 * 1000 / 1e9
    assert count_gflops(model, 224) == pytest.approx(count_gflops(model, 224, extrapolate_from=32) - extra, rel=1e-6)


def test_attention_matmuls_can_be_included() -> None:
    model = build_model(load_architecture("yolov12n"))
    without = count_gflops(model, 640)
    with_attention = count_gflops(model, 640, include_attention=True)
    # P4 (40x40 -> 4 areas of 400 tokens, 64 ch) and P5 (20x20, global, 128 ch): 2 blocks x 2 layers each ... > 0.
    assert with_attention > without
    p4 = 4 * 400 * 400 * 64 * 2  # MACs of QK^T + AV for one P4 ABlock (heads x head_dim = 64 channels)
    p5 = 400 * 400 * 128 * 2
    assert (with_attention - without) * 1e9 / 2 == pytest.approx(4 * p4 + 4 * p5)
