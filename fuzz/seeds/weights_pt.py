"""Seed inputs of the ``weights_pt`` fuzz target: small valid ``torch.save`` files, and hostile ones the restricted
unpickler must refuse with a clear error and without allocating past the file's memory budget.

    python -m fuzz.seeds.weights_pt            # rewrites fuzz/corpus/weights_pt/

The builders are also the hostile files of ``tests/yolov12/weights/test_hostile_checkpoints.py``. Each writes the
pickle opcode by opcode or through a pickler that names torch's own rebuild functions, so the files hold exactly what
a hostile author would write; nothing here is unpickled.
"""

from __future__ import annotations

import bz2
import io
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fuzz.seeds import command_line, write_corpus
from yolov12.models import ArchitectureConfig, build_model

FOLDER = "archive"

# The smallest model the importer builds: one conv and a classification head (about 18k parameters).
TINY_CLASSIFIER: dict[str, Any] = {
    "nc": 2, "scales": {"n": [1.0, 1.0, 64]}, "scale": "n", "yaml_file": "tiny-cls.yaml",
    "backbone": [[-1, 1, "Conv", [8, 3, 2]]], "head": [[-1, 1, "Classify", ["nc"]]],
}


@dataclass(frozen=True)
class StorageRecord:
    """A ``data/<key>`` record of the archive, pickled as torch.save's persistent id."""

    key: str
    numel: int
    storage: str = "FloatStorage"


class TensorView:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``, with an
    optional BUILD ``state`` applied to the rebuilt tensor."""

    def __init__(self, storage: StorageRecord, offset: int, size: tuple, stride: tuple, state: Any = None) -> None:
        self.arguments = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())
        self.state = state

    def __reduce__(self) -> tuple:
        reduced = (torch._utils._rebuild_tensor_v2, self.arguments)
        return reduced if self.state is None else (*reduced, self.state)


class ModuleRecord:
    """Pickles as a ``torch.nn.Module`` whose ``__dict__`` is ``state`` (NEWOBJ then BUILD, as torch.save writes a
    foreign model)."""

    def __init__(self, **state: Any) -> None:
        self.state = {"_parameters": {}, "_buffers": {}, "_modules": {}, **state}


class RawOpcodes:
    """Pickle opcodes written verbatim where this object stands (they must leave exactly one object)."""

    def __init__(self, opcodes: bytes) -> None:
        self.opcodes = opcodes


class _CheckpointPickler(pickle._Pickler):
    """torch.save's pickling (protocol 2, storages as persistent ids), plus :class:`RawOpcodes`."""

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[RawOpcodes] = lambda self, obj: self.write(obj.opcodes)

    def save_module(self, obj: ModuleRecord) -> None:
        self.save(nn.Module)
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        self.memoize(obj)  # before the state, so the state may refer back to the module
        self.save(obj.state)
        self.write(pickle.BUILD)

    dispatch[ModuleRecord] = save_module

    def persistent_id(self, obj: Any) -> tuple | None:
        if isinstance(obj, StorageRecord):
            return "storage", getattr(torch, obj.storage), obj.key, "cpu", obj.numel
        return None


def checkpoint_pickle(obj: Any) -> bytes:
    """``obj`` pickled as torch.save would (protocol 2)."""
    stream = io.BytesIO()
    _CheckpointPickler(stream, protocol=2).dump(obj)
    return stream.getvalue()


