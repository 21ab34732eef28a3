"""An imported Ultralytics classifier is exact: its BatchNorms keep the source's eps / momentum, which no state dict
holds (Ultralytics classifiers keep PyTorch's 1e-5 / 0.1, its detectors use 1e-3 / 0.03).

Fixture (``tests/fixtures/reference/yolo12n-cls_nc3.*``, made by ``benchmarks/reference/make_ultralytics_fixtures.py
--only yolo12n-cls_nc3`` with the real ultralytics package): a perturbed YOLO12n classifier (nc=3) saved in fp16, and
its probabilities, logits and first-block output computed by ultralytics in float64 and float32. The fp16 weights are
exact in float64, so a float64 run of the imported model differs from the reference only by the order of summation
(~1e-15); a wrong eps (1e-3 instead of 1e-5) moves the first block's output by ~1e-3.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_helpers import ultralytics_yaml
from safetensors.torch import save_file
from torch import nn

from yolov12.models import ArchitectureConfig, ClassificationModel, build_model
from yolov12.weights import (
    CheckpointMetadata,
    CheckpointMetadataError,
    CorruptCheckpointError,
    import_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reference"
NAME = "yolo12n-cls_nc3"
EXACT = 1e-10  # float64 against float64
FLOAT32_TOLERANCE = 1e-5  # float32 against float32 from another machine's kernels, or 4x our own float32 noise
SIZES = {224: 0, 64: 1}  # input size -> numpy RandomState seed
BLOCK_SIZE = 64  # the input whose first-block output the fixture holds
TINY_CLASSIFIER = {
    "nc": 3,
    "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [16, 3, 2]]],
    "head": [[-1, 1, "Classify", ["nc"]]],
}


def batch_norm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {path: m for path, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def reference_input(size: int, dtype: torch.dtype) -> torch.Tensor:
    image = np.random.RandomState(SIZES[size]).uniform(0, 1, (1, 3, size, size)).astype(np.float32)
    return torch.from_numpy(image).to(dtype)


def classifier_outputs(model: nn.Module, size: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Probabilities, logits and (for the small input) the first block's output, as the fixture names them."""
    suffix = "f64" if dtype == torch.float64 else "f32"
    x = reference_input(size, dtype)
    with torch.no_grad():
        features = model.forward_layers(x, stop=-1)
        head = model.head
        outputs = {f"probs_{size}_{suffix}": model(x),
                   f"logits_{size}_{suffix}": head.linear(head.pool(head.conv(features)).flatten(1))}
        if size == BLOCK_SIZE:
            outputs[f"block0_{size}_{suffix}"] = model.model[0](x)
    return outputs


def largest_differences(model: nn.Module, reference: dict[str, np.ndarray], dtype: torch.dtype) -> dict[str, float]:
    differences = {}
    for size in SIZES:
        for key, ours in classifier_outputs(model, size, dtype).items():
            assert tuple(ours.shape) == reference[key].shape, key
            differences[key] = (ours - torch.from_numpy(reference[key])).abs().max().item()
    return differences


@pytest.fixture(scope="module")
def imported():
    checkpoint = FIXTURES / f"{NAME}.pt"
    if not checkpoint.is_file():
        pytest.skip(f"reference fixture {checkpoint} is absent (generate it with "
                    "benchmarks/reference/make_ultralytics_fixtures.py --only yolo12n-cls_nc3 --skip-zoo)")
    model, metadata = import_checkpoint(checkpoint)
    with np.load(FIXTURES / f"{NAME}.reference.npz") as arrays:
        reference = {key: arrays[key] for key in arrays.files}
    source = json.loads((FIXTURES / f"{NAME}.reference.json").read_text())
    return model.eval(), metadata, reference, source


def test_imported_classifier_matches_the_float64_reference(imported) -> None:
    model, metadata, reference, source = imported
    assert metadata.source["sha256"] == source["checkpoint_sha256"], "fixture .pt and .json are out of sync"
    assert (model.config.family, model.config.version, model.task) == ("yolov12", "v1.0", "classify")
    assert sum(p.numel() for p in model.parameters()) == source["parameter_count"]
    differences = largest_differences(copy.deepcopy(model).double(), reference, torch.float64)
    assert max(differences.values()) <= EXACT, differences


