"""Object keys as local paths: the one gate every S3 key passes before it names a file on this machine.

An S3 key is any string of up to 1024 bytes; a path is not. A key is turned into a path only when every
``/``-separated segment is a plain name: not empty (``a//b``, a leading ``/``), not ``.`` or ``..``, without a
backslash, NUL or other control character, valid UTF-8, at most 255 bytes. Such a path cannot leave the folder it is
joined to, and two different keys never name the same file (``a//b`` and ``a/./b`` would both be ``a/b``). Keys
ending with ``/`` are folder markers that some tools write, not files. :func:`path_inside` then checks the joined
path once more with symbolic links resolved, so a link planted inside the folder cannot redirect a write or delete.

Example:
    >>> safe_relative_path("bucket", "sets/coco/images/1.jpg", "sets/coco/")
    PurePosixPath('sets/coco/images/1.jpg')
    >>> segment_problem("..")
    "it has a '..' segment, which would leave the folder"
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path, PurePosixPath

from yolov12.data.errors import UnsafeObjectKeyError

MAX_SEGMENT_BYTES = 255  # NAME_MAX of Linux and macOS file systems
MAX_KEY_BYTES = 1024  # the longest key S3 stores


def segment_problem(segment: str) -> str | None:
    """Why ``segment`` cannot be one file or folder name, or None when it can."""
    if segment == "":
        return "it has an empty path segment ('//', or a leading or trailing '/')"
    if segment == "..":
        return "it has a '..' segment, which would leave the folder"
    if segment == ".":
        return "it has a '.' segment, which would name the same file as the key without it"
    if "/" in segment:
        return "it contains '/', so it is not a single name"
    if "\\" in segment:
        return "it contains a backslash, a path separator on Windows"
    control = next((c for c in segment if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if control is not None:
        return f"it contains the control character {control!r}"
    try:
        size = len(segment.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_SEGMENT_BYTES:
        return f"a path segment is {size} bytes long; file systems allow {MAX_SEGMENT_BYTES}"
    return None


def key_problem(key: str, prefix: str = "", reserved: Collection[str] = ()) -> str | None:
    """Why the object ``key`` (listed under ``prefix``) cannot become a relative path, or None when it can.

    Args:
        key: the object key as the store returned it.
        prefix: the prefix the key was listed under; the key must start with it and be more than it.
        reserved: names the key's first segment may not be (the mirror's own files and folders at its top).
    """
    if not key.startswith(prefix):
        return f"it is not under the listed prefix {prefix!r}"
    if key == prefix or key.endswith("/"):
        return "it is a folder marker (it ends with '/' or is the prefix itself), not a file"
    if key.startswith("/"):
        return "it is an absolute path (it starts with '/')"
    segments = key.split("/")
    problem = next((p for p in map(segment_problem, segments) if p), None)
    if problem:
        return problem
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"it is longer than {MAX_KEY_BYTES} bytes"
    if segments[0] in reserved:
        return f"its first segment {segments[0]!r} is a name the mirror keeps for its own files"
    return None


def safe_relative_path(bucket: str, key: str, prefix: str = "", reserved: Collection[str] = ()) -> PurePosixPath:
    """The object ``key`` of ``bucket`` as a relative path that stays strictly inside the folder it is joined to.

    Raises:
        UnsafeObjectKeyError: the key cannot be a local path (see :func:`key_problem`); names bucket, key and why.
    """
    problem = key_problem(key, prefix, reserved)
    if problem:
        raise UnsafeObjectKeyError(bucket, key, problem)
    return PurePosixPath(key)


def path_inside(root: Path, relative: PurePosixPath, *, bucket: str, key: str) -> Path:
    """``root / relative``, after checking that, with symbolic links resolved, it lies strictly inside ``root``.

    Raises:
        UnsafeObjectKeyError: a link (or anything else) makes the path resolve outside ``root``.
    """
    target = root.joinpath(*relative.parts)
    real_root, real_target = root.resolve(), target.resolve()
    if real_target == real_root or not real_target.is_relative_to(real_root):
        raise UnsafeObjectKeyError(bucket, key, f"its local path {target} resolves to {real_target}, outside "
                                                f"{real_root} (a symbolic link in the folder?)")
    return target
