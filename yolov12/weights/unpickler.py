"""Read foreign PyTorch ``.pt`` files (Ultralytics, official YOLOv12) without running any code they name.

A ``torch.save`` file is a zip archive: ``<folder>/data.pkl`` (the pickle), ``<folder>/data/<key>`` (raw storage
bytes) and ``<folder>/byteorder``. :class:`RestrictedUnpickler` resolves the globals the pickle names in three ways:

* an allowlist of real, harmless callables that rebuild tensors and plain containers;
* an inert :class:`~yolov12.weights.placeholders.Placeholder` class for classes of foreign model code
  (``ultralytics.*``, ``torch.nn.*``, ``numpy.*``, ``pathlib`` paths, namespaces, dates, ``__main__.*``);
* anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) raises :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import io
import logging
import pickle
import re
import sys
import tarfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolov12.weights.errors import CorruptCheckpointError, UnsafeCheckpointError, UnsupportedCheckpointError
from yolov12.weights.placeholders import Placeholder, placeholder_class, placeholder_state_dict

__all__ = ["RestrictedUnpickler", "placeholder_state_dict", "read_foreign_checkpoint"]

logger = logging.getLogger(__name__)

# Classes of foreign model code: replaced by inert placeholders, never imported.
PLACEHOLDER_PREFIXES: tuple[str, ...] = ("ultralytics.", "models.", "torch.nn.", "numpy.", "datetime.", "__main__.")
PLACEHOLDER_NAMES: frozenset[str] = frozenset({"argparse.Namespace", "types.SimpleNamespace"})
_PATH_CLASS = re.compile(r"^pathlib(\._local)?\.(Pure)?(Posix|Windows)?Path$")

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
# The pickled magic number that opens a pre-1.6 (non-zip) torch.save file.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


@dataclass(frozen=True)
class StorageType:
    """Stands for ``torch.<X>Storage`` in a pickle: only its dtype is used (to read ``data/<key>`` records)."""

    name: str
    dtype: torch.dtype


def _safe_globals() -> dict[tuple[str, str], Any]:
    """The allowlist: (module, name) -> the object handed to the pickle.

    Built afresh for every load, with new wrapper functions: a pickle's BUILD opcode can set attributes on the objects
    it is handed, so none of them may be shared with later loads (or be torch's own functions).
    """

    def rebuild_tensor_v2(*args: Any) -> torch.Tensor:
        return torch._utils._rebuild_tensor_v2(*args)

    def rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any) -> nn.Parameter:
        return torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_parameter_with_state(data: torch.Tensor, requires_grad: bool, hooks: Any, state: Any) -> nn.Parameter:
        """Like torch's, but drops the Python attributes (``state``) instead of setting them on the parameter."""
        return torch._utils._rebuild_parameter(data, requires_grad, hooks)

    def encode(text: str, encoding: str = "latin1") -> bytes:
        """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``: latin-1 only."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise CorruptCheckpointError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r}) in pickle")
        return text.encode("latin1")

    found: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter_with_state,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("_codecs", "encode"): encode,
    }
    for name in ("set", "frozenset", "slice", "complex", "bytearray", "object", "dict", "list", "tuple"):
        found[("builtins", name)] = getattr(builtins, name)  # built-in types: immutable
    for name, dtype in STORAGE_DTYPES.items():
        found[("torch", name)] = StorageType(name, dtype)
    for name, value in vars(torch).items():
        if isinstance(value, torch.dtype):  # immutable, no __dict__
            found[("torch", name)] = value
    return found


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch zip archive: tensors and plain data, foreign classes as placeholders.

    Args:
        file: the pickle stream.
        archive: the open zip archive holding the storage records.
        prefix: the archive's folder (``"<folder>/"``).
        origin: shown in error messages (the checkpoint path).
    """

    def __init__(self, file: io.BufferedIOBase, archive: zipfile.ZipFile, prefix: str, origin: str) -> None:
        super().__init__(file, encoding="utf-8")
        self.archive, self.prefix, self.origin = archive, prefix, origin
        self._storages: dict[str, torch.storage.TypedStorage] = {}
        self._byteorder = _read_byteorder(archive, prefix)
        self._safe = _safe_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Allowlisted object, placeholder class, or :class:`UnsafeCheckpointError`."""
        module, name = _modern_name(module, name)
        if module == "copyreg" and name == "_reconstructor":
            return self._reconstruct_placeholder
        safe = self._safe.get((module, name))
        if safe is not None:
            return safe
        qualified = f"{module}.{name}"
        if qualified.startswith(PLACEHOLDER_PREFIXES) or qualified in PLACEHOLDER_NAMES or _PATH_CLASS.match(qualified):
            return placeholder_class(qualified)
        raise UnsafeCheckpointError(
            f"refusing to load {self.origin}: it references {qualified}, which could execute code; "
            "only tensors and plain data are read from foreign checkpoints"
        )

    def _reconstruct_placeholder(self, cls: Any, base: Any, state: Any) -> Placeholder:
        """``copyreg._reconstructor`` (protocol 0/1 objects), restricted to placeholder classes."""
        if not (isinstance(cls, type) and issubclass(cls, Placeholder)):
            raise UnsafeCheckpointError(
                f"refusing to load {self.origin}: copyreg._reconstructor is asked to build {cls!r}; only classes "
                "of foreign model code are rebuilt (as inert placeholders)"
            )
        return cls() if state is None else cls(state)

    def persistent_load(self, pid: Any) -> torch.storage.TypedStorage:
        """``('storage', StorageType, key, location, numel)`` -> CPU storage read from ``data/<key>``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CorruptCheckpointError(f"{self.origin}: unexpected persistent id {pid!r:.80}; not a torch.save file")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CorruptCheckpointError(
                f"{self.origin}: storage {key!r} has type {storage_type!r}, not a torch storage; the file is damaged")
        if key not in self._storages:
            self._storages[key] = self._read_storage(str(key), storage_type, numel)
        return self._storages[key]

    def _read_storage(self, key: str, storage_type: StorageType, numel: Any) -> torch.storage.TypedStorage:
        record = f"{self.prefix}data/{key}"
        try:
            data = self.archive.read(record)
        except KeyError:
            raise CorruptCheckpointError(
                f"{self.origin}: storage record '{record}' is missing; the file is damaged") from None
        itemsize = 1 if storage_type.name == "UntypedStorage" else storage_type.dtype.itemsize
        if not isinstance(numel, int) or len(data) != numel * itemsize:
            raise CorruptCheckpointError(
                f"{self.origin}: storage record '{record}' holds {len(data)} bytes, expected {numel} x {itemsize}; "
                "the file is truncated or damaged"
            )
        dtype = torch.uint8 if itemsize == 1 else storage_type.dtype
        untyped = torch.UntypedStorage.from_buffer(data, byte_order=self._byteorder, dtype=dtype) if data else \
            torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=storage_type.dtype, _internal=True)


