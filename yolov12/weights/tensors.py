"""The tensors of a foreign checkpoint: storages read from the archive, views checked against them before they exist.

torch rebuilds a tensor as a view (offset, sizes, strides) of a storage and, asked for a view larger than its
storage, grows the storage and leaves the new bytes uninitialised: a few hundred bytes of pickle could return freed
heap memory inside the weights, or allocate gigabytes. Here every view is checked first, every storage shares the
bytes read from the archive and cannot be resized, and the bytes a view spans count against the file's budget.
"""

from __future__ import annotations

import math
import sys
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from yolov12.weights.archive import member_info, read_byteorder, read_member
from yolov12.weights.budget import AllocationBudget, short_repr
from yolov12.weights.errors import CorruptCheckpointError, UnsafeCheckpointError

__all__ = ["MAX_TENSOR_DIMS", "STORAGE_DTYPES", "StorageType", "TensorFactory", "check_view"]

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
MAX_TENSOR_DIMS = 16
MAX_INDEX = 2**62  # offsets, sizes and strides beyond int64 range cannot describe real storage


@dataclass(frozen=True, slots=True)
class StorageType:
    """Stands for ``torch.<X>Storage`` in a pickle: only its dtype is used (to read ``data/<key>`` records)."""

    name: str
    dtype: torch.dtype


