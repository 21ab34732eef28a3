"""Mosaic and mixup partners from a bounded buffer of recent images (augment/partners.py)."""

from __future__ import annotations

import numpy as np
import pytest
from augment_scenes import ListDataset, assert_boxes_enclose_pixels, scenes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolov12.data.augment import build_detection_transforms
from yolov12.data.augment.partners import DatasetPartners, MixingBuffer, partner_buffer_size
from yolov12.data.types import Sample


def sample(value: int, side: int = 8) -> Sample:
    return Sample(np.full((side, side, 3), value, np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                  f"{value}")


class CountingDataset(ListDataset):
    """A list dataset that counts its loads (each one a decode in a real dataset)."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples, self.loads = samples, 0

    def load_sample(self, index: int) -> Sample:
        self.loads += 1
        return self.samples[index]


def test_mixing_buffer_keeps_the_latest_samples_and_lends_copies() -> None:
    buffer = MixingBuffer(2)
    for value in (1, 2, 3):
        buffer.add(sample(value))
    assert len(buffer) == 2 and [buffer.load_sample(i).path for i in range(2)] == ["2", "3"]
    lent = buffer.load_sample(0)
    lent.image[:] = 0
    assert int(buffer.load_sample(0).image.max()) == 2, "augmenting a partner must not alter the buffered image"
    buffer.clear()
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="capacity=0"):
        MixingBuffer(0)
    with pytest.raises(ValueError, match="capacity=0"):
        DatasetPartners(ListDataset([]), 0, 32)


def test_partners_load_from_the_dataset_until_the_buffer_is_full_then_from_the_buffer() -> None:
    dataset = CountingDataset([sample(value, side=16) for value in range(10)])
    partners = DatasetPartners(dataset, capacity=3, imgsz=8)
    assert len(partners) == 10, "indices are drawn over the whole split"
    first = [partners.load_sample(index) for index in (4, 5, 6)]
    assert [s.path for s in first] == ["4", "5", "6"] and dataset.loads == 3
    assert first[0].image.shape == (8, 8, 3), "partners are resized to the training long side"
    np.random.seed(0)
    drawn = {partners.load_sample(9).path for _ in range(30)}
    assert dataset.loads == 3 and drawn == {"4", "5", "6"}, "a full buffer lends its own images, uniformly"
    partners.remember(sample(7, side=8))
    partners.remember(sample(7, side=8))
    assert len(partners.recent) == 3, "an image is kept once"
    assert {partners.load_sample(0).path for _ in range(40)} == {"5", "6", "7"}, "the oldest left for the new one"
    lent = partners.load_sample(0)
    lent.image[:] = 0
    assert all(int(s.image.min()) > 0 for s in partners.recent.values()), "lent copies only"
    assert partners.lookup("6").path == "6" and partners.lookup("4") is None, "the dataset asks for its images"
    partners.clear()
    assert partners.load_sample(2).path == "2" and dataset.loads == 4, "an emptied buffer fills from the dataset"


def test_the_automatic_size_is_ultralytics_rule() -> None:
    assert partner_buffer_size(images=96, batch=16) == 96
    assert partner_buffer_size(images=10_000, batch=16) == 128
    assert partner_buffer_size(images=10_000, batch=256) == 1000
    assert partner_buffer_size(images=0, batch=16) == 1


def test_the_mosaic_starts_from_an_image_it_then_keeps_and_decodes_no_partner_once_full() -> None:
    dataset = CountingDataset([sample(value, side=32) for value in range(1, 41)])
    partners = DatasetPartners(dataset, capacity=8, imgsz=32)
    pipeline = build_detection_transforms({"mosaic": 1.0}, imgsz=32, dataset=partners, training=True)
    np.random.seed(1)
    for index in range(40):
        pipeline(dataset.samples[index])
    assert dataset.loads == 8 - 2, "partners were decoded only while the buffer filled (two were mosaic inputs)"
    assert list(partners.recent) == [str(v) for v in range(33, 41)], "the latest inputs, oldest first"


class RecordingPartners(DatasetPartners):
    """Partners that note what they lend (the buffer draws with replacement, so a scene may be drawn twice)."""

    def __init__(self, dataset: ListDataset, capacity: int, imgsz: int) -> None:
        super().__init__(dataset, capacity, imgsz)
        self.lent: list[Sample] = []

    def load_sample(self, index: int) -> Sample:
        sample = super().load_sample(index)
        self.lent.append(sample)
        return sample


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_buffered_partners_keep_every_box_on_its_pixels(data, seed) -> None:
    """The geometry check of the training pipeline, with partners lent by a buffer that has filled.

    A scene drawn twice puts its colours in the mosaic twice; when one copy is cut to a sliver and dropped, its
    pixels stay (as in Ultralytics), so for such colours only "each kept box holds its colour" is checked.
    """
    colours = data.draw(st.permutations(range(8)))
    primary, *others = [data.draw(scenes(colours=colours[2 * i : 2 * i + 2])) for i in range(4)]
    partners = RecordingPartners(ListDataset(others), capacity=3, imgsz=96)
    for index in range(3):
        partners.load_sample(index)
    partners.lent = []
    hyp = {"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "degrees": 10.0, "shear": 2.0, "flipud": 0.5}
    pipeline = build_detection_transforms(hyp, imgsz=96, dataset=partners, training=True)
    np.random.seed(seed)
    out = pipeline(primary)
    assert out.image.shape == (96, 96, 3) and len(partners.lent) == 3
    drawn = Sample(primary.image, np.zeros((0, 4), np.float32),
                   np.concatenate([primary.classes, *(s.classes for s in partners.lent)]), "drawn")
    assert_boxes_enclose_pixels(out, tolerance=2.0, dropped_from=drawn)
