"""What label verification found in one split: exact counts by kind, the files behind them, one summary line."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

logger = logging.getLogger(__name__)

# kind -> how the summary line says it; the order is the order of the summary line. Kinds in PROBLEM_KINDS make the
# summary a warning; the others are expected by design (background images, crowd boxes, VisDrone's ignored regions).
PHRASES: dict[str, str] = {
    "corrupt_images": "skipped {n} corrupt images",
    "missing_images": "skipped {n} missing images",
    "unsized_images": "skipped {n} images whose COCO entry has no width/height (needed to read them in place)",
    "unreadable_label_files": "ignored {n} unreadable label files (images kept as background)",
    "malformed_rows": "dropped {n} malformed rows",
    "class_out_of_range": "dropped {n} rows with out-of-range class ids",
    "unknown_class_names": "dropped {n} objects of unknown class names",
    "out_of_bounds_rows": "dropped {n} rows outside the image",
    "zero_area_boxes": "dropped {n} zero-area boxes",
    "duplicate_rows": "removed {n} duplicate rows",
    "clipped_boxes": "clipped {n} boxes slightly outside the image",
    "missing_label_files": "{n} images without a label file (background)",
    "empty_label_files": "{n} empty label files",
    "crowd_dropped": "dropped {n} crowd annotations",
    "ignored_regions_dropped": "dropped {n} ignored regions",
    "others_dropped": "dropped {n} 'others' objects",
    "difficult_flagged": "flagged {n} difficult objects",
}
PROBLEM_KINDS: frozenset[str] = frozenset(list(PHRASES)[:11])  # corrupt_images ... clipped_boxes


@dataclass
class LabelReport:
    """Counts of one split's verification; every skipped, dropped or repaired item is counted by kind.

    Attributes:
        split: split name.
        images: usable images (with or without objects).
        boxes: boxes kept over all usable images.
        corrupt_images ... difficult_flagged: counts by kind (see :data:`PHRASES`).
        problems: kind -> the files concerned (label file, or image when the image itself is the problem).
        cache_path: the cache file, or None when the cache is kept in memory.
        from_cache: True when the labels came from an up-to-date cache.
    """

    split: str = ""
    images: int = 0
    boxes: int = 0
    corrupt_images: int = 0
    missing_images: int = 0
    unsized_images: int = 0
    unreadable_label_files: int = 0
    malformed_rows: int = 0
    class_out_of_range: int = 0
    unknown_class_names: int = 0
    out_of_bounds_rows: int = 0
    zero_area_boxes: int = 0
    duplicate_rows: int = 0
    clipped_boxes: int = 0
    missing_label_files: int = 0
    empty_label_files: int = 0
    crowd_dropped: int = 0
    ignored_regions_dropped: int = 0
    others_dropped: int = 0
    difficult_flagged: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    cache_path: Path | None = None
    from_cache: bool = False

    def counts(self) -> dict[str, int]:
        """Non-zero counts by kind."""
        return {kind: getattr(self, kind) for kind in PHRASES if getattr(self, kind)}

    def add(self, counts: Counter, file: str) -> None:
        """Add one image's counts; ``file`` is recorded under each kind it has."""
        for kind, n in counts.items():
            if kind not in PHRASES:
                raise KeyError(f"unknown label problem kind {kind!r}; add it to PHRASES in {__name__}")
            setattr(self, kind, getattr(self, kind) + int(n))
            self.problems.setdefault(kind, []).append(file)

    @property
    def has_problems(self) -> bool:
        """True when anything was skipped, dropped or repaired."""
        return any(getattr(self, kind) for kind in PROBLEM_KINDS)

    def summary(self) -> str:
        """One line: ``train: 120 images, 598 boxes; skipped 2 corrupt images, ...; see <file> for the list``."""
        parts = [PHRASES[kind].format(n=n) for kind, n in self.counts().items()]
        line = f"{self.split}: {self.images} images, {self.boxes} boxes"
        if parts:
            line += "; " + ", ".join(parts)
        if self.has_problems:
            if self.cache_path:
                line += f"; see {self.cache_path} ('problems') for the list"
            else:
                line += "; file names at DEBUG level"
        return line

    def log(self) -> None:
        """Log the summary once (warning when anything was skipped or dropped) and the file names at DEBUG."""
        logger.log(logging.WARNING if self.has_problems else logging.INFO, "%s", self.summary())
        for kind, files in self.problems.items():
            if kind in PROBLEM_KINDS:
                logger.debug("%s %s: %s", self.split, kind, ", ".join(files))

    def to_dict(self) -> dict:
        """Plain data for the cache file."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("cache_path", "from_cache")}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> LabelReport:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
