"""Imported Ultralytics / official YOLOv12 checkpoints reproduce the reference outputs of the code that wrote them.

Fixtures (``tests/fixtures/reference``, made by ``benchmarks/reference/make_ultralytics_fixtures.py`` with the real
ultralytics package): ``<name>.pt``, ``<name>.reference.npz`` (``out_640``, ``out_320``, ``raw_p3..raw_p5``) and
``<name>.reference.json``.

Tolerance: in scale-free units, 1e-4 or four times this machine's own float32 rounding noise (the distance of our
float32 output from a float64 run of the same model), whichever is larger. The reference is another float32 run (its
CPU and kernels: on an AVX-512 machine the convolutions sum in another order than on the AVX2 machine that wrote the
fixtures), so both sides carry that noise; an architecture or weight-mapping error is orders of magnitude larger
(the fixtures' BatchNorm statistics are perturbed so that it shows). Raw head maps (box-bin logits, class logits) and
class probabilities are compared directly. Boxes are in input pixels (up to 640), where one float32 ulp is already
6e-5; they are compared in grid cells (pixel difference / anchor stride), the unit the head predicts in. The pixel
differences are reported in the assertion messages.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from yolov12.weights import import_checkpoint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reference"
TOLERANCE = 1e-4
NOISE_FACTOR = 4.0
INPUTS = {"out_640": (0, 640), "out_320": (1, 320)}  # output key -> (numpy RandomState seed, image size)
EXPECTED = {  # fixture -> (family, version, model_version in our metadata)
    "yolo12n_nc3": ("yolov12", "v1.0", "v1.0"),
    "yolov12n_turbo_nc3": ("yolov12", "turbo", "turbo"),
    "yolo11n_nc3": ("yolo11", None, "yolo11"),
    "yolov8n_nc3": ("yolov8", None, "yolov8"),
}


def tolerance(own_noise: float) -> float:
    """The allowed difference from the reference, given our float32 distance from float64 (see the docstring)."""
    return max(TOLERANCE, NOISE_FACTOR * own_noise)


def reference_input(seed: int, size: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).uniform(0, 1, (1, 3, size, size)).astype(np.float32))


def anchor_strides(size: int, strides: list[float]) -> torch.Tensor:
    """Stride of every anchor, in the head's order (all P3 cells, then P4, then P5)."""
    return torch.cat([torch.full((int(size // s) ** 2,), float(s)) for s in strides])


@pytest.fixture(scope="module", params=list(EXPECTED))
def imported(request):
    name = request.param
    checkpoint = FIXTURES / f"{name}.pt"
    if not checkpoint.is_file():
        pytest.skip(f"reference fixture {checkpoint} is absent (generate it with "
                    "benchmarks/reference/make_ultralytics_fixtures.py)")
    model, metadata = import_checkpoint(checkpoint)
    reference = json.loads((FIXTURES / f"{name}.reference.json").read_text())
    with np.load(FIXTURES / f"{name}.reference.npz") as arrays:
        outputs = {key: torch.from_numpy(arrays[key]) for key in arrays.files}
    return name, model.float().eval(), metadata, reference, outputs


def test_architecture_and_metadata_match_the_reference(imported) -> None:
    name, model, metadata, reference, _ = imported
    family, version, model_version = EXPECTED[name]
    assert (model.config.family, model.config.version, metadata.model_version) == (family, version, model_version)
    assert metadata.source["sha256"] == reference["checkpoint_sha256"], "fixture .pt and .json are out of sync"
    assert {str(k): v for k, v in model.names.items()} == reference["names"]
    assert model.stride.tolist() == reference["stride"]
    assert sum(p.numel() for p in model.parameters()) == reference["parameter_count"]
    shapes = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert shapes == {key: shape for key, shape, _dtype in reference["state_dict"]}


@pytest.mark.parametrize("key", list(INPUTS))
def test_outputs_match_the_reference(imported, key: str) -> None:
    name, model, _, reference, outputs = imported
    seed, size = INPUTS[key]
    x = reference_input(seed, size)
    with torch.no_grad():
        ours = model(x)
        exact = copy.deepcopy(model).double()(x.double())
    expected = outputs[key]
    assert ours.shape == expected.shape
    strides = anchor_strides(size, reference["stride"])
    pixels = (ours[:, :4] - expected[:, :4]).abs()
    cells = (pixels / strides).max().item()
    scores = (ours[:, 4:] - expected[:, 4:]).abs().max().item()
    cell_limit = tolerance(((ours[:, :4] - exact[:, :4]).abs() / strides).max().item())
    score_limit = tolerance((ours[:, 4:] - exact[:, 4:]).abs().max().item())
    detail = (f"{name} {key}: boxes {pixels.max().item():.2e} px = {cells:.2e} cells (limit {cell_limit:.1e}), "
              f"class scores {scores:.2e} (limit {score_limit:.1e})")
    assert cells <= cell_limit, detail
    assert scores <= score_limit, detail


def test_raw_head_maps_match_the_reference(imported) -> None:
    name, model, _, _, outputs = imported
    x = reference_input(*INPUTS["out_640"])
    with torch.no_grad():
        maps = model.forward_raw(x)
        exact = copy.deepcopy(model).double().forward_raw(x.double())
    for level, ours, truth in zip(("raw_p3", "raw_p4", "raw_p5"), maps, exact):
        assert ours.shape == outputs[level].shape, level
        difference = (ours - outputs[level]).abs().max().item()
        limit = tolerance((ours - truth).abs().max().item())
        assert difference <= limit, f"{name} {level}: max abs difference {difference:.2e} (limit {limit:.1e})"
