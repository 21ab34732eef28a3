"""The validation letterbox records how its pixels relate to the image file's, and the batch carries it as optional
keys; training samples and batches stay as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from augment_scenes import ListDataset, draw_scene

from yolov12.data.augment import Letterbox, build_detection_transforms, collate_detection, to_training_arrays
from yolov12.data.augment.compose import replace_sample
from yolov12.data.detection_dataset import record_to_sample
from yolov12.data.types import LabelRecord

WIDE = draw_scene(300, 600, [(0, (200, 100, 350, 200), False)], path="wide.png")  # a 150x100 box


def as_loaded(scene):
    """The scene as a dataset loads it: it knows its file's (height, width)."""
    return replace_sample(scene, original_shape=scene.image.shape[:2])


def test_validation_pipeline_maps_the_file_to_the_network_input() -> None:
    out = build_detection_transforms(None, imgsz=64, training=False)(as_loaded(WIDE))
    # long side 600 -> 64: the file is scaled by 64/600 on both axes (32 rows of 300), then padded 16 rows on top
    assert out.image.shape[:2] == (64, 64) and out.original_shape == (300, 600)
    assert out.letterbox.ratio == pytest.approx((64 / 600, 32 / 300)) and out.letterbox.pad == (0, 16)
    ratio, pad = np.array(out.letterbox.ratio * 2), np.array(out.letterbox.pad * 2)
    assert np.allclose(out.boxes, WIDE.boxes * ratio + pad, atol=1e-4)


def test_a_sample_that_does_not_know_its_file_is_its_own_file() -> None:
    out = Letterbox(120, scaleup=True)(WIDE)
    assert out.original_shape == (300, 600)
    assert out.letterbox.ratio == pytest.approx((0.2, 0.2)) and out.letterbox.pad == (0, 30)


def test_loaded_samples_know_their_file_shape() -> None:
    record = LabelRecord("a.png", 300, 600, np.zeros(1, np.int64), np.array([[0.5, 0.5, 0.25, 0.25]], np.float32))
    assert record_to_sample(record, WIDE.image).original_shape == (300, 600)


def test_validation_batches_carry_the_geometry_and_training_batches_do_not() -> None:
    pipeline = build_detection_transforms(None, imgsz=64, training=False)
    tall = draw_scene(200, 100, [(1, (10, 10, 50, 50), False)], path="tall.png")
    batch = collate_detection([to_training_arrays(pipeline(as_loaded(scene))) for scene in (WIDE, tall)])
    assert batch["original_shapes"].tolist() == [[300, 600], [200, 100]]
    assert batch["original_shapes"].dtype == torch.int64 and batch["ratios"].dtype == torch.float64
    assert batch["ratios"].numpy() == pytest.approx(np.array([[64 / 600, 32 / 300], [32 / 100, 64 / 200]]))
    assert batch["pads"].tolist() == [[0.0, 16.0], [16.0, 0.0]]
    training = build_detection_transforms({"mosaic": 0.0}, imgsz=64, dataset=ListDataset([WIDE, tall]))
    plain = to_training_arrays(training(as_loaded(WIDE)))
    assert set(plain) == {"image", "boxes", "classes", "path"}
    assert set(collate_detection([plain])) == {"images", "batch_index", "classes", "boxes", "paths"}


def test_a_batch_mixing_letterboxed_and_other_items_is_refused() -> None:
    letterboxed = Letterbox(64)(as_loaded(WIDE))
    items = [to_training_arrays(letterboxed), to_training_arrays(replace_sample(letterboxed, letterbox=None))]
    with pytest.raises(ValueError, match=r"only some items of the batch carry \['original_shape', 'pad', 'ratio'\]"):
        collate_detection(items)