class TensorFactory:
    """The tensors of one load: storages read from the archive, views checked against them before they exist.

    Every tensor handed to the pickle carries a refusing ``__setstate__`` until the load ends: the BUILD opcode on a
    tensor would otherwise run ``Tensor.__setstate__``, whose legacy branch calls ``set_(storage, offset, size,
    stride)`` without any check.
    """

    def __init__(self, archive: zipfile.ZipFile, prefix: str, origin: str, budget: AllocationBudget) -> None:
        self.archive, self.prefix, self.origin, self.budget = archive, prefix, origin, budget
        self.byteorder = read_byteorder(archive, prefix, origin)
        self.storages: dict[str, torch.storage.TypedStorage] = {}
        self.records: dict[int, tuple[str, int]] = {}  # id(storage) -> (record name, elements)
        self.guarded: list[torch.Tensor] = []

    def storage(self, key: str, storage_type: StorageType, numel: Any) -> torch.storage.TypedStorage:
        """The storage in ``data/<key>`` (read once per key), ``numel`` elements of the storage type."""
        if key not in self.storages:
            storage = self._read_storage(key, storage_type, numel)
            self.storages[key] = storage
            self.records[id(storage)] = (f"{self.prefix}data/{key}", numel)
        return self.storages[key]

    def _read_storage(self, key: str, storage_type: StorageType, numel: Any) -> torch.storage.TypedStorage:
        record = f"{self.prefix}data/{key}"
        dtype = STORAGE_DTYPES.get(storage_type.name)
        if dtype is None or dtype != storage_type.dtype:
            raise CorruptCheckpointError(
                f"{self.origin}: storage {short_repr(key)} has an unknown storage type; the file is damaged")
        itemsize = 1 if storage_type.name == "UntypedStorage" else dtype.itemsize
        if isinstance(numel, bool) or not isinstance(numel, int) or not 0 <= numel < MAX_INDEX:
            raise CorruptCheckpointError(
                f"{self.origin}: storage {short_repr(key)} has size {short_repr(numel)}; the file is damaged")
        info = member_info(self.archive, record, self.origin)
        if info.file_size != numel * itemsize:
            raise CorruptCheckpointError(
                f"{self.origin}: storage record '{record}' holds {info.file_size} bytes, expected {numel} x "
                f"{itemsize}; the file is truncated or damaged"
            )
        data = read_member(self.archive, info, self.budget, self.origin)
        untyped = _untyped_storage(data, self.byteorder, dtype) if data else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)

    def view(
        self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, metadata: Any,
    ) -> torch.Tensor:
        """A tensor over ``storage``, refused unless every element it can address lies inside the storage."""
        record, elements = self.records.get(id(storage), ("", 0))
        if not record or not isinstance(storage, torch.storage.TypedStorage):
            raise CorruptCheckpointError(
                f"{self.origin}: a tensor is built on a {type(storage).__name__}, not on a storage of the archive; the "
                "file is damaged")
        where = (f"{self.origin}: the tensor view of '{record}' (offset {short_repr(offset)}, size "
                 f"{short_repr(size)}, stride {short_repr(stride)})")
        numel = check_view(elements, offset, size, stride, where)
        self.budget.charge(numel * storage.dtype.itemsize, f"the tensor view of '{record}'")
        if not isinstance(requires_grad, bool) or not (metadata is None or _is_flag_dict(metadata)):
            raise CorruptCheckpointError(f"{where} has malformed requires_grad or metadata; the file is damaged")
        tensor = torch.empty((0,), dtype=storage.dtype).set_(storage._untyped_storage, offset, size, stride)
        tensor.requires_grad = requires_grad
        if metadata:
            torch._utils.set_tensor_metadata(tensor, metadata)
        return self.guard(tensor)

    def parameter(self, data: Any, requires_grad: Any) -> nn.Parameter:
        """``nn.Parameter(data, requires_grad)``; the pickle's hooks and Python attributes are never applied."""
        if not isinstance(data, torch.Tensor) or not isinstance(requires_grad, bool):
            raise CorruptCheckpointError(
                f"{self.origin}: a parameter is rebuilt from a {type(data).__name__}; the file is damaged")
        return self.guard(nn.Parameter(data, requires_grad))

    def guard(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor.__setstate__ = self._refuse_setstate
        self.guarded.append(tensor)
        return tensor

    def _refuse_setstate(self, state: Any) -> None:
        raise UnsafeCheckpointError(
            f"refusing to load {self.origin}: the pickle sets the state of a tensor (BUILD), which would point it at "
            "memory outside its storage; torch.save never writes this")

    def release(self) -> None:
        """Drop the refusing ``__setstate__`` of every tensor built (the load is over)."""
        for tensor in self.guarded:
            tensor.__dict__.pop("__setstate__", None)
        self.guarded.clear()


def check_view(storage_numel: int, offset: Any, size: Any, stride: Any, where: str) -> int:
    """The number of elements of a valid view; raises unless offset, sizes and strides stay inside the storage."""
    if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list)) and len(size) == len(stride)
            and len(size) <= MAX_TENSOR_DIMS and all(_is_index(v) for v in (offset, *size, *stride))):
        raise CorruptCheckpointError(f"{where} is malformed: expected an offset and equally long sizes and strides "
                                     f"of at most {MAX_TENSOR_DIMS} non-negative integers; the file is damaged")
    numel = math.prod(size)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if numel else offset - 1
    if last >= storage_numel:
        raise CorruptCheckpointError(
            f"{where} reaches element {last} of a storage of {storage_numel} elements; refusing to read memory outside "
            "it (the file is damaged or hostile)")
    return numel


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INDEX


def _is_flag_dict(value: Any) -> bool:
    """torch's tensor metadata: a small dict of named boolean flags."""
    return isinstance(value, dict) and len(value) <= 8 and all(
        isinstance(k, str) and isinstance(v, bool) for k, v in value.items())


def _untyped_storage(data: bytearray, byteorder: str, dtype: torch.dtype) -> torch.UntypedStorage:
    """A storage sharing ``data`` (no copy); it cannot be resized, so nothing can grow it past the bytes read."""
    if byteorder != sys.byteorder and dtype.itemsize > 1:
        unit = dtype.itemsize // 2 if dtype.is_complex else dtype.itemsize
        np.frombuffer(data, dtype=np.dtype(f"u{unit}")).byteswap(inplace=True)
    return torch.frombuffer(data, dtype=torch.uint8).untyped_storage()
