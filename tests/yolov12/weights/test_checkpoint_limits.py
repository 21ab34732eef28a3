"""The checks that keep the loaders within bounds: tensor views against their storages, the memory budget and its
override, module trees, plain data and metadata nesting, and the meta-device check of an architecture."""

from __future__ import annotations

import io
import json
import pickletools
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from fuzz.seeds import weights_native as native_seeds
from fuzz.seeds import weights_pt as pt_seeds
from fuzz.seeds.weights_pt import StorageRecord, TensorView, checkpoint_pickle, torch_archive
from yolov12.models import build_model, load_architecture
from yolov12.models.model import YOLOModel
from yolov12.models.registry import UnknownLayerError
from yolov12.models.zoo import zoo_names
from yolov12.weights import (
    CheckpointError,
    CheckpointMetadata,
    CheckpointMetadataError,
    CorruptCheckpointError,
    UnsupportedCheckpointError,
    load_weights,
    placeholder_state_dict,
    read_foreign_checkpoint,
    read_metadata,
)
from yolov12.weights.budget import AllocationBudget
from yolov12.weights.errors import CheckpointTooLargeError, UnknownCheckpointLayerError
from yolov12.weights.fit import check_fits, meta_model
from yolov12.weights.placeholders import plain_data
from yolov12.weights.state import state_shapes
from yolov12.weights.unpickler import RestrictedUnpickler

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "reference"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("size", "stride", "offset", "problem"), [
    ((1,), (1,), 4, "reaches element 4 of a storage of 4 elements"),
    ((5,), (1,), 0, "reaches element 4 of a storage of 4 elements"),
    ((2, 2), (3, 1), 0, "reaches element 4 of a storage of 4 elements"),
    ((2,), (-1,), 1, "is malformed"),
    ((-1,), (1,), 0, "is malformed"),
    ((1,), (1,), -1, "is malformed"),
    ((2, 2), (1,), 0, "is malformed"),
    ((1,) * 17, (1,) * 17, 0, "is malformed"),
    ((True,), (1,), 0, "is malformed"),
])
def test_views_outside_their_storage_are_refused(size, stride, offset, problem, tmp_path: Path) -> None:
    path = _write(tmp_path / "view.pt", pt_seeds.view_file(size, stride, offset, storage_numel=4))
    with pytest.raises(CorruptCheckpointError, match=problem) as error:
        read_foreign_checkpoint(path)
    assert str(error.value).startswith(f"{path}: the tensor view of 'archive/data/0' (offset {offset}")


def test_views_inside_their_storage_still_load(tmp_path: Path) -> None:
    storage = StorageRecord("0", 4)
    views = {"broadcast": TensorView(storage, 1, (3, 5), (0, 0)), "empty_at_end": TensorView(storage, 4, (0,), (1,)),
             "transposed": TensorView(storage, 0, (2, 2), (1, 2)), "last": TensorView(storage, 3, (1,), (1,))}
    data = torch.arange(4, dtype=torch.float32).numpy().tobytes()
    loaded = read_foreign_checkpoint(_write(tmp_path / "views.pt", torch_archive(checkpoint_pickle(views),
                                                                                 {"0": data})))
    assert torch.equal(loaded["broadcast"], torch.ones(3, 5))
    assert loaded["empty_at_end"].shape == (0,)
    assert torch.equal(loaded["transposed"], torch.tensor([[0.0, 2.0], [1.0, 3.0]]))
    assert torch.equal(loaded["last"], torch.tensor([3.0]))


def test_loaded_tensors_carry_no_guard_and_their_storages_cannot_grow(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(4), "p": nn.Parameter(torch.zeros(2))}, tmp_path / "plain.pt")
    loaded = read_foreign_checkpoint(tmp_path / "plain.pt")
    for tensor in loaded.values():
        assert "__setstate__" not in tensor.__dict__
        with pytest.raises(RuntimeError, match="not resizable"):
            torch.empty(0).set_(tensor.untyped_storage(), 0, (1000,), (1,))


def test_foreign_hooks_are_not_attached_to_tensors(tmp_path: Path) -> None:
    view = TensorView(StorageRecord("0", 1), 0, (1,), (1,))
    view.arguments = (*view.arguments[:5], OrderedDict({0: set}))  # a "backward hook" calling builtins.set
    tensor = read_foreign_checkpoint(_write(tmp_path / "hooks.pt", torch_archive(checkpoint_pickle(view),
                                                                                 {"0": bytes(4)})))
    assert not tensor._backward_hooks


