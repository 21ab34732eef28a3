"""A small offline dataset built on demand from the handwritten digits that scikit-learn ships.

Detection (``data="sample"``): scenes of 1-6 digits (8x8 digit images scaled to 24-96 px, slightly coloured) on
textured, noisy backgrounds; boxes are tight to the digit pixels (the pixels where the digit's alpha is drawn);
each digit also gets a polygon (the convex hull of its pixels, whose bounds are exactly its box) so that copy-paste
can be tested. YOLO layout with ``data.yaml``; classes ``"0".."9"``. Classification (``data="sample-cls"``):
every digit upscaled to 64x64 in ``train/<digit>/`` and ``val/<digit>/`` (every fifth digit is val).

Everything is seeded: the same spec gives byte-identical files. Digits of train and val scenes come from disjoint
pools. Built once into the ``datasets_dir`` setting (``$YOLOV12_DATASETS`` or ``yolov12 settings datasets_dir=...``;
default ``~/.cache/yolov12-platform/datasets``) in a temporary folder that is renamed into place, and reused
afterwards.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolov12.settings import load_settings

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
ALPHA_THRESHOLD = 0.25  # interpolated ink below this is not drawn, so the drawn pixels and the box agree exactly


@dataclass(frozen=True)
class SampleSpec:
    """What the detection sample contains; the defaults give ``data="sample"``."""

    train_images: int = 96
    val_images: int = 32
    image_size: int = 320
    min_digits: int = 1
    max_digits: int = 6
    min_digit_size: int = 24
    max_digit_size: int = 96
    segments: bool = True
    seed: int = 0
    background: str = "texture"  # "texture" (synthetic) or "photo" (crops of scikit-learn's two sample photos)


LARGE_SPEC = SampleSpec(train_images=480)  # data="sample-large": 5x the training scenes, the same 32 val scenes
PHOTO_SPEC = SampleSpec(train_images=128, min_digits=2, max_digits=8, min_digit_size=16, max_digit_size=64, seed=1,
                        background="photo")  # data="sample-photo": smaller digits, more of them, on real photos


@dataclass(frozen=True)
class SampleClsSpec:
    """What the classification sample contains; the defaults give ``data="sample-cls"``."""

    image_size: int = 64
    seed: int = 0


@dataclass
class Scene:
    """One composed image: (S, S, 3) uint8 BGR, (n, 4) float32 xyxy pixel boxes, (n,) classes, (k, 2) polygons."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    polygons: list[np.ndarray]
    masks: list[np.ndarray]  # (S, S) bool drawn pixels of each digit


def datasets_root() -> Path:
    """The ``datasets_dir`` setting (read when called): ``$YOLOV12_DATASETS``, else the settings file, else
    ``~/.cache/yolov12-platform/datasets`` (see :mod:`yolov12.settings`)."""
    return load_settings().datasets_dir


