"""COCO-Lite: a class-balanced subset of a COCO-format dataset, for quick ablations.

For each category (ascending id), up to ``per_class`` images that contain a non-crowd instance of it are drawn
with a seeded RNG; the subset is the union. The new instances JSON keeps every category (same ids) and every
annotation of the chosen images; images are symlinked (or copied) into ``out_dir/images/<split>/``.

CLI: ``python -m yolov12.data.coco_lite ANNOTATIONS IMAGES OUT --per-class 50 --seed 0``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from yolov12.data.errors import DatasetNotFoundError
from yolov12.data.formats.coco import load_coco

logger = logging.getLogger(__name__)


@dataclass
class CocoLiteSummary:
    """What :func:`make_coco_lite` wrote: paths, sizes, and per category how many chosen images contain it."""

    annotations: Path
    images_dir: Path
    images: int
    annotation_count: int
    sampled_per_class: dict[str, int] = field(default_factory=dict)
    images_per_class: dict[str, int] = field(default_factory=dict)
    missing_images: int = 0


def make_coco_lite(
    annotations_json: str | Path,
    images_dir: str | Path,
    out_dir: str | Path,
    per_class: int = 50,
    seed: int = 0,
    copy_images: bool = False,
) -> CocoLiteSummary:
    """Cut a class-balanced subset of a COCO dataset.

    Args:
        annotations_json: source instances JSON (for example ``annotations/instances_train2017.json``).
        images_dir: folder the JSON's ``file_name`` entries are relative to.
        out_dir: output root; gets ``annotations/instances_<split>.json`` and ``images/<split>/``.
        per_class: images drawn per category (fewer when a category has fewer images).
        seed: RNG seed; the same inputs and seed give the same subset.
        copy_images: copy instead of symlinking.

    Returns:
        A :class:`CocoLiteSummary`.

    Example:
        >>> make_coco_lite("instances_val2017.json", "val2017", "coco-lite", per_class=10)  # doctest: +SKIP
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    source, images_dir, out = Path(annotations_json), Path(images_dir), Path(out_dir)
    coco = load_coco(source)
    if not images_dir.is_dir():
        raise DatasetNotFoundError(f"images folder {images_dir} does not exist")
    rng = random.Random(seed)
    chosen: set[int] = set()
    sampled: dict[str, int] = {}
    for cat in sorted(coco.cats):
        candidates = sorted({a["image_id"] for a in coco.loadAnns(coco.getAnnIds(catIds=[cat], iscrowd=False))})
        picked = rng.sample(candidates, min(per_class, len(candidates)))
        sampled[coco.cats[cat]["name"]] = len(picked)
        chosen.update(picked)
    image_ids = sorted(chosen)
    annotations = [ann for i in image_ids for ann in coco.imgToAnns.get(i, [])]
    split = source.stem.split("_", 1)[-1]
    summary = CocoLiteSummary(
        annotations=out / "annotations" / f"instances_{split}.json",
        images_dir=out / "images" / split,
        images=len(image_ids),
        annotation_count=len(annotations),
        sampled_per_class=sampled,
        images_per_class=_images_per_class(coco, image_ids),
    )
    _write_json(coco.dataset, image_ids, coco, annotations, summary.annotations, per_class, seed, source)
    summary.missing_images = _place_images(coco, image_ids, images_dir, summary.images_dir, copy_images)
    logger.info("COCO-Lite: %d images, %d annotations, %d per class (seed %d) -> %s", summary.images,
                summary.annotation_count, per_class, seed, summary.annotations)
    return summary


def _images_per_class(coco, image_ids: list[int]) -> dict[str, int]:
    counts: Counter = Counter()
    for image_id in image_ids:
        cats = {a["category_id"] for a in coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)}
        counts.update(cats)
    return {coco.cats[c]["name"]: counts.get(c, 0) for c in sorted(coco.cats)}


def _write_json(dataset: dict, image_ids: list[int], coco, annotations: list, path: Path, per_class: int, seed: int,
                source: Path) -> None:
    info = dict(dataset.get("info", {}))
    info["description"] = f"COCO-Lite of {source.name}: up to {per_class} images per class, seed {seed}"
    subset = {
        "info": info,
        "licenses": dataset.get("licenses", []),
        "images": [coco.imgs[i] for i in image_ids],
        "annotations": annotations,
        "categories": dataset.get("categories", []),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(subset), encoding="utf-8")
    os.replace(temporary, path)


def _place_images(coco, image_ids: list[int], source: Path, target: Path, copy_images: bool) -> int:
    """Symlink or copy the chosen images; returns how many source files were missing (logged)."""
    missing = 0
    for image_id in image_ids:
        name = coco.imgs[image_id]["file_name"]
        src, dst = source / name, target / name
        if not src.exists():
            missing += 1
            logger.debug("COCO-Lite: source image %s is missing", src)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if copy_images:
            shutil.copy2(src, dst)
        else:
            os.symlink(src.resolve(), dst)
    if missing:
        logger.warning("COCO-Lite: %d chosen images are missing from %s (names at DEBUG level)", missing, source)
    return missing


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m yolov12.data.coco_lite ANNOTATIONS IMAGES OUT [--per-class N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("annotations_json")
    parser.add_argument("images_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copy-images", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_coco_lite(args.annotations_json, args.images_dir, args.out_dir, args.per_class, args.seed, args.copy_images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
