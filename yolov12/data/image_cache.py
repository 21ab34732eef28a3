"""Decoded-image cache of a training dataset (``cache=ram|disk``): decode each image once, not once per epoch.

What is cached is what the dataset hands the augmentation pipeline after its first step: detection images resized so
that the longer side is ``imgsz`` (:func:`~yolov12.data.augment.mosaic.resize_long_side`, the very call the pipeline
makes, so the pixels are identical), classification images as decoded (their random resized crop is taken from the
full image, so a resized copy would change the crops). Labels are not cached; they come from the label cache as
always. Training with and without the cache gives the same batches (same seed, same pixels, same boxes).

- ``ram``: every image is decoded in the main process before the DataLoader starts, on a few threads (decoding
  releases the GIL). Loader workers are forked afterwards and share these arrays copy-on-write, so ``workers > 0``
  neither copies the cache nor refills it per worker (a per-worker cache would hold one copy per worker and only fill
  with the images each worker happened to draw). Refused in one line when the images would not fit in the memory
  the system reports as available.
- ``disk``: ``img.jpg`` -> ``img.npy`` beside the image, plus ``img.npy.json`` recording the source's size, mtime,
  the resize and the decoded shape. A ``.npy`` whose sidecar does not match the image file and the settings (the
  image changed, another ``imgsz``) is rewritten, and so is one that does not hold an (H, W, 3) uint8 image of that
  size (checked from its header, memory-mapped: a dataset may ship hostile cache files). Written to a temporary
  name and renamed, so concurrent ranks are safe. Images whose ``.npy`` cannot be written (read-only folder, two
  images sharing a stem such as ``a.jpg`` and ``a.png``) are kept in RAM instead, said in one warning line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from yolov12.data.augment.mosaic import resize_long_side
from yolov12.data.images import read_image_bgr
from yolov12.data.types import Sample
from yolov12.infer.image_io import decoded_byte_limit
from yolov12.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

CacheMode = Literal["ram", "disk"]
SIDECAR_VERSION = 1
RAM_HEADROOM = 0.8  # refuse a RAM cache larger than this share of the available memory
PROBE_IMAGES = 16  # images decoded to estimate the RAM a cache needs


class ImageCacheError(RuntimeError):
    """The cache cannot be built as asked (not enough memory); the message says what to use instead."""


def cache_threads() -> int:
    """Threads used to fill a cache: the cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


