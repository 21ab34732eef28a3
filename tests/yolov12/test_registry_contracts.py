"""Contract tests, parametrised over the registries themselves: whatever is registered must keep these promises.

- every zoo name builds, runs a forward pass at a small size (training and inference mode) and round-trips through
  native weights with identical outputs (l and x scales are marked slow);
- every engine backend runs a model exported in its format and gives the outputs of the torch model on the same
  input, within that backend's stated tolerance (backends this machine cannot run are skipped with the reason).

A new zoo entry or backend is covered without touching this file; a backend without an entry in
:data:`BACKEND_CONTRACTS` fails :func:`test_every_backend_has_a_contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from support.models import perturb_batchnorm

from yolov12 import YOLO
from yolov12.engines import BACKENDS, available_backends, load_engine
from yolov12.export import export_model
from yolov12.models import build_model, load_architecture
from yolov12.models.zoo import zoo_names

SMALL_SIZE = 64  # a multiple of every model's stride (32)
NUM_CLASSES = 3


def _zoo_params() -> list:
    params = []
    for name in zoo_names():
        scale = load_architecture(name).scale
        marks = [pytest.mark.slow] if scale in ("l", "x") else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _small_model(name: str, seed: int = 0) -> torch.nn.Module:
    config = load_architecture(name).with_overrides(num_classes=NUM_CLASSES)
    torch.manual_seed(seed)
    model = build_model(config, names={i: f"thing{i}" for i in range(NUM_CLASSES)})
    return perturb_batchnorm(model, seed).eval()


def _input(batch: int, size: int = SMALL_SIZE, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).uniform(0, 1, (batch, 3, size, size)).astype(np.float32))


@pytest.mark.parametrize("name", _zoo_params())
def test_zoo_entry_builds_runs_and_round_trips_native_weights(name: str, tmp_path: Path) -> None:
    model = _small_model(name)
    x = _input(2)
    with torch.no_grad():
        want = model(x)
    if model.task == "detect":
        assert want.shape[:2] == (2, 4 + NUM_CLASSES)  # (B, 4 + classes, anchors)
    else:
        assert want.shape == (2, NUM_CLASSES)
        torch.testing.assert_close(want.sum(1), torch.ones(2))
    assert torch.isfinite(want).all()

    path = YOLO(model).save(tmp_path / f"{name}.safetensors")
    loaded = YOLO(str(path)).model.eval()
    assert type(loaded) is type(model) and loaded.task == model.task and loaded.names == model.names
    with torch.no_grad():
        got = loaded(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)

    if model.task == "detect":  # training mode (updates BatchNorm statistics: after the comparison)
        levels = model.train()(x)
        assert len(levels) == len(model.stride) and all(level.shape[0] == 2 for level in levels)


@dataclass(frozen=True)
class BackendContract:
    """How a backend is exercised: the export format that feeds it and its tolerance against torch (max abs)."""

    export_format: str | None  # None: the backend runs the torch checkpoint itself
    tolerance: float
    export_settings: tuple[tuple[str, object], ...] = ()


BACKEND_CONTRACTS = {
    "torch": BackendContract(None, 1e-4),  # loads the checkpoint and fuses Conv+BN: float32 reassociation only
    "onnxruntime": BackendContract("onnx", 1e-3),
    "openvino": BackendContract("openvino", 1e-3),  # fp32 inference precision
    "tensorrt": BackendContract("engine", 5e-2, (("half", True),)),  # fp16 engine
}
CONTRACT_MODELS = ["yolov12n", "yolov12n-cls"]


def test_every_backend_has_a_contract() -> None:
    missing = set(BACKENDS) - set(BACKEND_CONTRACTS)
    assert not missing, f"add a BackendContract for {sorted(missing)}"


@pytest.fixture(scope="module")
def contract_checkpoints(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, Path]]:
    folder = tmp_path_factory.mktemp("contracts")
    out = {}
    for name in CONTRACT_MODELS:
        model = _small_model(name)
        out[name] = (model, YOLO(model).save(folder / f"{name}.safetensors"))
    return out


@pytest.mark.parametrize("model_name", CONTRACT_MODELS)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backend_matches_torch_on_the_same_input(backend: str, model_name: str, contract_checkpoints,
                                                 tmp_path: Path) -> None:
    if backend not in available_backends():
        requirement = BACKENDS[backend]
        pytest.skip(f"backend {backend} cannot run here (needs {requirement.requires}"
                    f"{' and a CUDA GPU' if requirement.needs_cuda else ''})")
    contract = BACKEND_CONTRACTS[backend]
    model, checkpoint = contract_checkpoints[model_name]
    artifact = checkpoint
    if contract.export_format is not None:
        artifact = export_model(model, contract.export_format, output=str(tmp_path / f"{model_name}-{backend}"),
                                imgsz=SMALL_SIZE, **dict(contract.export_settings))
    engine = load_engine(artifact, backend=backend)
    assert engine.info.backend == backend and engine.info.task == model.task
    x = _input(1, seed=1)
    got = np.asarray(engine(x.numpy()))
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    difference = float(np.abs(got.astype(np.float64) - want).max())
    assert difference <= contract.tolerance, f"{backend} differs from torch by {difference} > {contract.tolerance}"
