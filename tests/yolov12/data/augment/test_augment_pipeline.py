"""The assembled pipelines: boxes stay consistent end to end, close_mosaic, formatting and collate."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from augment_scenes import ListDataset, assert_boxes_enclose_pixels, draw_scene, scenes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolov12.config import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.data.augment import (
    AugmentConfigError,
    DetectionTransforms,
    MixUp,
    Mosaic,
    PolicyTransform,
    augment_section,
    build_classification_transforms,
    build_detection_transforms,
    collate_detection,
    to_training_arrays,
)
from yolov12.data.augment import CopyPaste as CopyPasteTransform

GEOMETRY_ONLY = {"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_training_pipeline_boxes_enclose_pixels(data, seed) -> None:
    """Mosaic + affine/perspective + flips, one colour per instance across the four mosaic images.

    The primary scene is not in the dataset, whose three scenes the mosaic then draws exactly once each.
    """
    colours = data.draw(st.permutations(range(8)))
    primary, *others = [data.draw(scenes(colours=colours[2 * i : 2 * i + 2])) for i in range(4)]
    hyp = {**GEOMETRY_ONLY, "degrees": 10.0, "shear": 2.0, "perspective": 0.0005, "flipud": 0.5}
    pipeline = build_detection_transforms(hyp, imgsz=96, dataset=ListDataset(others), training=True)
    np.random.seed(seed)
    out = pipeline(primary)
    assert out.image.shape == (96, 96, 3)
    assert_boxes_enclose_pixels(out, tolerance=2.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_copy_paste_in_pipeline_without_mosaic(data, seed) -> None:
    dataset = ListDataset([data.draw(scenes(colours=data.draw(st.permutations(range(8)))[:4], min_size=64))])
    hyp = {**GEOMETRY_ONLY, "mosaic": 0.0, "copy_paste": 1.0, "degrees": 15.0, "fliplr": 0.0}
    pipeline = build_detection_transforms(hyp, imgsz=96, dataset=dataset)
    resize, _, copy_paste, affine = pipeline.transforms[0].transforms
    np.random.seed(seed)
    pasted = copy_paste(resize(dataset.load_sample(0)))
    out = affine(pasted)
    assert out.segments is not None and len(out.segments) == len(out.boxes)
    assert_boxes_enclose_pixels(out, tolerance=2.0, dropped_from=pasted)
    np.random.seed(seed)
    assert np.array_equal(pipeline(dataset.load_sample(0)).boxes, out.boxes)  # the same steps, in this order


def test_training_output_is_square_without_mosaic_and_validation_letterboxes() -> None:
    sample = draw_scene(60, 120, [(0, (10, 10, 50, 40), False)])
    train = build_detection_transforms({"mosaic": 0.0}, imgsz=64, dataset=None)
    assert train(sample).image.shape == (64, 64, 3)
    val = build_detection_transforms({}, imgsz=64, training=False)(sample)
    assert val.image.shape == (64, 64, 3)
    assert np.allclose(val.boxes, [[16 / 3, 64 / 3, 80 / 3, 112 / 3]])  # x 64/120, 16 px of padding on top
    assert_boxes_enclose_pixels(val, tolerance=1.0, tight=True)


def test_close_mosaic_turns_mixing_off_for_the_last_epochs_and_back_on_when_resuming_earlier() -> None:
    dataset = ListDataset([draw_scene(40, 40, [(0, (5, 5, 20, 20), False)])])
    pipeline = build_detection_transforms(
        {"mosaic": 1.0, "mixup": 0.2, "copy_paste": 0.1, "close_mosaic": 3}, imgsz=32, dataset=dataset
    )
    assert isinstance(pipeline, DetectionTransforms)
    mosaic, mixup, copy_paste = pipeline.find(Mosaic)[0], pipeline.find(MixUp)[0], pipeline.find(CopyPasteTransform)[0]
    pipeline.set_epoch(6, 10)
    assert (mosaic.p, mixup.p, copy_paste.p) == (1.0, 0.2, 0.1)
    pipeline.set_epoch(7, 10)
    assert (mosaic.p, mixup.p, copy_paste.p) == (0.0, 0.0, 0.0) and pipeline.mosaic_closed
    assert pipeline(dataset.load_sample(0)).image.shape == (32, 32, 3)
    pipeline.set_epoch(2, 10)
    assert (mosaic.p, mixup.p, copy_paste.p) == (1.0, 0.2, 0.1)
    never = build_detection_transforms({"close_mosaic": 0}, imgsz=32, dataset=dataset)
    never.set_epoch(9, 10)
    assert never.find(Mosaic)[0].p == 1.0


def test_set_epoch_reaches_the_policy_schedule() -> None:
    policy = {"ops": [{"name": "Blur", "p": 0.5, "magnitude": 1.0}], "schedule": {"kind": "linear", "start": 0.0}}
    pipeline = build_detection_transforms({"mosaic": 0.0}, imgsz=32, policy=policy)
    transform = pipeline.find(PolicyTransform)[0]
    assert transform.magnitude_scale == 0.0
    pipeline.set_epoch(9, 10)
    assert transform.magnitude_scale == 1.0


def test_hyp_from_a_mapping_or_the_config_section_and_errors() -> None:
    params = augment_section({"mosaic": 0.5, "degrees": 3.0, "lr0": 0.01})  # lr0 is not ours: ignored
    assert params.mosaic == 0.5 and params.degrees == 3.0 and params.fliplr == 0.5
    section = TrainConfig.from_overrides(mosaic=0.25).augment
    assert augment_section(section) is section
    with pytest.raises(ConfigError, match=r"fliplr=1.5 is out of range: use 0.0 <= fliplr <= 1.0"):
        augment_section({"fliplr": 1.5})
    with pytest.raises(ConfigError, match=r"scale=1.0 is out of range: use 0.0 <= scale < 1.0"):
        augment_section({"scale": 1.0})
    with pytest.raises(AugmentConfigError, match="dataset"):
        build_detection_transforms({}, imgsz=64, dataset=None)


def test_pipeline_pickles_for_spawned_workers() -> None:
    dataset = ListDataset([draw_scene(40, 40, [(0, (5, 5, 20, 20), False)])])
    policy = {"ops": [{"name": "CLAHE", "p": 1.0, "magnitude": 0.5}]}
    pipeline = build_detection_transforms({"mixup": 0.5}, imgsz=32, dataset=dataset, policy=policy)
    restored = pickle.loads(pickle.dumps(pipeline))
    assert restored(dataset.load_sample(0)).image.shape == (32, 32, 3)


def test_to_training_arrays_and_collate() -> None:
    samples = [
        draw_scene(64, 64, [(2, (0, 0, 32, 16), False), (1, (32, 32, 64, 64), False)], path="a.png"),
        draw_scene(64, 64, [], path="b.png"),
        draw_scene(64, 64, [(7, (16, 16, 48, 48), False)], path="c.png"),
    ]
    arrays = [to_training_arrays(s) for s in samples]
    first = arrays[0]
    assert first["image"].shape == (3, 64, 64) and first["image"].flags.c_contiguous
    assert first["image"].dtype == np.uint8
    assert tuple(first["image"][:, 0, 0]) == (0, 0, 255)  # palette 2 is BGR (255, 0, 0), blue: RGB (0, 0, 255)
    assert np.allclose(first["boxes"], [[0.25, 0.125, 0.5, 0.25], [0.75, 0.75, 0.5, 0.5]])
    batch = collate_detection(arrays)
    assert batch["images"].shape == (3, 3, 64, 64) and batch["images"].dtype == torch.uint8
    assert batch["batch_index"].tolist() == [0, 0, 2] and batch["batch_index"].dtype == torch.int64
    assert batch["classes"].tolist() == [2, 1, 7] and batch["classes"].dtype == torch.int64
    assert batch["boxes"].shape == (3, 4) and batch["boxes"].dtype == torch.float32
    assert batch["paths"] == ["a.png", "b.png", "c.png"]
    with pytest.raises(ValueError, match="share one shape"):
        collate_detection([arrays[0], to_training_arrays(draw_scene(32, 64, []))])
    with pytest.raises(ValueError, match="empty"):
        collate_detection([])


def test_full_pipeline_to_batch() -> None:
    dataset = ListDataset([draw_scene(50 + 10 * i, 80, [(i, (5, 5, 30, 30), False)]) for i in range(4)])
    pipeline = build_detection_transforms({"mixup": 0.5}, imgsz=64, dataset=dataset)
    np.random.seed(0)
    batch = collate_detection([to_training_arrays(pipeline(dataset.load_sample(i))) for i in range(4)])
    assert batch["images"].shape == (4, 3, 64, 64)
    assert ((batch["boxes"] >= 0) & (batch["boxes"] <= 1)).all()


@pytest.mark.parametrize("training", [True, False])
def test_classification_transforms(training: bool) -> None:
    transform = build_classification_transforms(48, training=training, erasing=0.5 if training else 0.0)
    image = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    out = transform(image)
    assert out.shape == (48, 48, 3) and out.dtype == np.uint8
    assert pickle.loads(pickle.dumps(transform))(image).shape == (48, 48, 3)
    if not training:  # deterministic: shorter side to 48, centre crop
        assert np.array_equal(out, transform(image))
    with pytest.raises(ValueError, match="fliplr"):
        build_classification_transforms(48, fliplr=2.0)