class ImageCache:
    """Images of a dataset by path: ``get(path) -> (image, (height, width) of the decoded file)``.

    Args:
        paths: the image files to cache (duplicates are cached once).
        mode: ``"ram"`` or ``"disk"``.
        long_side: resize so that the longer side is this many pixels (None: keep the decoded size).
        augment: the interpolation rule of the training resize (linear), as opposed to validation's (area when
            shrinking); see :func:`~yolov12.data.augment.mosaic.resize_long_side`.

    Example:
        >>> cache = ImageCache([r.path for r in dataset.records], "ram", long_side=640)  # doctest: +SKIP
        >>> image, (height, width) = cache.get(dataset.records[0].path)  # doctest: +SKIP
    """

    def __init__(self, paths: Sequence[str], mode: CacheMode, long_side: int | None = None,
                 augment: bool = True) -> None:
        if mode not in ("ram", "disk"):
            raise ValueError(f"cache mode {mode!r}: use 'ram' or 'disk'")
        self.mode, self.long_side, self.augment = mode, long_side, augment
        self.images: dict[str, np.ndarray] = {}  # RAM entries (all of them for "ram", the fallbacks for "disk")
        self.shapes: dict[str, tuple[int, int]] = {}  # decoded (height, width) of every cached image
        unique = list(dict.fromkeys(str(p) for p in paths))
        if mode == "ram":
            self._fill_ram(unique)
        else:
            self._fill_disk(unique)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, path: object) -> bool:
        return str(path) in self.shapes

    def get(self, path: str) -> tuple[np.ndarray, tuple[int, int]]:
        """The cached (H, W, 3) uint8 BGR image of ``path`` and the (height, width) it was decoded with."""
        path = str(path)
        image = self.images.get(path)
        if image is None:
            image = np.load(npy_path(path))
        return image, self.shapes[path]

    def nbytes(self) -> int:
        """Bytes held in RAM."""
        return sum(image.nbytes for image in self.images.values())

    # -- filling -----------------------------------------------------------------------------------------------

    def decode(self, path: str) -> tuple[np.ndarray, tuple[int, int]]:
        """Decode ``path`` and resize it as the cache stores it."""
        image = read_image_bgr(path)
        shape = (int(image.shape[0]), int(image.shape[1]))
        if self.long_side is not None:
            empty = Sample(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), path)
            image = resize_long_side(empty, self.long_side, self.augment).image
        image = np.ascontiguousarray(image)
        image.setflags(write=False)  # shared by every epoch: a transform that wrote into it would corrupt the cache
        return image, shape

    def _fill_ram(self, paths: list[str]) -> None:
        probe = paths[:PROBE_IMAGES]
        with ThreadPoolExecutor(cache_threads()) as pool:
            for path, (image, shape) in zip(probe, pool.map(self.decode, probe), strict=True):
                self.images[path], self.shapes[path] = image, shape
            check_memory(self.nbytes() / max(len(probe), 1) * len(paths), len(paths))
            rest = paths[len(probe):]
            for path, (image, shape) in zip(rest, pool.map(self.decode, rest), strict=True):
                self.images[path], self.shapes[path] = image, shape
        logger.info("cache=ram: %d images, %.1f MB", len(self.shapes), self.nbytes() / 1e6)

    def _fill_disk(self, paths: list[str]) -> None:
        targets: dict[str, list[str]] = {}
        for path in paths:
            targets.setdefault(str(npy_path(path)), []).append(path)
        shared = {p for group in targets.values() if len(group) > 1 for p in group}
        with ThreadPoolExecutor(cache_threads()) as pool:
            results = list(pool.map(lambda p: self._disk_entry(p, p in shared), paths))
        failures = []
        written = 0
        for path, (shape, image, outcome) in zip(paths, results, strict=True):
            self.shapes[path] = shape
            if image is not None:
                self.images[path] = image
                failures.append((path, outcome))
            written += outcome == "written"
        logger.info("cache=disk: %d images, %d .npy files written, %d reused", len(paths) - len(failures), written,
                    len(paths) - len(failures) - written)
        if failures:
            first_path, reason = failures[0]
            logger.warning("cache=disk: cannot keep %d images as .npy beside them (first: %s: %s); keeping those in "
                           "RAM instead (%.1f MB)", len(failures), first_path, reason, self.nbytes() / 1e6)

    def _disk_entry(self, path: str, shared_target: bool) -> tuple[tuple[int, int], np.ndarray | None, str]:
        """(decoded shape, the image if it stays in RAM, what happened: 'reused', 'written' or why not written)."""
        target = npy_path(path)
        expected = self._sidecar(path)
        if not shared_target and (shape := self._reusable(target, expected)) is not None:
            return shape, None, "reused"
        image, shape = self.decode(path)
        if shared_target:
            return shape, image, f"another image also maps to {target.name}"
        try:
            write_npy(target, image, {"key": expected, "shape": list(shape)})
        except OSError as exc:
            return shape, image, f"{type(exc).__name__}: {exc.strerror or exc}"
        return shape, None, "written"

    def _reusable(self, target: Path, expected: dict) -> tuple[int, int] | None:
        """The decoded (height, width) its sidecar records when ``target`` still holds what this cache would write
        for the image now; None when it must be rewritten (stale, or not a file this cache wrote)."""
        stored = read_sidecar(target)
        if stored is None or stored.get("key") != expected:
            return None
        shape = stored.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(type(s) is int and s > 0 for s in shape)):
            return None
        return (shape[0], shape[1]) if is_cached_image(target, self.long_side) else None

    def _sidecar(self, path: str) -> dict:
        stat = os.stat(path)
        return {"version": SIDECAR_VERSION, "source": Path(path).name, "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "long_side": self.long_side,
                "interpolation": "train" if self.augment else "val"}


def npy_path(image_path: str | Path) -> Path:
    """``dir/img.jpg`` -> ``dir/img.npy``."""
    return Path(image_path).with_suffix(".npy")


def sidecar_path(npy: Path) -> Path:
    """``img.npy`` -> ``img.npy.json``."""
    return npy.with_name(npy.name + ".json")


def read_sidecar(npy: Path) -> dict | None:
    """The sidecar of ``npy`` as a dict; None when it is missing, unreadable or not a JSON object."""
    try:
        stored = json.loads(sidecar_path(npy).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def is_cached_image(npy: Path, long_side: int | None) -> bool:
    """True when ``npy`` holds a complete (H, W, 3) uint8 image within the decoded-byte limit (and with the longer
    side ``long_side`` when given); read from its header and memory-mapped, so a lying header allocates nothing."""
    try:
        image = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, not a .npy, or shorter than its header says
        return False
    shape, dtype = image.shape, image.dtype
    del image  # unmaps the file
    return (dtype == np.uint8 and len(shape) == 3 and shape[2] == 3 and min(shape) > 0
            and shape[0] * shape[1] * 3 <= decoded_byte_limit()
            and (long_side is None or max(shape[:2]) == long_side))


def write_npy(target: Path, image: np.ndarray, sidecar: dict) -> None:
    """Write ``target`` and its sidecar, each through a temporary file renamed into place (sidecar last)."""
    for destination, write in ((target, lambda handle: np.save(handle, image)),
                               (sidecar_path(target), lambda handle: handle.write(json.dumps(sidecar).encode()))):
        with atomic_write(destination, "wb", durable=False) as handle:  # a cache: rebuilt if lost
            write(handle)


def available_memory() -> int | None:
    """Bytes of memory the kernel reports as available (``MemAvailable``), None where it is not reported."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(needed: float, images: int) -> None:
    """Raise :class:`ImageCacheError` when ``needed`` bytes exceed the headroom of the available memory."""
    available = available_memory()
    if available is not None and needed > RAM_HEADROOM * available:
        raise ImageCacheError(f"cache=ram needs about {needed / 2**30:.1f} GiB for {images} images but "
                              f"{available / 2**30:.1f} GiB are available; use cache=disk or cache=False")