def torch_archive(pickle_bytes: bytes, records: dict[str, bytes] | None = None,
                  compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip laid out like torch.save's: ``archive/data.pkl``, ``archive/byteorder``, ``archive/data/<key>``."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(f"{FOLDER}/data.pkl", pickle_bytes)
        archive.writestr(f"{FOLDER}/byteorder", "little")
        for key, data in (records or {}).items():
            archive.writestr(f"{FOLDER}/data/{key}", data, compress_type=compression)
    return stream.getvalue()


def call_pickle(module: str, name: str, *args: Any) -> bytes:
    """Protocol-2 pickle of ``module.name(*args)`` written opcode by opcode (nothing is imported or called)."""
    arguments = pickle.dumps(args, protocol=2)[2:-1]  # without PROTO and STOP
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + arguments + b"R."


def save_bytes(obj: Any) -> bytes:
    """What ``torch.save(obj)`` writes."""
    stream = io.BytesIO()
    torch.save(obj, stream)
    return stream.getvalue()


# Valid files ---------------------------------------------------------------------------------------------------


def state_dict_file() -> bytes:
    """A bare state dict: float, half and integer tensors, a view sharing a storage."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return save_bytes({"weight": base, "view": base[1:, 2:], "half": torch.ones(3).half(), "step": torch.tensor(7)})


def generic_module_tree(module: nn.Module) -> nn.Module:
    """Copy a module tree into plain ``torch.nn.Module`` objects with fp16 tensors, as a foreign release looks."""
    generic = nn.Module()
    half = lambda t: t.detach().clone().half() if t.is_floating_point() else t.detach().clone()  # noqa: E731
    generic._parameters = OrderedDict((k, None if v is None else nn.Parameter(half(v), requires_grad=False))
                                      for k, v in module._parameters.items())
    generic._buffers = OrderedDict((k, None if v is None else half(v)) for k, v in module._buffers.items())
    generic._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    generic._modules = OrderedDict((k, generic_module_tree(v)) for k, v in module._modules.items())
    return generic


def tiny_classifier_file(architecture: dict[str, Any] | None = None, recorded: dict[str, Any] | None = None) -> bytes:
    """An Ultralytics-shaped release (``model`` holding a module tree with ``yaml``, ``names``) of ``architecture``
    (default: the tiny classifier); its recorded ``yaml`` is ``recorded`` when given, else ``architecture``."""
    architecture = architecture or TINY_CLASSIFIER
    torch.manual_seed(0)
    model = build_model(ArchitectureConfig.from_dict(architecture, name="tiny-cls"))
    root = generic_module_tree(model)
    root.yaml, root.names, root.task = dict(recorded or architecture), {0: "cat", 1: "dog"}, "classify"
    return save_bytes({"date": "2025-02-18T10:00:00", "version": "8.3.0", "model": root, "ema": None,
                       "train_args": {"imgsz": 64, "epochs": 1, "lr0": 0.01}})


# Hostile files -------------------------------------------------------------------------------------------------


def view_file(size: tuple, stride: tuple, offset: int = 0, storage_numel: int = 1) -> bytes:
    """``{"w": view}`` over a float storage of ``storage_numel`` elements (4 bytes each, zeros)."""
    storage = StorageRecord("0", storage_numel)
    pickled = checkpoint_pickle({"w": TensorView(storage, offset, size, stride)})
    return torch_archive(pickled, {"0": bytes(4 * storage_numel)})


def freed_memory_view() -> bytes:
    """A 64-element view of a 1-element storage: torch grows the storage and the weights hold freed heap bytes."""
    return view_file((64,), (1,))


def storage_growth() -> bytes:
    """A view starting at element 10**8 of a 1-element storage: the storage would grow to 400 MB."""
    return view_file((1,), (1,), offset=100_000_000)


def tensor_setstate() -> bytes:
    """A valid view, then BUILD with the legacy ``(storage, offset, size, stride)`` state: ``Tensor.__setstate__``
    runs ``set_`` on it without any check (the storage would grow to 200 MB)."""
    storage = StorageRecord("0", 1)
    view = TensorView(storage, 0, (1,), (1,), state=(storage, 0, (50_000_000,), (1,)))
    return torch_archive(checkpoint_pickle({"w": view}), {"0": bytes(4)})


def bytearray_allocation() -> bytes:
    """``builtins.bytearray(300_000_000)``: 278 bytes that allocate 300 MB."""
    return torch_archive(call_pickle("builtins", "bytearray", 300_000_000))


def memo_index() -> bytes:
    """``None`` memoised at index 2**27 (LONG_BINPUT): the C unpickler grows its memo table to 2 GiB."""
    return torch_archive(b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 27) + b".")


def tuple_copies(items: int = 1 << 14, copies: int = 1024) -> bytes:
    """One list of ``items`` Nones handed to ``builtins.tuple`` ``copies`` times, every copy kept: 6 bytes of pickle
    per copy of ``8 * items`` bytes (134 MB from 22 KB)."""
    opcodes = bytearray(b"\x80\x02cbuiltins\ntuple\nq\x00]q\x01(" + b"N" * items + b"e(")
    opcodes += b"h\x00h\x01\x85R" * copies
    opcodes += b"l."
    return torch_archive(bytes(opcodes))


def compressed_bomb(megabytes: int = 100, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ``ByteStorage`` record of ``megabytes`` MB of zeros, compressed (deflate ~1000:1, bzip2 ~10**6:1)."""
    size = megabytes * 2**20
    storage = StorageRecord("0", size, "ByteStorage")
    pickled = checkpoint_pickle({"w": TensorView(storage, 0, (size,), (1,))})
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(f"{FOLDER}/data.pkl", pickled)
        archive.writestr(f"{FOLDER}/byteorder", "little")
        info = zipfile.ZipInfo(f"{FOLDER}/data/0")
        info.compress_type = compression
        with archive.open(info, "w", force_zip64=True) as member:
            member._compressor = _compressor(compression)  # nothing written yet: a faster compressor, same format
            chunk = bytes(2**20)
            for _ in range(megabytes):
                member.write(chunk)
    return stream.getvalue()


def _compressor(compression: int) -> Any:
    if compression == zipfile.ZIP_BZIP2:
        return bz2.BZ2Compressor(9)
    return zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)  # run-length matches: fast on zeros, same ratio


