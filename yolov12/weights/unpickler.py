"""Read foreign PyTorch ``.pt`` files (Ultralytics, official YOLOv12) without running any code they name.

A ``torch.save`` file is a zip archive (read by :mod:`yolov12.weights.archive`) holding a pickle.
:class:`RestrictedUnpickler` resolves the globals the pickle names in three ways:

* an allowlist of harmless callables that rebuild tensors (views checked by :mod:`yolov12.weights.tensors`) and
  plain containers (what they copy is counted against the file's memory budget);
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
import pickletools
import re
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolov12.weights.archive import (
    ZIP_ENTRY_BYTES,
    archive_prefix,
    is_zip,
    member_info,
    not_a_zip_error,
    read_member,
)
from yolov12.weights.budget import MIN_BUDGET_BYTES, AllocationBudget, short_repr
from yolov12.weights.errors import CheckpointError, CorruptCheckpointError, UnsafeCheckpointError
from yolov12.weights.placeholders import (
    ITEM_BYTES,
    Placeholder,
    counting_arguments,
    placeholder_class,
    placeholder_state_dict,
)
from yolov12.weights.tensors import STORAGE_DTYPES, StorageType, TensorFactory

__all__ = ["RestrictedUnpickler", "placeholder_state_dict", "read_foreign_checkpoint"]

logger = logging.getLogger(__name__)

# Classes of foreign model code: replaced by inert placeholders, never imported.
PLACEHOLDER_PREFIXES: tuple[str, ...] = ("ultralytics.", "models.", "torch.nn.", "numpy.", "datetime.", "__main__.")
PLACEHOLDER_NAMES: frozenset[str] = frozenset({"argparse.Namespace", "types.SimpleNamespace"})
_PATH_CLASS = re.compile(r"^pathlib(\._local)?\.(Pure)?(Posix|Windows)?Path$")

MEMO_SLOT_BYTES = 16  # the C unpickler grows its memo table to twice the highest index a PUT names
OBJECT_BYTES = 64  # the most one opcode's object takes (an empty dict), besides its payload and sets
SET_BYTES = 256  # an empty set or frozenset
PLACEHOLDER_CLASS_BYTES = 2048  # one placeholder class (measured ~1.6 KB): a pickle may name thousands
MAX_GLOBAL_NAME = 256  # characters of module.name; placeholder classes are cached for the process
CONTAINER_TYPES = (list, tuple, dict, set, frozenset, str, bytes)  # what the counted constructors accept


def _safe_globals(tensors: TensorFactory, budget: AllocationBudget) -> dict[tuple[str, str], Any]:
    """The allowlist: (module, name) -> the object handed to the pickle.

    Built afresh for every load, with new wrapper functions: a pickle's BUILD opcode can set attributes on the objects
    it is handed, so none of them may be shared with later loads (or be torch's own functions). The tensor builders
    check every view against its storage; the container constructors count what they copy against ``budget``.
    """

    def rebuild_tensor_v2(*args: Any) -> torch.Tensor:
        if not 6 <= len(args) <= 7:
            raise CorruptCheckpointError(
                f"{tensors.origin}: _rebuild_tensor_v2 takes 6 or 7 arguments, got {len(args)}; the file is damaged")
        storage, offset, size, stride, requires_grad, _hooks, *metadata = args  # hooks are never serialised; dropped
        return tensors.view(storage, offset, size, stride, requires_grad, metadata[0] if metadata else None)

    def rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any) -> nn.Parameter:
        return tensors.parameter(data, requires_grad)

    def rebuild_parameter_with_state(data: torch.Tensor, requires_grad: bool, hooks: Any, state: Any) -> nn.Parameter:
        """Like torch's, but drops the Python attributes (``state``) instead of setting them on the parameter."""
        return tensors.parameter(data, requires_grad)

    def encode(text: str, encoding: str = "latin1") -> bytes:
        """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``: latin-1 only."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise CorruptCheckpointError(
                f"{tensors.origin}: unexpected _codecs.encode({type(text).__name__}, {short_repr(encoding)}) in the "
                "pickle")
        budget.charge(len(text), "_codecs.encode")
        return text.encode("latin1")

    found: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter_with_state,
        ("collections", "OrderedDict"): _counted(OrderedDict, "collections.OrderedDict", budget),
        ("torch", "Size"): _counted(torch.Size, "torch.Size", budget),
        ("torch", "device"): torch.device,
        ("_codecs", "encode"): encode,
    }
    for name in ("set", "frozenset", "dict", "list", "tuple"):  # copies of their argument: counted
        found[("builtins", name)] = _counted(getattr(builtins, name), f"builtins.{name}", budget)
    for name in ("slice", "complex", "object"):  # built-in types of fixed size: immutable
        found[("builtins", name)] = getattr(builtins, name)
    for name, dtype in STORAGE_DTYPES.items():
        found[("torch", name)] = StorageType(name, dtype)
    for name, value in vars(torch).items():
        if isinstance(value, torch.dtype):  # immutable, no __dict__
            found[("torch", name)] = value
    return found


def _counted(constructor: Callable[..., Any], name: str, budget: AllocationBudget) -> Callable[..., Any]:
    """``constructor`` for plain-container arguments only, counting the items it copies against ``budget``.

    A pickle can hand one large list to a constructor many times (each call costs a few bytes of pickle); counting
    the copies keeps that within the file's budget.
    """

    def build(*args: Any) -> Any:
        for argument in args:
            if not isinstance(argument, CONTAINER_TYPES):
                raise CorruptCheckpointError(
                    f"{budget.origin}: the pickle calls {name} on a {type(argument).__name__}; only plain containers "
                    "are rebuilt")
            budget.charge(ITEM_BYTES * len(argument), name)
        return constructor(*args)

    return build


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch zip archive: tensors and plain data, foreign classes as placeholders.

    Args:
        file: the pickle stream.
        archive: the open zip archive holding the storage records.
        prefix: the archive's folder (``"<folder>/"``).
        origin: shown in error messages (the checkpoint path).
        budget: counts what the load allocates (default: a fresh 64 MiB budget).
    """

    def __init__(self, file: io.BufferedIOBase, archive: zipfile.ZipFile, prefix: str, origin: str,
                 budget: AllocationBudget | None = None) -> None:
        super().__init__(file, encoding="utf-8")
        self.archive, self.prefix, self.origin = archive, prefix, origin
        self.budget = budget if budget is not None else AllocationBudget(MIN_BUDGET_BYTES, origin)
        self._tensors = TensorFactory(archive, prefix, origin, self.budget)
        self._safe = _safe_globals(self._tensors, self.budget)

    def load(self) -> Any:
        """Unpickle; placeholders count their arguments against the budget meanwhile."""
        with counting_arguments(self.budget):
            try:
                return super().load()
            finally:
                self._tensors.release()

    def find_class(self, module: str, name: str) -> Any:
        """Allowlisted object, placeholder class, or :class:`UnsafeCheckpointError`."""
        module, name = _modern_name(module, name)
        if module == "copyreg" and name == "_reconstructor":
            return self._reconstruct_placeholder
        safe = self._safe.get((module, name))
        if safe is not None:
            return safe
        qualified = f"{module}.{name}"
        if len(qualified) > MAX_GLOBAL_NAME:
            raise CorruptCheckpointError(
                f"{self.origin}: the pickle names a global of {len(qualified)} characters ({short_repr(qualified)}); "
                "the file is damaged or hostile")
        if qualified.startswith(PLACEHOLDER_PREFIXES) or qualified in PLACEHOLDER_NAMES or _PATH_CLASS.match(qualified):
            self.budget.charge(PLACEHOLDER_CLASS_BYTES + len(qualified), f"the placeholder class for {qualified}")
            return placeholder_class(qualified)
        raise UnsafeCheckpointError(
            f"refusing to load {self.origin}: it references {qualified}, which could execute code; "
            "only tensors and plain data are read from foreign checkpoints"
        )

    def _reconstruct_placeholder(self, cls: Any, base: Any, state: Any) -> Placeholder:
        """``copyreg._reconstructor`` (protocol 0/1 objects), restricted to placeholder classes."""
        if not (isinstance(cls, type) and issubclass(cls, Placeholder)):
            raise UnsafeCheckpointError(
                f"refusing to load {self.origin}: copyreg._reconstructor is asked to build {short_repr(cls)}; only "
                "classes of foreign model code are rebuilt (as inert placeholders)"
            )
        return cls() if state is None else cls(state)

    def persistent_load(self, pid: Any) -> torch.storage.TypedStorage:
        """``('storage', StorageType, key, location, numel)`` -> CPU storage read from ``data/<key>``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CorruptCheckpointError(
                f"{self.origin}: unexpected persistent id {short_repr(pid)}; not a torch.save file")
        _, storage_type, key, _location, numel = pid
        if not isinstance(key, str) or not isinstance(storage_type, StorageType):
            raise CorruptCheckpointError(
                f"{self.origin}: storage {short_repr(key)} has type {short_repr(storage_type)}, not a torch storage; "
                "the file is damaged")
        return self._tensors.storage(key, storage_type, numel)


def _modern_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names protocol-2 pickles use (``__builtin__.set``) -> Python 3 names, as ``fix_imports`` does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _count_pickle(data: bytearray, budget: AllocationBudget, origin: str) -> None:
    """Count what unpickling ``data`` will allocate before it runs, reporting damaged opcodes here.

    Each opcode creates at most one object (``OBJECT_BYTES``, a set ``SET_BYTES``) plus its payload (a string's
    characters), so pure opcodes can grow a file some 50-fold (an empty list is 56 bytes from one); and the C
    unpickler grows its memo table to twice the highest index a PUT names, so ten bytes naming 2**27 would take
    2 GiB. Declared payload sizes past the end of the data are refused here, before the unpickler allocates them.
    """
    highest, stored, objects = -1, 0, 0
    try:
        for opcode, argument, _position in pickletools.genops(data):
            objects += SET_BYTES if opcode.name in ("EMPTY_SET", "FROZENSET") else OBJECT_BYTES
            if isinstance(argument, (str, bytes, bytearray)):
                objects += len(argument)
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                highest = max(highest, argument)
            elif opcode.name == "MEMOIZE":
                stored += 1
    except (ValueError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise CorruptCheckpointError(
            f"{origin}: the pickle is damaged ({type(exc).__name__}: {_cut(str(exc))})") from None
    budget.charge(objects, "the object graph of the pickle")
    budget.charge(MEMO_SLOT_BYTES * (max(highest, stored) + 1), "the pickle's memo table")


def read_foreign_checkpoint(path: str | Path, *, max_bytes: int | None = None) -> Any:
    """Unpickle a ``torch.save`` zip file safely; foreign classes come back as placeholders.

    Args:
        path: the ``.pt`` / ``.pth`` file.
        max_bytes: memory the read may allocate (default ``max(64 MiB, 4 x file size)``, see
            :mod:`yolov12.weights.budget`).

    Returns:
        The top-level object (for Ultralytics checkpoints a dict with ``model``, ``ema``, ``train_args``...).

    Raises:
        UnsafeCheckpointError: the pickle references a global that could run code (nothing was run).
        CheckpointTooLargeError: reading it would allocate more than ``max_bytes``.
        UnsupportedCheckpointError: legacy (pre-1.6) torch format or a TorchScript archive.
        CorruptCheckpointError: truncated or damaged file, or a tensor view outside its storage.

    Example:
        >>> ckpt = read_foreign_checkpoint("yolo12n.pt")  # doctest: +SKIP
        >>> ckpt["model"]  # doctest: +SKIP
        <placeholder ultralytics.nn.tasks.DetectionModel>
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    return load_foreign(path, AllocationBudget.for_file(path, max_bytes))


def load_foreign(path: Path, budget: AllocationBudget) -> Any:
    """:func:`read_foreign_checkpoint` with a given budget (the importer goes on counting against it)."""
    if not is_zip(path):
        raise not_a_zip_error(path)
    try:
        with zipfile.ZipFile(path) as archive:  # parsing the directory takes ~2.4x its size: counted once read
            budget.charge(ZIP_ENTRY_BYTES * len(archive.infolist()), "the zip directory")
            prefix = archive_prefix(archive, path)
            data = read_member(archive, member_info(archive, f"{prefix}data.pkl", str(path)), budget, str(path))
            _count_pickle(data, budget, str(path))
            return RestrictedUnpickler(io.BytesIO(data), archive, prefix, str(path), budget).load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, RuntimeError, OverflowError, OSError, zlib.error) as exc:
        raise CorruptCheckpointError(
            f"{path}: could not read the checkpoint ({type(exc).__name__}: {_cut(str(exc))}); the file is damaged "
            "or not a checkpoint written by torch.save"
        ) from None


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