def test_imported_classifier_matches_the_float32_reference(imported) -> None:
    model, _, reference, _ = imported
    differences = largest_differences(copy.deepcopy(model).float(), reference, torch.float32)
    exact = {key.replace("_f64", "_f32"): value.numpy() for size in SIZES
             for key, value in classifier_outputs(copy.deepcopy(model).double(), size, torch.float64).items()}
    noise = largest_differences(copy.deepcopy(model).float(), exact, torch.float32)  # our own float32 rounding
    limit = max(FLOAT32_TOLERANCE, 4 * max(noise.values()))
    assert max(differences.values()) <= limit, (differences, limit)


def test_imported_batch_norms_take_the_source_values(imported) -> None:
    model, metadata, _, source = imported
    ((eps, momentum, count),) = source["batch_norm"]  # ultralytics' classifier: one setting for all
    layers = batch_norm_layers(model)
    assert len(layers) == count
    assert {(layer.eps, layer.momentum) for layer in layers.values()} == {(eps, momentum)} == {(1e-5, 0.1)}
    assert metadata.batch_norm == {"eps": 1e-5, "momentum": 0.1, "modules": {}}


def test_native_round_trip_of_the_imported_classifier_stays_exact(imported, tmp_path: Path) -> None:
    model, metadata, reference, _ = imported
    path = save_checkpoint(model, tmp_path / f"{NAME}.safetensors", metadata=metadata)
    loaded, loaded_metadata = load_checkpoint(path)
    assert loaded_metadata.batch_norm == {"eps": 1e-5, "momentum": 0.1, "modules": {}}
    differences = largest_differences(loaded.double(), reference, torch.float64)
    assert max(differences.values()) <= EXACT, differences


@pytest.mark.parametrize("scale", "nsmlx")
def test_ultralytics_yolo12_classifiers_have_its_layout_at_every_scale(scale: str) -> None:
    """Ultralytics' YOLO12-cls (v1.0) makes A2C2f residual at l/x only, as its detectors do (the turbo Cls release
    makes every A2C2f residual): its parameter counts (``zoo_counts.json``, nc=1000) hold at every scale."""
    counts = FIXTURES / "zoo_counts.json"
    if not counts.is_file():
        pytest.skip(f"reference fixture {counts} is absent")
    expected = json.loads(counts.read_text())["models"][f"yolo12{scale}-cls"]["params_unfused"]
    recorded = json.loads((FIXTURES / f"{NAME}.reference.json").read_text())["model_yaml"]
    config = ArchitectureConfig.from_dict({**recorded, "nc": 1000, "scale": scale}, name=f"yolo12{scale}-cls")
    with torch.device("meta"):
        model = ClassificationModel(config)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_models_are_built_with_their_sources_batch_norm_convention(
    detection_model: nn.Module, classification_model: nn.Module,
) -> None:
    for model, expected in ((detection_model, (1e-3, 0.03)), (classification_model, (1e-5, 0.1))):
        settings = {(layer.eps, layer.momentum) for layer in batch_norm_layers(model).values()}
        assert settings == {expected}, f"{model.config.name}: {settings}"


def tiny_classifier() -> nn.Module:
    config = ArchitectureConfig.from_dict(TINY_CLASSIFIER, name="tiny-cls")
    torch.manual_seed(0)
    return build_model(config, names={0: "a", 1: "b", 2: "c"}).eval()