@lru_cache(maxsize=1)
def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: (1797, 8, 8) float32 ink in [0, 1] and (1797,) int64 labels.

    Reads the CSV that scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``, 64 pixel values 0..16 and the
    label per row) without importing scikit-learn, which takes seconds; falls back to ``load_digits()``.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the sample dataset is built from scikit-learn's digits; pip install scikit-learn")
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        with gzip.open(csv, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:  # pragma: no cover - another scikit-learn layout
        from sklearn.datasets import load_digits  # noqa: PLC0415 - slow import, only as a fallback

        digits = load_digits()
        images, target = digits.images, digits.target
    return (images / 16.0).astype(np.float32), target.astype(np.int64)


def compose_scene(rng: np.random.Generator, pool: np.ndarray, spec: SampleSpec) -> Scene:
    """Draw a background and paste 1..max_digits non-overlapping digits from ``pool`` (indices into the digits)."""
    images, labels = load_digit_images()
    size = spec.image_size
    canvas = BACKGROUNDS[spec.background](rng, size)
    taken = np.zeros((size, size), bool)
    boxes, classes, polygons, masks = [], [], [], []
    for _ in range(int(rng.integers(spec.min_digits, spec.max_digits + 1))):
        index = int(rng.choice(pool))
        alpha = _scaled_digit(images[index], int(rng.integers(spec.min_digit_size, spec.max_digit_size + 1)))
        placed = _place(rng, alpha, taken)
        if placed is None:
            continue
        top, left = placed
        mask = np.zeros((size, size), bool)
        mask[top:top + alpha.shape[0], left:left + alpha.shape[1]] = alpha > 0
        region = canvas[top:top + alpha.shape[0], left:left + alpha.shape[1]]
        dark_ink = spec.background != "photo" or region.mean() > 128  # on photos, ink contrasts with what is under it
        colour = rng.integers(*((0, 90) if dark_ink else (190, 256)), size=3).astype(np.float32)
        region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
        rows, cols = np.nonzero(mask)
        boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        classes.append(int(labels[index]))
        polygons.append(_hull_of_pixels(rows, cols))
        masks.append(mask)
        taken[max(top - 2, 0):top + alpha.shape[0] + 2, max(left - 2, 0):left + alpha.shape[1] + 2] = True
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * 6
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return Scene(image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64), polygons, masks)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32: light base colour, low-frequency texture, a few soft stripes (noise comes later)."""
    base = rng.uniform(150, 235, size=3).astype(np.float32)
    texture = cv2.resize(rng.uniform(-30, 30, (6, 6, 3)).astype(np.float32), (size, size),
                         interpolation=cv2.INTER_CUBIC)
    canvas = base + texture
    for _ in range(int(rng.integers(0, 4))):
        y = int(rng.integers(0, size))
        canvas[y:y + int(rng.integers(2, 8))] += rng.uniform(-20, 20)
    return np.clip(canvas, 120, 255, out=canvas)


@lru_cache(maxsize=1)
def load_sample_photos() -> tuple[np.ndarray, ...]:
    """scikit-learn's two sample photographs (``china.jpg``, ``flower.jpg``, 427x640) as BGR uint8 arrays."""
    spec = importlib.util.find_spec("sklearn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images" if spec else None
    photos = tuple(cv2.imread(str(path)) for path in sorted(folder.glob("*.jpg"))) if folder else ()
    if not photos or any(photo is None for photo in photos):
        raise ModuleNotFoundError("data='sample-photo' uses scikit-learn's sample photos; pip install scikit-learn")
    return photos


def _photo_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32: a random square crop (a third to all of the short side) of a sample photo."""
    photos = load_sample_photos()
    photo = photos[int(rng.integers(len(photos)))]
    height, width = photo.shape[:2]
    side = int(rng.integers(min(height, width) // 3, min(height, width) + 1))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = photo[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


BACKGROUNDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "texture": _background, "photo": _photo_background,
}


def _scaled_digit(digit: np.ndarray, longest: int) -> np.ndarray:
    """Crop the digit to its ink, scale its longer side to ``longest`` px -> (h, w) alpha, 0 below the threshold."""
    rows, cols = np.nonzero(digit > 0)
    crop = digit[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = longest / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    alpha = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = np.where(alpha > ALPHA_THRESHOLD, np.clip(alpha * 1.4, 0, 1), 0).astype(np.float32)
    rows, cols = np.nonzero(alpha)
    return alpha[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _place(rng: np.random.Generator, alpha: np.ndarray, taken: np.ndarray, tries: int = 30) -> tuple[int, int] | None:
    """A top-left corner where ``alpha``'s rectangle overlaps nothing placed so far; None after ``tries``."""
    size = taken.shape[0]
    height, width = alpha.shape
    if height >= size or width >= size:
        return None
    for _ in range(tries):
        top, left = int(rng.integers(0, size - height)), int(rng.integers(0, size - width))
        if not taken[top:top + height, left:left + width].any():
            return top, left
    return None


def _hull_of_pixels(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(k, 2) float32 convex hull of the pixel squares: it encloses every drawn pixel and its bounds are the box.

    Only each row's leftmost and rightmost pixel can lie on the hull, so only their corners are passed to OpenCV.
    """
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    last = np.r_[rows[1:] != rows[:-1], True]
    ends_rows, ends_cols = np.r_[rows[first], rows[last]], np.r_[cols[first], cols[last] + 1]
    corners = np.concatenate([np.stack([ends_cols, ends_rows + dy], 1) for dy in (0, 1)])
    return cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2)


def write_sample_detection(out_dir: str | Path, spec: SampleSpec = SampleSpec(), final_dir: Path | None = None) -> Path:
    """Write the detection sample (YOLO layout + data.yaml) into ``out_dir``; returns the data.yaml path.

    ``final_dir`` is where the folder will live after an atomic rename (written as ``path`` in the yaml).
    """
    out = Path(out_dir)
    _, labels = load_digit_images()
    indices = np.arange(len(labels))
    pools = {"train": indices[indices % 5 != 0], "val": indices[indices % 5 == 0]}
    counts = {"train": spec.train_images, "val": spec.val_images}
    for split_number, (split, count) in enumerate(counts.items()):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([spec.seed, split_number, i])
            scene = compose_scene(rng, pools[split], spec)
            name = f"{split}_{i:04d}"
            ok, encoded = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise OSError(f"OpenCV could not encode sample image {name}")
            (out / "images" / split / f"{name}.jpg").write_bytes(encoded.tobytes())
            (out / "labels" / split / f"{name}.txt").write_text(_label_text(scene, spec), encoding="utf-8")
    config = {
        "path": str(final_dir or out),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(NAMES)),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out / "data.yaml"


def _label_text(scene: Scene, spec: SampleSpec) -> str:
    size = float(spec.image_size)
    lines = []
    for cls, box, polygon in zip(scene.classes, scene.boxes, scene.polygons):
        if spec.segments:
            values = " ".join(f"{v / size:.6f}" for v in polygon.reshape(-1))
        else:
            x1, y1, x2, y2 = box / size
            values = f"{(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"
        lines.append(f"{cls} {values}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_sample_classification(out_dir: str | Path, spec: SampleClsSpec = SampleClsSpec()) -> Path:
    """Write every digit, upscaled and tinted, to ``out_dir/{train,val}/<digit>/<index>.jpg``; returns ``out_dir``."""
    out = Path(out_dir)
    images, labels = load_digit_images()
    rng = np.random.default_rng(spec.seed)
    for index, (digit, label) in enumerate(zip(images, labels)):
        split = "val" if index % 5 == 0 else "train"
        alpha = cv2.resize(digit, (spec.image_size, spec.image_size), interpolation=cv2.INTER_CUBIC)
        alpha = np.clip(alpha, 0, 1)[..., None]
        paper = rng.uniform(170, 240, size=3).astype(np.float32)
        ink = rng.uniform(0, 80, size=3).astype(np.float32)
        noise = rng.standard_normal((spec.image_size, spec.image_size, 3), dtype=np.float32) * 5
        image = paper * (1 - alpha) + ink * alpha + noise
        folder = out / split / NAMES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise OSError(f"OpenCV could not encode sample image {index}")
        (folder / f"{index:04d}.jpg").write_bytes(encoded.tobytes())
    return out


def ensure_sample_detection(root: Path | None = None, spec: SampleSpec = SampleSpec()) -> Path:
    """The detection sample's data.yaml, built once under :func:`datasets_root` (``sample`` for the default spec)."""
    target = _target(root, "sample", spec, SampleSpec())
    _build_once(target, spec, lambda tmp: write_sample_detection(tmp, spec, final_dir=target))
    return target / "data.yaml"


def ensure_sample_large_detection(root: Path | None = None) -> Path:
    """``data="sample-large"``: the detection sample with 480 training scenes; its validation scenes are ``sample``'s.

    Scenes are seeded by (seed, split, index), so the first 96 training scenes and all 32 validation scenes are
    byte-identical to ``sample``'s.
    """
    target = Path(root or datasets_root()) / "sample-large"
    _build_once(target, LARGE_SPEC, lambda tmp: write_sample_detection(tmp, LARGE_SPEC, final_dir=target))
    return target / "data.yaml"


def ensure_sample_photo_detection(root: Path | None = None) -> Path:
    """The second detection sample (``data="sample-photo"``): digits on crops of real photographs."""
    target = Path(root or datasets_root()) / "sample-photo"
    _build_once(target, PHOTO_SPEC, lambda tmp: write_sample_detection(tmp, PHOTO_SPEC, final_dir=target))
    return target / "data.yaml"


def ensure_sample_classification(root: Path | None = None, spec: SampleClsSpec = SampleClsSpec()) -> Path:
    """The classification sample's root folder (``train/``, ``val/``), built once under :func:`datasets_root`."""
    target = _target(root, "sample-cls", spec, SampleClsSpec())
    _build_once(target, spec, lambda tmp: write_sample_classification(tmp, spec))
    return target


def _target(root: Path | None, name: str, spec: object, default: object) -> Path:
    suffix = "" if spec == default else "-" + _spec_key(spec)[:10]
    return Path(root or datasets_root()) / f"{name}{suffix}"


def _spec_key(spec: object) -> str:
    text = json.dumps({"generator": GENERATOR_VERSION, **asdict(spec)}, sort_keys=True)  # type: ignore[call-overload]
    return hashlib.sha256(text.encode()).hexdigest()


def _is_complete(target: Path, key: str) -> bool:
    marker = target / ".complete"
    return marker.is_file() and marker.read_text(encoding="utf-8") == key


def _build_once(target: Path, spec: object, writer: Callable[[Path], object]) -> None:
    """Build into a temporary sibling folder and rename it to ``target``; reuse ``target`` when it is complete.

    Builders on one machine (the ranks of a DDP job, parallel tests) take an exclusive lock on a sibling file and
    check again under it, so a finished build is never replaced while another process reads it.
    """
    key = _spec_key(spec)
    if _is_complete(target, key):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(target, key):  # another process built it while this one waited
            return
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            logger.info("building the %s dataset in %s (once)", target.name, target)
            writer(temporary)
            (temporary / ".complete").write_text(key, encoding="utf-8")
            if target.exists():  # an older generator's build: move it aside, then replace it
                stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
                os.rename(target, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(temporary, target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
