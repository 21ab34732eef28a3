"""Reading the members of a ``torch.save`` zip archive within a memory budget.

A ``torch.save`` file is a zip archive: ``<folder>/data.pkl`` (the pickle), ``<folder>/data/<key>`` (raw storage
bytes) and ``<folder>/byteorder``. Every member is counted against the file's budget at its declared size before a
byte of it is read, and read with a reader bounded by that size.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

from yolov12.weights.budget import AllocationBudget, short_repr
from yolov12.weights.errors import CorruptCheckpointError, UnsupportedCheckpointError

# The pickled magic number that opens a pre-1.6 (non-zip) torch.save file.
LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

# torch.save stores members uncompressed; deflate is read with a bounded reader, while bzip2 and lzma inflate a whole
# block at once (a few hundred bytes can become gigabytes before the size can be checked) and torch cannot read them.
READABLE_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
ZIP_ENTRY_BYTES = 160  # what one parsed zip directory entry costs (measured: ~120 bytes)
READ_CHUNK = 1 << 20

__all__ = ["archive_prefix", "is_zip", "member_info", "not_a_zip_error", "read_byteorder", "read_member"]


def read_byteorder(archive: zipfile.ZipFile, prefix: str, origin: str) -> str:
    """``little`` or ``big``: the byte order the storages were written in."""
    try:
        info = archive.getinfo(f"{prefix}byteorder")
    except KeyError:
        return sys.byteorder  # written before torch recorded it: native order, as torch.load assumes
    if info.file_size > 16:
        raise CorruptCheckpointError(f"{origin}: the byteorder record holds {info.file_size} bytes; the file is "
                                     "damaged")
    order = bytes(read_member(archive, info, AllocationBudget(16, origin), origin)).decode("ascii", "replace").strip()
    if order not in ("little", "big"):
        raise CorruptCheckpointError(
            f"{origin}: unknown byteorder record {short_repr(order)}; expected 'little' or 'big'")
    return order


def member_info(archive: zipfile.ZipFile, name: str, origin: str) -> zipfile.ZipInfo:
    """The directory entry of member ``name``; a missing one is a damaged file."""
    try:
        return archive.getinfo(name)
    except KeyError:
        raise CorruptCheckpointError(f"{origin}: storage record '{name}' is missing; the file is damaged") from None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: AllocationBudget, origin: str) -> bytearray:
    """The bytes of one archive member, counted against ``budget`` at their declared size before any is read.

    The read is bounded by the declared size (zipfile stops inflating there and checks the CRC), so a member that
    inflates past what it declares fails instead of filling memory.
    """
    method = READABLE_COMPRESSION.get(info.compress_type)
    if method is None:
        raise UnsupportedCheckpointError(
            f"{origin}: member '{info.filename}' is compressed with method {info.compress_type}; torch.save writes "
            "uncompressed archives and only stored or deflate members are read. Re-save the checkpoint")
    budget.charge(info.file_size, f"member '{info.filename}'")
    data = bytearray(info.file_size)
    with archive.open(info) as handle:
        filled = 0
        while filled < info.file_size:
            chunk = handle.read(min(READ_CHUNK, info.file_size - filled))
            if not chunk:
                break
            data[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
        if filled != info.file_size or handle.read(1):
            raise CorruptCheckpointError(
                f"{origin}: member '{info.filename}' does not hold the {info.file_size} bytes it declares; the file is "
                "truncated or damaged")
    return data


def is_zip(path: Path) -> bool:
    """``zipfile.is_zipfile``, except that a damaged zip64 end record (which it raises on) counts as a zip."""
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile:
        return True  # opening it fails with the message BadZipFile gives, as a CorruptCheckpointError


def archive_prefix(archive: zipfile.ZipFile, path: Path) -> str:
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


def not_a_zip_error(path: Path) -> Exception:
    """The error for a file that is not a zip archive: the legacy torch format, a damaged zip, or something else."""
    with path.open("rb") as handle:
        head = handle.read(len(LEGACY_MAGIC))
    if head == LEGACY_MAGIC or head[:1] == b"\x80" or tarfile.is_tarfile(path):
        return UnsupportedCheckpointError(
            f"{path} uses the legacy (pre-1.6) torch.save format, which is not read here because it can only be "
            "opened by running its pickle; if you trust the file, load and re-save it with torch>=1.6 in an "
            "isolated environment, then import the new file"
        )
    if head.startswith(b"PK"):
        return CorruptCheckpointError(f"{path} is a damaged or truncated zip archive; re-download or re-save it")
    return CorruptCheckpointError(f"{path} is not a PyTorch checkpoint (expected the zip format of torch.save)")
