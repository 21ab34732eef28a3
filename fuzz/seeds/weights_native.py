"""Seed inputs of the ``weights_native`` fuzz target: a small valid native checkpoint (``.safetensors`` + ``yolov12``
JSON metadata), variants of its metadata, and hostile files the loader must refuse without building what they name.

    python -m fuzz.seeds.weights_native        # rewrites fuzz/corpus/weights_native/

The builders are also the hostile files of ``tests/yolov12/weights/test_hostile_checkpoints.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from fuzz.seeds import command_line, write_corpus
from fuzz.seeds.weights_pt import TINY_CLASSIFIER
from yolov12.models import ArchitectureConfig, build_model, load_architecture
from yolov12.weights import CheckpointMetadata
from yolov12.weights.native import METADATA_KEY


def tiny_model() -> torch.nn.Module:
    """The tiny classifier of the ``weights_pt`` seeds (one conv and a head, about 18k parameters)."""
    torch.manual_seed(0)
    return build_model(ArchitectureConfig.from_dict(TINY_CLASSIFIER, name="tiny-cls"), names={0: "cat", 1: "dog"})


def tiny_document() -> dict[str, Any]:
    """The metadata document of :func:`tiny_model`, as plain data."""
    model = tiny_model()
    metadata = CheckpointMetadata.for_model(model, created_at="2025-02-18T10:00:00+00:00", package_version="0.0.0",
                                            training_args={"imgsz": 64, "epochs": 1}, lineage={"run_id": "seed"})
    return metadata.to_dict()


def native_file(document: dict[str, Any] | str | None = None, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    """A native checkpoint: ``tensors`` (default: the tiny model's, as fp16) and ``document`` as the metadata (a dict
    is written as JSON, a string verbatim; default: the tiny model's document)."""
    if tensors is None:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tiny_model().state_dict().items()}
    document = tiny_document() if document is None else document
    text = document if isinstance(document, str) else json.dumps(document)
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata={METADATA_KEY: text})


def _variant(**changes: Any) -> bytes:
    """The tiny model's document with ``changes``, over no tensors (each variant fails before they are read)."""
    return native_file({**tiny_document(), **changes}, tensors={})


def huge_model_without_tensors() -> bytes:
    """No tensors at all, and metadata naming YOLOv12-x at four times its width (several GB once built)."""
    architecture = load_architecture("yolov12x").to_dict()
    architecture["scales"]["x"] = [1.0, 6.0, 4096]
    return native_file({**tiny_document(), "architecture": architecture, "names": {str(i): f"c{i}" for i in range(80)},
                        "task": "detect"}, tensors={})


def repeated_layers() -> bytes:
    """A layer repeated a million times (a million modules to build), with the tiny model's tensors."""
    architecture = {**tiny_document()["architecture"]}
    architecture["backbone"] = [*architecture["backbone"], [-1, 1_000_000, "Conv", [8, 3, 1]]]
    return native_file({**tiny_document(), "architecture": architecture})


def deep_metadata(depth: int = 100_000) -> bytes:
    """Metadata JSON nested ``depth`` levels deep (no tensors)."""
    return native_file("[" * depth + "]" * depth, tensors={})


VALID: dict[str, Callable[[], bytes]] = {"tiny-classifier": native_file}
VARIANTS: dict[str, Callable[[], bytes]] = {
    "names-list": lambda: _variant(names=["cat", "dog"]),
    "names-count-wrong": lambda: _variant(names={"0": "cat"}),
    "format-version-2": lambda: _variant(format_version=2),
    "missing-architecture": lambda: native_file({k: v for k, v in tiny_document().items() if k != "architecture"},
                                                tensors={}),
    "scales-not-a-mapping": lambda: _variant(architecture={**tiny_document()["architecture"], "scales": [1, 2]}),
    "unknown-module": lambda: _variant(architecture={**tiny_document()["architecture"],
                                                     "backbone": [[-1, 1, "C2fCIB", [8]]]}),
    "task-a-list": lambda: _variant(task=["detect"]),
    "no-metadata": lambda: save({"w": torch.ones(2)}),
}
HOSTILE: dict[str, Callable[[], bytes]] = {
    "huge-model-no-tensors": huge_model_without_tensors, "repeated-layers": repeated_layers,
    "deep-metadata": lambda: deep_metadata(5_000),
}


def write_seeds(folder: Path) -> None:
    """Write every valid, variant and hostile file into ``folder`` (the committed corpus of ``weights_native``)."""
    write_corpus(folder, {**VALID, **VARIANTS, **HOSTILE})


if __name__ == "__main__":
    command_line("weights_native", write_seeds)
