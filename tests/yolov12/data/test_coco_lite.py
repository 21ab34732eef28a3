"""COCO-Lite: per-class sampling is exact and seeded, the subset JSON is valid, images are linked."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from yolov12.data.coco_lite import main, make_coco_lite
from yolov12.data.formats.coco import load_coco

# category id -> number of images containing it (skewed on purpose)
FREQUENCIES = {1: 30, 2: 12, 5: 4, 9: 2}


def synthetic_coco(root: Path) -> tuple[Path, Path]:
    """60 images (empty files suffice: COCO-Lite never decodes them) with skewed category frequencies."""
    rng = random.Random(7)
    images_dir = root / "train2017"
    images_dir.mkdir(parents=True)
    images = [{"id": i, "file_name": f"{i:06d}.jpg", "width": 64, "height": 48} for i in range(1, 61)]
    for image in images:
        (images_dir / image["file_name"]).write_bytes(b"jpeg")
    annotations = []
    for cat, count in FREQUENCIES.items():
        for image_id in rng.sample(range(1, 61), count):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                                "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0})
    annotations.append({"id": 999, "image_id": 60, "category_id": 9, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1})
    categories = [{"id": c, "name": f"cat{c}"} for c in (*FREQUENCIES, 12)]  # 12 has no images
    path = root / "annotations" / "instances_train2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, images_dir


def test_balanced_and_seeded(tmp_path) -> None:
    annotations, images = synthetic_coco(tmp_path / "coco")
    summary = make_coco_lite(annotations, images, tmp_path / "lite", per_class=5, seed=3)
    assert summary.sampled_per_class == {"cat1": 5, "cat2": 5, "cat5": 4, "cat9": 2, "cat12": 0}
    assert all(summary.images_per_class[name] >= n for name, n in summary.sampled_per_class.items())
    subset = load_coco(summary.annotations)
    assert len(subset.imgs) == summary.images <= 16
    assert {a["image_id"] for a in subset.dataset["annotations"]} <= set(subset.imgs)
    assert len(subset.cats) == 5 and subset.dataset["info"]["description"].startswith("COCO-Lite")
    source = load_coco(annotations)
    for image_id in subset.imgs:  # every annotation of a chosen image is kept
        assert len(subset.imgToAnns[image_id]) == len(source.imgToAnns[image_id])
    linked = sorted((tmp_path / "lite" / "images" / "train2017").iterdir())
    assert len(linked) == summary.images and all(p.is_symlink() for p in linked)
    again = make_coco_lite(annotations, images, tmp_path / "again", per_class=5, seed=3)
    assert json.loads(again.annotations.read_text())["images"] == json.loads(summary.annotations.read_text())["images"]
    other = make_coco_lite(annotations, images, tmp_path / "other", per_class=5, seed=4)
    assert set(load_coco(other.annotations).imgs) != set(subset.imgs)


def test_cli_and_copy(tmp_path) -> None:
    annotations, images = synthetic_coco(tmp_path / "coco")
    assert main([str(annotations), str(images), str(tmp_path / "lite"), "--per-class", "1", "--copy-images"]) == 0
    files = list((tmp_path / "lite" / "images" / "train2017").iterdir())
    assert 1 <= len(files) <= 4 and not any(p.is_symlink() for p in files)
    with pytest.raises(ValueError, match="per_class"):
        make_coco_lite(annotations, images, tmp_path / "x", per_class=0)