def _modern_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names protocol-2 pickles use (``__builtin__.set``) -> Python 3 names, as ``fix_imports`` does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _read_byteorder(archive: zipfile.ZipFile, prefix: str) -> str:
    try:
        order = archive.read(f"{prefix}byteorder").decode("ascii").strip()
    except KeyError:
        return sys.byteorder  # written before torch recorded it: native order, as torch.load assumes
    if order not in ("little", "big"):
        raise CorruptCheckpointError(f"unknown byteorder record {order!r}; expected 'little' or 'big'")
    return order


def read_foreign_checkpoint(path: str | Path) -> Any:
    """Unpickle a ``torch.save`` zip file safely; foreign classes come back as placeholders.

    Returns:
        The top-level object (for Ultralytics checkpoints a dict with ``model``, ``ema``, ``train_args``...).

    Raises:
        UnsafeCheckpointError: the pickle references a global that could run code (nothing was run).
        UnsupportedCheckpointError: legacy (pre-1.6) torch format or a TorchScript archive.
        CorruptCheckpointError: truncated or damaged file.

    Example:
        >>> ckpt = read_foreign_checkpoint("yolo12n.pt")  # doctest: +SKIP
        >>> ckpt["model"]  # doctest: +SKIP
        <placeholder ultralytics.nn.tasks.DetectionModel>
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    if not zipfile.is_zipfile(path):
        raise _not_a_zip_error(path)
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _archive_prefix(archive, path)
            data = archive.read(f"{prefix}data.pkl")
            return RestrictedUnpickler(io.BytesIO(data), archive, prefix, str(path)).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, RuntimeError) as exc:
        raise CorruptCheckpointError(
            f"{path}: could not read the pickle ({type(exc).__name__}: {exc}); the file is damaged or not a "
            "checkpoint written by torch.save"
        ) from exc


def _archive_prefix(archive: zipfile.ZipFile, path: Path) -> str:
    """The folder holding ``data.pkl`` (named after the file at save time, so it varies)."""
    names = archive.namelist()
    candidates = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(candidates) != 1:
        raise CorruptCheckpointError(f"{path}: expected one '<folder>/data.pkl' record, found {len(candidates)}; "
                                     "not a checkpoint written by torch.save")
    prefix = candidates[0][: -len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise UnsupportedCheckpointError(
            f"{path} is a TorchScript archive; only torch.save checkpoints are imported. Save the model's "
            "state dict or the original training checkpoint instead"
        )
    return prefix


def _not_a_zip_error(path: Path) -> Exception:
    with path.open("rb") as handle:
        head = handle.read(len(_LEGACY_MAGIC))
    if head == _LEGACY_MAGIC or head[:1] == b"\x80" or tarfile.is_tarfile(path):
        return UnsupportedCheckpointError(
            f"{path} uses the legacy (pre-1.6) torch.save format, which is not read here because it can only be "
            "opened by running its pickle; if you trust the file, load and re-save it with torch>=1.6 in an "
            "isolated environment, then import the new file"
        )
    if head.startswith(b"PK"):
        return CorruptCheckpointError(f"{path} is a damaged or truncated zip archive; re-download or re-save it")
    return CorruptCheckpointError(f"{path} is not a PyTorch checkpoint (expected the zip format of torch.save)")
