"""cache=ram|disk: cached samples equal decoded ones array for array, .npy files are invalidated, fallbacks."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from yolov12.data import image_cache
from yolov12.data.augment import ResizeLongSide, build_detection_transforms
from yolov12.data.augment.formatting import collate_detection
from yolov12.data.classification_dataset import ClassificationDataset
from yolov12.data.detection_dataset import build_datasets
from yolov12.data.errors import DatasetError
from yolov12.data.image_cache import ImageCache, ImageCacheError, npy_path, sidecar_path
from yolov12.data.images import read_image_bgr, verify_image
from yolov12.engine.data_setup import DetectionItems
from yolov12.infer import image_io

LABELS = {f"im{i}": "0 0.5 0.5 0.2 0.3\n1 0.31 0.42 0.1 0.13\n2 0.95 0.9 0.1 0.2" for i in range(6)}


@pytest.fixture
def dataset(yolo_dataset):
    train, _ = build_datasets(str(yolo_dataset(LABELS)), "train")
    return train


def _same(a, b) -> None:
    assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image)
    assert a.boxes.dtype == b.boxes.dtype and np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.classes, b.classes)
    assert (a.segments is None) == (b.segments is None)


@pytest.mark.parametrize("mode", ["ram", "disk"])
@pytest.mark.parametrize("imgsz", [32, 80, 96])  # shrink, same size (no resize), enlarge
def test_cached_samples_equal_decoded_ones(dataset, mode: str, imgsz: int) -> None:
    resize = ResizeLongSide(imgsz)
    plain = [resize(dataset.load_sample(i)) for i in range(len(dataset))]
    dataset.cache = ImageCache([r.path for r in dataset.records], mode, long_side=imgsz)
    for index, expected in enumerate(plain):
        cached = dataset.load_sample(index)
        assert max(cached.image.shape[:2]) == imgsz
        _same(resize(cached), expected)
    assert all(npy_path(r.path).is_file() for r in dataset.records) == (mode == "disk")


def test_ram_cache_is_read_only_and_shared_by_forked_workers(dataset) -> None:
    dataset.transform = DetectionItems(build_detection_transforms({"mosaic": 1.0}, 32, dataset))

    def batches() -> list[dict]:
        generator = torch.Generator().manual_seed(0)
        loader = DataLoader(dataset, batch_size=3, shuffle=True, num_workers=2, generator=generator,
                            collate_fn=collate_detection)
        return list(loader)

    plain = batches()
    dataset.cache = ImageCache([r.path for r in dataset.records], "ram", long_side=32)
    with pytest.raises(ValueError, match="read-only"):
        dataset.load_sample(0).image[0, 0, 0] = 1
    for a, b in zip(plain, batches(), strict=True):
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["boxes"], b["boxes"])


def test_disk_cache_is_rewritten_when_the_image_changes(dataset, image_writer, caplog) -> None:
    paths = [r.path for r in dataset.records]
    ImageCache(paths, "disk", long_side=32)
    first = npy_path(paths[0])
    assert sidecar_path(first).is_file()
    with caplog.at_level(logging.INFO, logger="yolov12.data.image_cache"):
        ImageCache(paths, "disk", long_side=32)
    assert "0 .npy files written, 6 reused" in caplog.text
    image_writer(Path(paths[0]), seed=99)  # new pixels, same size
    os.utime(paths[0], ns=(0, 10**18))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="yolov12.data.image_cache"):
        cache = ImageCache(paths, "disk", long_side=32)
    assert "1 .npy files written, 5 reused" in caplog.text
    expected = ImageCache(paths[:1], "ram", long_side=32).get(paths[0])[0]
    assert np.array_equal(cache.get(paths[0])[0], expected)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="yolov12.data.image_cache"):
        ImageCache(paths, "disk", long_side=48)  # another training size: every file is rewritten
    assert "6 .npy files written" in caplog.text


def test_images_that_cannot_be_written_stay_in_ram(dataset, image_writer, caplog) -> None:
    paths = [r.path for r in dataset.records]
    npy_path(paths[0]).mkdir()  # the .npy cannot replace a folder (as in a read-only folder, which root ignores)
    twin = image_writer(Path(paths[1]).with_suffix(".png"))  # im1.jpg and im1.png both map to im1.npy
    with caplog.at_level(logging.WARNING, logger="yolov12.data.image_cache"):
        cache = ImageCache([*paths, str(twin)], "disk", long_side=32)
    assert "cannot keep 3 images as .npy" in caplog.text and "keeping those in RAM" in caplog.text
    assert set(cache.images) == {paths[0], paths[1], str(twin)}
    reference = ImageCache([*paths, str(twin)], "ram", long_side=32)
    for path in [*paths, str(twin)]:
        assert np.array_equal(cache.get(path)[0], reference.get(path)[0])


def test_classification_cache_keeps_the_decoded_image(tmp_path: Path, image_writer) -> None:
    for index in range(4):
        image_writer(tmp_path / "train" / f"c{index % 2}" / f"{index}.jpg", height=40 + index, width=50, seed=index)
    dataset = ClassificationDataset.from_folder(tmp_path / "train")
    plain = [dataset.load_sample(i).image for i in range(len(dataset))]
    dataset.cache = ImageCache([r.path for r in dataset.records], "ram")
    for index, expected in enumerate(plain):
        assert np.array_equal(dataset.load_sample(index).image, expected)


def test_ram_cache_larger_than_the_free_memory_is_refused(dataset, monkeypatch) -> None:
    monkeypatch.setattr(image_cache, "available_memory", lambda: 1000)
    with pytest.raises(ImageCacheError, match="cache=ram needs about .* use cache=disk or cache=False"):
        ImageCache([r.path for r in dataset.records], "ram", long_side=32)


# -- decoding budget and hostile cache files ---------------------------------------------------------------------


def test_dataset_image_over_the_decoded_budget_is_refused_by_name(tmp_path: Path, monkeypatch) -> None:
    deep = tmp_path / "deep.png"
    assert cv2.imwrite(str(deep), np.full((100, 200, 3), 40000, np.uint16))  # 120000 bytes decoded
    shallow = tmp_path / "shallow.png"
    assert cv2.imwrite(str(shallow), np.full((100, 200, 3), 150, np.uint8))  # same pixels, 60000 bytes
    monkeypatch.setattr(image_io, "MAX_DECODED_BYTES", 100_000)
    assert verify_image(shallow).ok and read_image_bgr(shallow).shape == (100, 200, 3)
    check = verify_image(deep)
    assert not check.ok and "3 channels of 16 bits" in check.reason and "decodes to 120000 bytes" in check.reason
    with pytest.raises(DatasetError) as info:
        read_image_bgr(deep)
    assert str(deep) in str(info.value) and "limit of 100000 bytes" in str(info.value)
    with pytest.raises(DatasetError, match="deep.png"):
        ImageCache([str(deep)], "ram")


def test_dataset_file_the_header_check_cannot_read_is_not_decoded(tmp_path: Path, monkeypatch) -> None:
    assert cv2.imwrite(str(tmp_path / "real.hdr"), np.zeros((16, 16, 3), np.float32))  # cv2 decodes it, Pillow not
    disguised = tmp_path / "photo.png"
    disguised.write_bytes((tmp_path / "real.hdr").read_bytes())
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded a file without a checked header"))
    assert not verify_image(disguised).ok
    with pytest.raises(DatasetError, match="photo.png"):
        read_image_bgr(disguised)


@pytest.mark.parametrize("tamper", ["float npy", "huge shape", "sidecar list", "sidecar shape text"])
def test_disk_cache_rewrites_cache_files_that_are_not_what_it_wrote(dataset, caplog, tamper: str) -> None:
    paths = [r.path for r in dataset.records]
    expected = ImageCache(paths[:1], "ram", long_side=32).get(paths[0])[0]
    ImageCache(paths, "disk", long_side=32)
    target = npy_path(paths[0])
    sidecar = sidecar_path(target)
    if tamper == "float npy":  # a valid .npy, but not an 8-bit BGR image
        np.save(target, np.zeros((2, 2), np.float64))
    elif tamper == "huge shape":  # a header claiming 30 GB over a few bytes of data
        header = {"descr": "|u1", "fortran_order": False, "shape": (100000, 100000, 3)}
        with target.open("wb") as handle:
            np.lib.format.write_array_header_1_0(handle, header)
            handle.write(b"\0" * 16)
    elif tamper == "sidecar list":
        sidecar.write_text("[1, 2, 3]")
    else:
        stored = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**stored, "shape": "64x80"}))
    with caplog.at_level(logging.INFO, logger="yolov12.data.image_cache"):
        cache = ImageCache(paths, "disk", long_side=32)
    assert "1 .npy files written, 5 reused" in caplog.text
    image, shape = cache.get(paths[0])
    assert np.array_equal(image, expected) and shape == (64, 80)
