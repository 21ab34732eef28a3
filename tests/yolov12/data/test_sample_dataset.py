"""The offline sample dataset: deterministic, tight boxes, polygons that match, built once and reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.digest import dataset_digest
from yolov12.data.labels import load_labels
from yolov12.data.sample_dataset import (
    PHOTO_SPEC,
    SampleSpec,
    compose_scene,
    ensure_sample_classification,
    ensure_sample_detection,
    write_sample_detection,
)

SMALL = SampleSpec(train_images=6, val_images=3, image_size=160, min_digit_size=16, max_digit_size=48)


def _records(data_yaml, split="train"):
    records, _ = load_labels(load_dataset_config(data_yaml), split, use_cache=False)
    return records


def test_same_spec_gives_the_same_digest(tmp_path) -> None:
    first = write_sample_detection(tmp_path / "one", SMALL)
    second = write_sample_detection(tmp_path / "two", SMALL)
    assert dataset_digest(_records(first)) == dataset_digest(_records(second))
    assert dataset_digest(_records(first, "val")) == dataset_digest(_records(second, "val"))
    other = write_sample_detection(tmp_path / "three", SampleSpec(**{**SMALL.__dict__, "seed": 1}))
    assert dataset_digest(_records(other)) != dataset_digest(_records(first))


def test_boxes_are_tight_to_the_digit_pixels() -> None:
    pool = np.arange(0, 1797, 5)
    for seed in range(20):
        scene = compose_scene(np.random.default_rng(seed), pool, SampleSpec())
        assert scene.image.shape == (320, 320, 3) and scene.image.dtype == np.uint8
        assert 1 <= len(scene.boxes) <= 6
        union = np.zeros((320, 320), int)
        for box, mask, polygon in zip(scene.boxes, scene.masks, scene.polygons):
            rows, cols = np.nonzero(mask)
            np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            assert 16 <= max(box[2] - box[0], box[3] - box[1]) <= 96
            np.testing.assert_array_equal(np.r_[polygon.min(0), polygon.max(0)], box)  # polygon bounds == box
            union += mask
        assert union.max() <= 1  # digits never overlap, so every box's pixels are its own digit's


def test_photo_scenes_draw_contrasting_digits_on_real_photos() -> None:
    pool = np.arange(0, 1797, 5)
    for seed in range(10):
        scene = compose_scene(np.random.default_rng(seed), pool, PHOTO_SPEC)
        background = ~np.any(scene.masks, 0) if scene.masks else np.ones((320, 320), bool)
        assert scene.image[background].std() > 10  # a photo, not a flat or synthetic texture
        for box, mask in zip(scene.boxes, scene.masks):
            rows, cols = np.nonzero(mask)
            np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            x0, y0, x1, y1 = box.astype(int)
            ink = scene.image[mask].astype(float).mean()
            surround = scene.image[y0:y1, x0:x1][~mask[y0:y1, x0:x1]].astype(float).mean()
            assert abs(ink - surround) > 30, (seed, ink, surround)  # the digit is visible on its background


def test_labels_on_disk_match_the_scenes(tmp_path) -> None:
    data = write_sample_detection(tmp_path / "s", SMALL)
    records = _records(data)
    assert len(records) == 6 and all(r.segments is not None for r in records)
    pool = np.arange(1797)[np.arange(1797) % 5 != 0]
    for index, record in enumerate(records):
        scene = compose_scene(np.random.default_rng([SMALL.seed, 0, index]), pool, SMALL)
        cx, cy, w, h = record.boxes_xywhn.T * SMALL.image_size
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        np.testing.assert_allclose(xyxy, scene.boxes, atol=1e-3)
        np.testing.assert_array_equal(record.classes, scene.classes)


def test_builtin_is_built_once_and_reused(sample_root) -> None:
    data = ensure_sample_detection()
    assert data == sample_root / "sample" / "data.yaml"
    stamp = data.stat().st_mtime_ns
    assert ensure_sample_detection() == data and data.stat().st_mtime_ns == stamp
    assert not [p for p in sample_root.iterdir() if p.name.startswith(".") and p.is_dir()]  # no temporary folders
    config = load_dataset_config("sample")
    assert len(config.resolve_split("train")) == 96 and len(config.resolve_split("val")) == 32
    records, report = load_labels(config, "val")
    assert report.images == 32 and not report.has_problems and sum(len(r) for r in records) >= 32
    cls_root = ensure_sample_classification()
    assert sorted(p.name for p in (cls_root / "train").iterdir()) == [str(d) for d in range(10)]
    assert sum(1 for _ in (cls_root / "val").rglob("*.jpg")) == 360


def test_stale_build_is_replaced(tmp_path) -> None:
    data = ensure_sample_detection(tmp_path, SMALL)
    (data.parent / ".complete").write_text("an older generator")
    (data.parent / "leftover.txt").write_text("x")
    assert ensure_sample_detection(tmp_path, SMALL) == data
    assert not (data.parent / "leftover.txt").exists()



def _slow_writer(out: Path) -> None:
    """A dataset writer that takes long enough for every racing process to be inside the build at once."""
    import time

    with open(out.parent / "writer-calls.txt", "a") as calls:
        calls.write("x")
    time.sleep(2.0)
    write_sample_detection(out, SMALL)


def _race(root: str, start) -> None:
    from yolov12.data.sample_dataset import _build_once

    start.wait()
    _build_once(Path(root) / "sample", SMALL, _slow_writer)
    assert (Path(root) / "sample" / "data.yaml").is_file()


def test_concurrent_builders_build_once_and_never_replace_a_finished_build(tmp_path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_race, args=(str(tmp_path), start)) for _ in range(3)]
    for worker in workers:
        worker.start()
    start.set()  # all three race for the same empty folder, as the ranks of a DDP job on a fresh machine do
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert (tmp_path / "writer-calls.txt").read_text() == "x", "the dataset was built more than once"
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith(".")], "temporary folders left"