def foreign_tree(module: nn.Module) -> nn.Module:
    """The module tree as a foreign pickle holds it: BatchNorms stay ``torch.nn`` BatchNorms (with their eps and
    momentum), every other module becomes a plain ``nn.Module`` holding its tensors and children."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return copy.deepcopy(module)
    generic = nn.Module()
    generic._parameters = OrderedDict((k, None if v is None else nn.Parameter(v.detach().clone()))
                                      for k, v in module._parameters.items())
    generic._buffers = OrderedDict((k, None if v is None else v.clone()) for k, v in module._buffers.items())
    generic._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    generic._modules = OrderedDict((k, foreign_tree(v)) for k, v in module._modules.items())
    return generic


def save_foreign(path: Path, model: nn.Module) -> Path:
    root = foreign_tree(model)
    root.yaml, root.names = ultralytics_yaml(model.config), dict(model.names)
    torch.save({"model": root, "ema": None, "train_args": {"imgsz": 64}}, path)
    return path


def test_each_imported_batch_norm_keeps_its_own_settings_through_a_native_round_trip(tmp_path: Path) -> None:
    source = tiny_classifier()
    layers = batch_norm_layers(source)
    layers["model.0.bn"].eps, layers["model.0.bn"].momentum = 2e-4, None  # one module differs from the others
    model, metadata = import_checkpoint(save_foreign(tmp_path / "tiny.pt", source))
    expected = {path: (layer.eps, layer.momentum) for path, layer in layers.items()}
    assert {path: (layer.eps, layer.momentum) for path, layer in batch_norm_layers(model).items()} == expected
    assert metadata.batch_norm == {"eps": 1e-5, "momentum": 0.1, "modules": {"model.0.bn": {"eps": 2e-4,
                                                                                              "momentum": None}}}
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "tiny.safetensors"))
    assert {path: (layer.eps, layer.momentum) for path, layer in batch_norm_layers(loaded).items()} == expected


def test_an_invalid_foreign_batch_norm_setting_is_refused(tmp_path: Path) -> None:
    source = tiny_classifier()
    batch_norm_layers(source)["model.1.bn"].eps = -1.0
    with pytest.raises(CorruptCheckpointError, match=r"'model\.1\.bn' has an invalid setting \(BatchNorm eps must be "
                                                     r"a positive finite number, got -1\.0\)"):
        import_checkpoint(save_foreign(tmp_path / "bad.pt", source))


def write_native(path: Path, model: nn.Module, document: dict) -> Path:
    tensors = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"yolov12": json.dumps(document)})
    return path


def test_a_native_file_without_batch_norm_settings_loads_with_the_values_it_was_built_with(tmp_path: Path) -> None:
    """Files written before the settings were recorded come from models built with 1e-3 / 0.03 (every task then):
    they load with those, so a classifier trained then gives the outputs it was validated with."""
    model = tiny_classifier()
    for layer in batch_norm_layers(model).values():
        layer.eps, layer.momentum = 1e-3, 0.03
    document = CheckpointMetadata.for_model(model).to_dict()
    del document["batch_norm"]  # as written before the field existed
    loaded, metadata = load_checkpoint(write_native(tmp_path / "old.safetensors", model, document))
    assert metadata.batch_norm is None
    assert {(layer.eps, layer.momentum) for layer in batch_norm_layers(loaded).values()} == {(1e-3, 0.03)}


def test_native_batch_norm_settings_naming_another_module_are_refused(tmp_path: Path) -> None:
    model = tiny_classifier()
    document = CheckpointMetadata.for_model(model).to_dict()
    document["batch_norm"]["modules"] = {"model.2.linear": {"eps": 1e-3, "momentum": 0.03}}
    with pytest.raises(CheckpointMetadataError, match=r"1 BatchNorm settings name modules that are not BatchNorms "
                                                      r"of the model 'tiny-cls' \(e\.g\. 'model\.2\.linear'\)"):
        load_checkpoint(write_native(tmp_path / "other.safetensors", model, document))


@pytest.mark.parametrize(("batch_norm", "message"), [
    ([1e-5, 0.1], r" must be an object with exactly the keys \['eps', 'momentum', 'modules'\], got a list"),
    ({"eps": 1e-5, "momentum": 0.1}, r"exactly the keys .* got \['eps', 'momentum'\]"),
    ({"eps": 0, "momentum": 0.1, "modules": {}}, r": BatchNorm eps must be a positive finite number, got 0"),
    ({"eps": "1e-5", "momentum": 0.1, "modules": {}}, r"eps must be a positive finite number, got '1e-5'"),
    ({"eps": 10**400, "momentum": 0.1, "modules": {}}, r"eps must be a positive finite number, got an integer of 1329"),
    ({"eps": float("nan"), "momentum": 0.1, "modules": {}}, r"eps must be a positive finite number, got nan"),
    ({"eps": 1e-5, "momentum": 2, "modules": {}}, r"momentum must be a number in \[0, 1\] or None, got 2"),
    ({"eps": 1e-5, "momentum": 0.1, "modules": {"model.0.bn": {"eps": 1e-3}}},
     r"\.modules\['model\.0\.bn'\] must be an object with 'eps' and 'momentum'"),
    ({"eps": 1e-5, "momentum": 0.1, "modules": []}, r"\.modules must map module paths"),
])
def test_malformed_batch_norm_metadata_is_refused(batch_norm: object, message: str) -> None:
    document = CheckpointMetadata.for_model(tiny_classifier()).to_dict()
    document["batch_norm"] = batch_norm
    with pytest.raises(CheckpointMetadataError, match=rf"^file\.safetensors: batch_norm.*{message}"):
        CheckpointMetadata.from_dict(document, origin="file.safetensors")