def test_real_checkpoints_reference_only_allowed_globals() -> None:
    """What the Ultralytics releases need (bytearray is not among it): every global resolves without refusal."""
    fixtures = sorted(REFERENCE.glob("*.pt"))
    if not fixtures:
        pytest.skip(f"no reference checkpoints in {REFERENCE}")
    for fixture in fixtures:
        with zipfile.ZipFile(fixture) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            pickled = archive.read(name)
            unpickler = RestrictedUnpickler(io.BytesIO(pickled), archive, name[: -len("data.pkl")], str(fixture))
            for opcode, argument, _ in pickletools.genops(pickled):
                if opcode.name == "GLOBAL":
                    module, global_name = argument.split(" ")
                    assert (module, global_name) != ("__builtin__", "bytearray")
                    unpickler.find_class(module, global_name)


def test_the_budget_is_64_mib_or_four_times_the_file(tmp_path: Path) -> None:
    small, large = tmp_path / "small.pt", tmp_path / "large.pt"
    small.write_bytes(b"x")
    with large.open("wb") as handle:
        handle.truncate(100 * 2**20)  # a sparse file: its size without writing it
    assert AllocationBudget.for_file(small).limit == 64 * 2**20
    assert AllocationBudget.for_file(large).limit == 400 * 2**20
    assert AllocationBudget.for_file(large, max_bytes=1000).limit == 1000
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        AllocationBudget.for_file(small, max_bytes=0)


@pytest.mark.parametrize(("suffix", "build"), [(".pt", pt_seeds.tiny_classifier_file),
                                               (".safetensors", native_seeds.native_file)])
def test_max_bytes_overrides_the_budget_of_every_loader(suffix, build, tmp_path: Path) -> None:
    path = _write(tmp_path / f"tiny{suffix}", build())
    model, _ = load_weights(path)
    assert model.num_classes == 2
    refusal = rf"^{path}: .* budget \(1000 bytes: max_bytes\).*larger max_bytes"
    with pytest.raises(CheckpointTooLargeError, match=refusal):
        load_weights(path, max_bytes=1000)


def test_read_metadata_and_read_foreign_checkpoint_take_max_bytes(tmp_path: Path) -> None:
    native = _write(tmp_path / "tiny.safetensors", native_seeds.native_file())
    with pytest.raises(CheckpointTooLargeError, match="the decoded metadata document needs"):
        read_metadata(native, max_bytes=1000)
    assert read_metadata(native).names == {0: "cat", 1: "dog"}
    foreign = _write(tmp_path / "tiny.pt", pt_seeds.tiny_classifier_file())
    with pytest.raises(CheckpointTooLargeError, match=r"tiny.pt: the zip directory needs 3.\d KiB"):
        read_foreign_checkpoint(foreign, max_bytes=1000)


def test_placeholder_classes_count_against_the_budget(tmp_path: Path) -> None:
    """Each distinct foreign class costs ~1.6 KB: 20 bytes of pickle per GLOBAL could otherwise amplify 80-fold."""
    body = b"\x80\x02" + b"".join(b"cultralytics.m\nC%d\n0" % i for i in range(2000)) + b"N."
    path = _write(tmp_path / "classes.pt", torch_archive(body))
    assert read_foreign_checkpoint(path) is None
    with pytest.raises(CheckpointTooLargeError, match=r"the placeholder class for ultralytics.m.C\d+ needs"):
        read_foreign_checkpoint(path, max_bytes=2_000_000)


def test_objects_the_pickle_creates_count_against_the_budget(tmp_path: Path) -> None:
    """One byte of pickle makes an empty list (56 bytes): opcodes alone can grow a file some 50-fold."""
    path = _write(tmp_path / "lists.pt", torch_archive(b"\x80\x02(" + b"]" * 100_000 + b"l."))
    assert len(read_foreign_checkpoint(path)) == 100_000
    with pytest.raises(CheckpointTooLargeError, match="the object graph of the pickle needs 6.1 MiB"):
        read_foreign_checkpoint(path, max_bytes=2_000_000)


def test_overlong_global_names_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.pt", torch_archive(b"\x80\x02cultralytics.m\n" + b"C" * 300 + b"\n."))
    with pytest.raises(CorruptCheckpointError, match="names a global of 314 characters"):
        read_foreign_checkpoint(path)