def _module_file(module: ModuleRecord, records: dict[str, bytes] | None = None, **extra: Any) -> bytes:
    return torch_archive(checkpoint_pickle({"model": module, "ema": None, **extra}), records)


def stride0_half_view(elements: int = 1 << 28) -> bytes:
    """An Ultralytics-shaped model whose one fp16 parameter is a stride-0 view of ``elements`` (512 MiB as fp16) over
    a single element; casting it to float32 materialises 1 GiB."""
    storage = StorageRecord("0", 1, "HalfStorage")
    module = ModuleRecord(_parameters={"w": TensorView(storage, 0, (elements,), (0,))}, yaml=TINY_CLASSIFIER)
    return _module_file(module, {"0": bytes(2)})


def cyclic_module_tree() -> bytes:
    """A model whose ``_modules`` holds the model itself (the pickle memo makes the cycle)."""
    module = ModuleRecord(yaml=TINY_CLASSIFIER)
    module.state["_modules"]["again"] = module
    return _module_file(module)


def shared_module_tree(levels: int = 40) -> bytes:
    """Each module holds the one below it twice: 2**levels paths to walk from a file of a few KB."""
    module = ModuleRecord(_buffers={"b": TensorView(StorageRecord("0", 1), 0, (1,), (1,))})
    for _ in range(levels):
        module = ModuleRecord(_modules={"a": module, "b": module})
    module.state["yaml"] = TINY_CLASSIFIER
    return _module_file(module, {"0": bytes(4)})


def deep_architecture(depth: int = 5_000) -> bytes:
    """A ``yaml`` holding a list nested ``depth`` levels deep (two bytes per level)."""
    nested = RawOpcodes(b"]" * depth + b"a" * (depth - 1))
    return _module_file(ModuleRecord(yaml={**TINY_CLASSIFIER, "deep": nested}))


def huge_architecture() -> bytes:
    """One small tensor under a yaml whose scale makes the model 8192 channels wide (a 3x3 conv of 8192 x 8192:
    ~2.4 GB as float32), which the importer used to build before comparing anything."""
    wide = {**TINY_CLASSIFIER, "scales": {"h": [1.0, 1024.0, 8192]}, "scale": "h",
            "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [8, 3, 1]]]}
    module = ModuleRecord(_parameters={"w": TensorView(StorageRecord("0", 4), 0, (4,), (1,))}, yaml=wide)
    return _module_file(module, {"0": bytes(16)})


# Inputs the fuzzer found (each was a crash, now a CheckpointError) --------------------------------------------------


def stored_member_read_as_deflate() -> bytes:
    """The state-dict file with its ``data.pkl`` declared deflate in the zip directory while stored: inflating it
    raised a raw ``zlib.error``."""
    data = bytearray(state_dict_file())
    entry = data.index(b"PK\x01\x02")  # the first zip directory entry: data.pkl
    struct.pack_into("<H", data, entry + 10, zipfile.ZIP_DEFLATED)  # its compression method
    return bytes(data)


def zip64_spanning_disks() -> bytes:
    """The state-dict file with its zip64 end-record locator claiming two disks: ``zipfile.is_zipfile`` raised
    ``BadZipFile`` instead of answering."""
    data = bytearray(state_dict_file())
    locator = data.index(b"PK\x06\x07")
    struct.pack_into("<I", data, locator + 16, 2)  # total number of disks
    return bytes(data)


VALID: dict[str, Callable[[], bytes]] = {"state-dict": state_dict_file, "tiny-classifier": tiny_classifier_file}
HOSTILE: dict[str, Callable[[], bytes]] = {
    "freed-memory-view": freed_memory_view, "storage-growth": storage_growth, "tensor-setstate": tensor_setstate,
    "bytearray-300mb": bytearray_allocation, "memo-index-2gib": memo_index, "tuple-copies": tuple_copies,
    "deflate-1mb": lambda: compressed_bomb(1), "bzip2-bomb-100mb": lambda: compressed_bomb(100, zipfile.ZIP_BZIP2),
    "stride0-half-view": stride0_half_view, "cyclic-module-tree": cyclic_module_tree,
    "shared-module-tree": shared_module_tree, "deep-architecture": deep_architecture,
    "huge-architecture": huge_architecture,
}
CRASHES: dict[str, Callable[[], bytes]] = {
    "crash-stored-member-read-as-deflate": stored_member_read_as_deflate,
    "crash-zip64-spanning-disks": zip64_spanning_disks,
}


def write_seeds(folder: Path) -> None:
    """Write every valid and hostile file into ``folder`` (the committed corpus of ``weights_pt``)."""
    write_corpus(folder, {**VALID, **HOSTILE, **CRASHES})


if __name__ == "__main__":
    command_line("weights_pt", write_seeds)
