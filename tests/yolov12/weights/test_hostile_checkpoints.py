"""Hostile weights files are refused with an error naming the file and the problem, and loading them stays within
the file's memory budget, ``max(64 MiB, 4 x file size)``.

The files are the hostile seeds of the weights fuzz targets (``fuzz/seeds/weights_*.py``), a few hundred bytes to
~70 KB each, built with pickle opcodes, ``zipfile`` and safetensors. Their peak memory is measured in one child
process (``memory_probe.py``), whose address space is capped, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import yolov12
from fuzz.seeds import weights_native as native_seeds
from fuzz.seeds import weights_pt as pt_seeds
from fuzz.seeds.weights_pt import ModuleRecord, StorageRecord, TensorView, checkpoint_pickle, torch_archive
from yolov12.models import load_architecture
from yolov12.models.model import YOLOModel
from yolov12.weights.budget import BUDGET_FACTOR, MIN_BUDGET_BYTES

PROBE = Path(__file__).with_name("memory_probe.py")


@dataclass(frozen=True)
class Hostile:
    """A hostile file, the loader's suffix for it, and the refusal expected: error class and message pattern."""

    build: Callable[[], bytes]
    suffix: str
    error: str
    message: str


def bool_views_of_a_large_model() -> bytes:
    """Every tensor of YOLOv12-x as a stride-0 bool view of one byte: the views span 57 MiB (within the budget of a
    tiny file) and fit the recorded architecture exactly, but the float32 model they describe needs 227 MiB."""
    config = load_architecture("yolov12x")
    with torch.device("meta"):
        shapes = {key: tuple(value.shape) for key, value in YOLOModel(config).state_dict().items()}
    storage = StorageRecord("0", 1, "BoolStorage")
    parameters = {key: TensorView(storage, 0, shape, (0,) * len(shape)) for key, shape in shapes.items()}
    module = ModuleRecord(_parameters=parameters, yaml=config.to_dict())
    return torch_archive(checkpoint_pickle({"model": module, "ema": None}), {"0": b"\x01"})


HOSTILE: dict[str, Hostile] = {
    "freed-memory-view": Hostile(pt_seeds.freed_memory_view, ".pt", "CorruptCheckpointError",
                                 r"the tensor view of 'archive/data/0' \(offset 0, size \(64,\), stride \(1,\)\) "
                                 r"reaches element 63 of a storage of 1 elements"),
    "storage-growth": Hostile(pt_seeds.storage_growth, ".pt", "CorruptCheckpointError",
                              r"offset 100000000, .* reaches element 100000000 of a storage of 1 elements"),
    "tensor-setstate": Hostile(pt_seeds.tensor_setstate, ".pt", "UnsafeCheckpointError",
                               r"the pickle sets the state of a tensor \(BUILD\)"),
    "bytearray-300mb": Hostile(pt_seeds.bytearray_allocation, ".pt", "UnsafeCheckpointError",
                               r"references builtins\.bytearray"),
    "memo-index-2gib": Hostile(pt_seeds.memo_index, ".pt", "CheckpointTooLargeError",
                               r"the pickle's memo table needs 2048\.0 MiB"),
    "tuple-copies": Hostile(pt_seeds.tuple_copies, ".pt", "CheckpointTooLargeError", r"builtins\.tuple needs"),
    "deflate-bomb-65mb": Hostile(lambda: pt_seeds.compressed_bomb(65), ".pt", "CheckpointTooLargeError",
                                 r"member 'archive/data/0' needs 65\.0 MiB"),
    "bzip2-bomb-16mb": Hostile(lambda: pt_seeds.compressed_bomb(16, zipfile.ZIP_BZIP2), ".pt",
                               "UnsupportedCheckpointError", r"member 'archive/data/0' is compressed with method 12"),
    "stride0-half-view": Hostile(pt_seeds.stride0_half_view, ".pt", "CheckpointTooLargeError",
                                 r"the tensor view of 'archive/data/0' needs 512\.0 MiB"),
    "cyclic-module-tree": Hostile(pt_seeds.cyclic_module_tree, ".pt", "CorruptCheckpointError",
                                  r"'again' contains itself \(the module tree has a cycle\)"),
    "shared-module-tree": Hostile(pt_seeds.shared_module_tree, ".pt", "CheckpointTooLargeError",
                                  r"the state dict \(1099511627776 entries over 2199023255551 module visits\)"),
    "deep-architecture": Hostile(lambda: pt_seeds.deep_architecture(100_000), ".pt", "CorruptCheckpointError",
                                 r"a value nests deeper than 30 levels"),
    "huge-architecture": Hostile(pt_seeds.huge_architecture, ".pt", "StateDictMismatchError",
                                 r"the tensors do not fit the architecture 'tiny-cls'"),
    "bool-views-of-a-large-model": Hostile(bool_views_of_a_large_model, ".pt", "CheckpointTooLargeError",
                                           r"the model '.*' it describes needs 227\.\d MiB"),
    "native-huge-model-no-tensors": Hostile(native_seeds.huge_model_without_tensors, ".safetensors",
                                            "StateDictMismatchError",
                                            r"'yolov12x' has 80 classes, but the largest tensor in the file holds 0"),
    "native-repeated-layers": Hostile(native_seeds.repeated_layers, ".safetensors", "StateDictMismatchError",
                                      r"has more than 120 modules, parameters and buffers, far more than the file's "
                                      r"14 tensors"),
    "native-deep-metadata": Hostile(lambda: native_seeds.deep_metadata(100_000), ".safetensors",
                                    "CheckpointMetadataError", r"the yolov12 metadata nests deeper than 32 levels"),
}


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every hostile file loaded once in a child process: name -> its error, message and peak memory."""
    folder = tmp_path_factory.mktemp("hostile")
    warmup = [folder / "warmup.pt", folder / "warmup.safetensors"]
    warmup[0].write_bytes(pt_seeds.tiny_classifier_file())
    warmup[1].write_bytes(native_seeds.native_file())
    paths = {}
    for name, case in HOSTILE.items():
        paths[name] = folder / f"{name}{case.suffix}"
        paths[name].write_bytes(case.build())
    request = {"warmup": [str(p) for p in warmup], "cases": [{"path": str(p)} for p in paths.values()]}
    package_root = str(Path(yolov12.__file__).resolve().parents[1])  # the child imports the yolov12 tested here
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
                   "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(request), capture_output=True, text=True,
                          env=environment, timeout=600, check=True)
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    return {name: {**results[path.name], "size": path.stat().st_size} for name, path in paths.items()}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_refused_within_its_memory_budget(name: str, probed: dict[str, dict]) -> None:
    case, result = HOSTILE[name], probed[name]
    assert case.error in result["errors"], f"{name}: expected {case.error}, got {result['errors'][:1]}: " \
                                           f"{result['message'][:300]}"
    assert "CheckpointError" in result["errors"]
    assert re.search(case.message, result["message"]), result["message"]
    assert f"{name}{case.suffix}" in result["message"], "the error names the file"
    budget = max(MIN_BUDGET_BYTES, BUDGET_FACTOR * result["size"])
    assert result["peak_bytes"] <= budget, f"{name}: peak {result['peak_bytes'] / 2**20:.1f} MiB"
