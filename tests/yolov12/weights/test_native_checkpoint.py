"""Native checkpoints: safetensors + JSON metadata round-trip, atomic writes, clear errors for bad files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from checkpoint_helpers import model_outputs
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import yolov12.weights.native as native
from yolov12.weights import (
    FORMAT_VERSION,
    CheckpointMetadata,
    CheckpointMetadataError,
    CorruptCheckpointError,
    StateDictMismatchError,
    UnsupportedCheckpointError,
    UnsupportedFormatVersionError,
    load_checkpoint,
    load_weights,
    read_metadata,
    save_checkpoint,
)


@pytest.mark.parametrize("fixture", ["detection_model", "classification_model"])
def test_round_trip_gives_identical_model_and_metadata(fixture: str, tmp_path: Path, request) -> None:
    model = request.getfixturevalue(fixture)
    metadata = CheckpointMetadata.for_model(
        model, training_args={"epochs": 3, "lr0": 0.01, "data": "toy.yaml"}, lineage={"run_id": "abc123"},
    )
    path = save_checkpoint(model, tmp_path / "model.safetensors", metadata=metadata)

    loaded, loaded_metadata = load_checkpoint(path)

    assert loaded_metadata == metadata.replace(created_at=loaded_metadata.created_at)  # the time of writing
    assert read_metadata(path) == loaded_metadata
    assert type(loaded) is type(model) and loaded.task == model.task
    assert loaded.config.to_dict() == model.config.to_dict()
    assert loaded.names == model.names
    assert not loaded.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    assert torch.equal(model_outputs(loaded), model_outputs(model))


def test_metadata_document_layout(detection_model: nn.Module, tmp_path: Path) -> None:
    path = save_checkpoint(detection_model, tmp_path / "runs" / "exp" / "m.safetensors",
                           lineage={"dataset_digest": "sha256:0"})  # missing folders are created
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
    assert set(header) == {"yolov12"}
    document = json.loads(header["yolov12"])
    assert document["format_version"] == FORMAT_VERSION
    assert document["names"] == {"0": "thing0", "1": "thing1", "2": "thing2"}
    assert document["task"] == "detect" and document["model_version"] == "turbo"
    assert document["image_size"] == 640 and document["training_args"] is None and document["source"] is None
    assert document["lineage"] == {"dataset_digest": "sha256:0"}
    assert document["created_at"].endswith("+00:00")
    assert document["architecture"] == detection_model.config.to_dict()


def test_existing_file_is_not_overwritten_unless_asked(detection_model: nn.Module, tmp_path: Path) -> None:
    path = save_checkpoint(detection_model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(detection_model, path, lineage={"run_id": "second"})
    assert path.read_bytes() == before

    save_checkpoint(detection_model, path, lineage={"run_id": "second"}, overwrite=True)
    assert read_metadata(path).lineage == {"run_id": "second"}


def _failing_save_file(tensors, filename, metadata=None):
    Path(filename).write_bytes(b"partial write")  # the crash happens half-way through
    raise OSError("disk full")


def test_failed_write_keeps_the_old_file_and_leaves_no_partial_file(
    detection_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = save_checkpoint(detection_model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    monkeypatch.setattr(native, "save_file", _failing_save_file)

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(detection_model, path, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(detection_model, tmp_path / "new.safetensors")

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_truncated_or_foreign_file_raises_corrupt_checkpoint(detection_model: nn.Module, tmp_path: Path) -> None:
    data = save_checkpoint(detection_model, tmp_path / "m.safetensors").read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a checkpoint at all")

    for path in (truncated, garbage):
        with pytest.raises(CorruptCheckpointError, match="not a readable safetensors checkpoint"):
            load_checkpoint(path)
    with pytest.raises(CorruptCheckpointError, match=str(truncated.name)):
        read_metadata(truncated)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.safetensors")


def _write_raw(path: Path, model: nn.Module, document: dict | None, drop: str | None = None) -> Path:
    tensors = {k: v.contiguous() for k, v in model.state_dict().items() if k != drop}
    save_file(tensors, str(path), metadata=None if document is None else {"yolov12": json.dumps(document)})
    return path


def test_unknown_format_version_names_the_fix(detection_model: nn.Module, tmp_path: Path) -> None:
    document = CheckpointMetadata.for_model(detection_model).to_dict()
    document["format_version"] = FORMAT_VERSION + 1
    path = _write_raw(tmp_path / "future.safetensors", detection_model, document)
    with pytest.raises(UnsupportedFormatVersionError, match="newer.*upgrade yolov12-platform"):
        load_checkpoint(path)

    document["format_version"] = "one"
    with pytest.raises(UnsupportedFormatVersionError, match="unknown checkpoint format_version 'one'"):
        CheckpointMetadata.from_json(json.dumps(document))


def test_safetensors_without_our_metadata_is_rejected(detection_model: nn.Module, tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "plain.safetensors", detection_model, None)
    with pytest.raises(CheckpointMetadataError, match="without 'yolov12' metadata"):
        load_checkpoint(path)


def test_invalid_metadata_documents_are_rejected(detection_model: nn.Module) -> None:
    good = CheckpointMetadata.for_model(detection_model).to_dict()
    with pytest.raises(CheckpointMetadataError, match="not valid JSON"):
        CheckpointMetadata.from_json("{not json")
    with pytest.raises(CheckpointMetadataError, match=r"lacks \['architecture'\]"):
        CheckpointMetadata.from_json(json.dumps({k: v for k, v in good.items() if k != "architecture"}))
    with pytest.raises(CheckpointMetadataError, match="2 class names for an architecture with nc=3"):
        CheckpointMetadata.from_json(json.dumps({**good, "names": {"0": "a", "1": "b"}}))
    with pytest.raises(CheckpointMetadataError, match="task 'segment'"):
        CheckpointMetadata.from_json(json.dumps({**good, "task": "segment"}))


def test_missing_tensor_is_named_in_the_error(detection_model: nn.Module, tmp_path: Path) -> None:
    document = CheckpointMetadata.for_model(detection_model).to_dict()
    path = _write_raw(tmp_path / "short.safetensors", detection_model, document, drop="model.0.conv.weight")
    with pytest.raises(StateDictMismatchError, match=r"1 missing \(e\.g\. model\.0\.conv\.weight\)"):
        load_checkpoint(path)


def test_metadata_overrides_are_checked(detection_model: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="did you mean 'lineage'"):
        save_checkpoint(detection_model, tmp_path / "m.safetensors", linage={"run_id": "x"})
    with pytest.raises(TypeError, match="come from the model"):
        save_checkpoint(detection_model, tmp_path / "m.safetensors", names={0: "a"})
    with pytest.raises(CheckpointMetadataError, match="not plain JSON"):
        save_checkpoint(detection_model, tmp_path / "m.safetensors", training_args={"device": torch.device("cpu")})
    assert not list(tmp_path.iterdir())


def test_half_precision_model_is_saved_as_given_and_loads_into_float32(
    classification_model: nn.Module, tmp_path: Path,
) -> None:
    half = copy.deepcopy(classification_model).half()
    path = save_checkpoint(half, tmp_path / "half.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert handle.get_tensor("model.0.conv.weight").dtype == torch.float16
    loaded, _ = load_checkpoint(path)
    assert loaded.model[0].conv.weight.dtype == torch.float32
    assert torch.equal(loaded.model[0].conv.weight, half.model[0].conv.weight.float())


def test_load_weights_dispatches_on_suffix(classification_model: nn.Module, tmp_path: Path) -> None:
    path = save_checkpoint(classification_model, tmp_path / "m.safetensors")
    model, metadata = load_weights(path)
    assert metadata.task == "classify" and torch.equal(model_outputs(model), model_outputs(classification_model))
    with pytest.raises(UnsupportedCheckpointError, match=r"unknown weights format '\.onnx'"):
        load_weights(tmp_path / "m.onnx")