def test_shared_modules_give_the_state_dict_torch_gives(tmp_path: Path) -> None:
    """Two branches share one activation (as Ultralytics convs share ``default_act``) and one linear layer."""
    model, act, linear = nn.Module(), nn.SiLU(), nn.Linear(2, 2)
    model.a, model.b = nn.Sequential(linear, act), nn.Sequential(linear, act)
    torch.save({"model": model}, tmp_path / "tied.pt")
    restored = placeholder_state_dict(read_foreign_checkpoint(tmp_path / "tied.pt")["model"])
    assert list(restored) == list(model.state_dict()) == ["a.0.weight", "a.0.bias", "b.0.weight", "b.0.bias"]
    assert all(torch.equal(restored[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("build", [pt_seeds.stored_member_read_as_deflate, pt_seeds.zip64_spanning_disks])
def test_archives_found_by_fuzzing_are_refused_as_damaged(build, tmp_path: Path) -> None:
    path = _write(tmp_path / "damaged.pt", build())
    with pytest.raises(CorruptCheckpointError, match=rf"^{path}: could not read the checkpoint"):
        load_weights(path)


def test_class_names_that_are_not_indices_are_refused(tmp_path: Path) -> None:
    architecture = {**pt_seeds.TINY_CLASSIFIER}
    torch.manual_seed(0)
    root = pt_seeds.generic_module_tree(build_model(pt_seeds.ArchitectureConfig.from_dict(architecture)))
    root.yaml, root.names = architecture, {"zero": "cat", "one": "dog"}
    torch.save({"model": root}, tmp_path / "names.pt")
    with pytest.raises(UnsupportedCheckpointError, match="are not strings numbered 0..1"):
        load_weights(tmp_path / "names.pt")


def test_plain_data_refuses_deep_cyclic_and_amplified_values() -> None:
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(CorruptCheckpointError, match="f.pt: a value nests deeper than 30 levels"):
        plain_data(deep, origin="f.pt")
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(CorruptCheckpointError, match="nests deeper"):
        plain_data(cyclic)
    shared = ["x" * 2**20]
    with pytest.raises(CheckpointTooLargeError, match="the plain-data copy"):
        plain_data([shared] * 100)  # 100 MiB of copies from one string
    assert plain_data({"lr0": 0.01, "path": ["a", (1, 2)], 3: {4}}) == {"lr0": 0.01, "path": ["a", [1, 2]], 3: [4]}


def test_metadata_nesting_is_limited_when_written_and_read() -> None:
    model = native_seeds.tiny_model()
    nested: dict = {}
    for _ in range(40):
        nested = {"a": nested}
    with pytest.raises(CheckpointMetadataError, match="nests deeper than 32 levels"):
        CheckpointMetadata.for_model(model, training_args=nested).to_json()
    document = json.dumps({**json.loads(CheckpointMetadata.for_model(model).to_json()), "training_args": nested})
    with pytest.raises(CheckpointMetadataError, match="f.safetensors: the yolov12 metadata nests deeper"):
        CheckpointMetadata.from_json(document, origin="f.safetensors")
    with pytest.raises(CheckpointMetadataError, match="nests deeper"):
        CheckpointMetadata.from_json("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(("variant", "error", "message"), [
    ("task-a-list", CheckpointMetadataError, r"task \['detect'\] is not one of"),
    ("scales-not-a-mapping", CheckpointMetadataError, "the recorded architecture is invalid: AttributeError"),
    ("unknown-module", UnknownCheckpointLayerError, "unknown module 'C2fCIB'"),
])
def test_malformed_native_metadata_names_the_file(variant, error, message, tmp_path: Path) -> None:
    path = _write(tmp_path / f"{variant}.safetensors", native_seeds.VARIANTS[variant]())
    with pytest.raises(error, match=message) as raised:
        load_weights(path)
    assert str(path) in str(raised.value) and isinstance(raised.value, CheckpointError)
    if error is UnknownCheckpointLayerError:
        assert isinstance(raised.value, UnknownLayerError)


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_architecture_passes_the_meta_check_against_its_own_tensors(name: str) -> None:
    config = load_architecture(name)
    with torch.device("meta"):
        shapes = state_shapes(YOLOModel(config).state_dict())
    check_fits(config, None, shapes, name, AllocationBudget(2**40, name))


@pytest.mark.parametrize("name", ["yolov12n", "yolov12n-aff-dyhead", "yolov12n-cls", "yolo11n", "yolov8n"])
def test_the_meta_build_has_the_real_model_state_dict(name: str) -> None:
    config = load_architecture(name)
    real = state_shapes(build_model(config).state_dict())
    assert state_shapes(meta_model(config, None, name, real).state_dict()) == real
