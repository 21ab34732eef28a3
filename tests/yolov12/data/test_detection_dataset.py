"""Torch datasets: raw samples in pixels, colour conversion of odd images, transforms, classification folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolov12.data.classification_dataset import ClassificationDataset
from yolov12.data.detection_dataset import DetectionDataset, build_datasets
from yolov12.data.errors import DatasetError
from yolov12.data.types import LabelRecord, Sample


def _record(path, height=50, width=100) -> LabelRecord:
    return LabelRecord(
        str(path), height, width, np.array([1], np.int64), np.array([[0.5, 0.5, 0.2, 0.4]], np.float32),
        segments=[np.array([[0.4, 0.3], [0.6, 0.3], [0.5, 0.7]], np.float32)],
    )


@pytest.mark.parametrize(
    "pixels",
    [
        np.full((50, 100), 200, np.uint8),  # grayscale
        np.full((50, 100, 4), 200, np.uint8),  # BGRA
        np.full((50, 100, 3), 200 * 257, np.uint16),  # 16-bit
        np.full((50, 100), 200 * 257, np.uint16),  # 16-bit grayscale
    ],
    ids=["gray", "bgra", "16bit", "16bit-gray"],
)
def test_odd_images_become_bgr_uint8(tmp_path, pixels) -> None:
    path = tmp_path / "odd.png"
    assert cv2.imwrite(str(path), pixels)
    sample = DetectionDataset([_record(path)]).load_sample(0)
    assert sample.image.shape == (50, 100, 3) and sample.image.dtype == np.uint8
    assert int(sample.image[0, 0, 0]) == 200


def test_sample_boxes_and_segments_are_pixels(tmp_path, image_writer) -> None:
    path = image_writer(tmp_path / "a.jpg", height=50, width=100)
    sample = DetectionDataset([_record(path)])[0]
    assert isinstance(sample, Sample) and sample.path == str(path) and len(sample) == 1
    np.testing.assert_allclose(sample.boxes, [[40, 15, 60, 35]])
    assert sample.boxes.dtype == np.float32 and sample.classes.dtype == np.int64
    np.testing.assert_allclose(sample.segments[0], [[40, 15], [60, 15], [50, 35]], atol=1e-4)


def test_transform_runs_in_getitem_only(tmp_path, image_writer) -> None:
    path = image_writer(tmp_path / "a.jpg", height=50, width=100)
    calls = []

    def flip(sample: Sample) -> Sample:
        calls.append(sample.path)
        return Sample(sample.image[:, ::-1].copy(), sample.boxes, sample.classes, sample.path)

    dataset = DetectionDataset([_record(path)], transform=flip)
    dataset.load_sample(0)
    assert calls == []
    dataset[0]
    assert calls == [str(path)]


def test_missing_image_after_caching_says_what_to_do(tmp_path) -> None:
    with pytest.raises(DatasetError, match="cache.json"):
        DetectionDataset([_record(tmp_path / "gone.jpg")]).load_sample(0)


def test_classification_dataset(tmp_path, image_writer) -> None:
    for split in ("train", "val"):
        for index, cls in enumerate(("b", "a")):
            image_writer(tmp_path / split / cls / f"{index}.jpg", height=32, width=32, seed=index)
    (tmp_path / "val" / "a" / "broken.jpg").write_bytes(b"nope")
    dataset, names = build_datasets(tmp_path, "val")
    assert isinstance(dataset, ClassificationDataset) and names == ("a", "b")
    assert len(dataset) == 2 and [r.label for r in dataset.records] == [0, 1]
    sample = dataset[1]
    assert sample.image.shape == (32, 32, 3) and sample.label == 1 and sample.path.endswith("0.jpg")
    (tmp_path / "val" / "zzz").mkdir()
    image_writer(tmp_path / "val" / "zzz" / "x.jpg")
    with pytest.raises(DatasetError, match="not among the dataset's classes"):
        build_datasets(tmp_path, "val")


def test_build_datasets_detection_works_with_a_dataloader(tmp_path, yolo_dataset) -> None:
    data = yolo_dataset({"a": "0 0.5 0.5 0.2 0.2\n", "b": "2 0.5 0.5 0.4 0.4\n1 0.2 0.2 0.1 0.1\n"})
    dataset, names = build_datasets(data, "train")
    assert isinstance(dataset, DetectionDataset) and names == ("a", "b", "c") and len(dataset) == 2
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=list, num_workers=0)
    (batch,) = list(loader)
    assert [len(s) for s in batch] == [1, 2] and batch[1].image.shape == (64, 80, 3)


def test_classification_transform_maps_the_image(tmp_path, image_writer) -> None:
    image_writer(tmp_path / "train" / "a" / "0.jpg", height=32, width=48)
    dataset = ClassificationDataset.from_folder(tmp_path / "train", transform=lambda image: image[:16, :16])
    assert dataset[0].image.shape == (16, 16, 3) and dataset.load_sample(0).image.shape == (32, 48, 3)
