"""AutoAlbument-Lite policies in classification training: applied, scheduled per epoch, picklable, seeded."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from yolov12.config.train import TrainConfig
from yolov12.data.augment import build_classification_transforms
from yolov12.data.augment.policy import AugmentPolicy
from yolov12.engine.data_setup import (
    _albumentations_pipelines,
    build_training_data,
    classification_dataset_transform,
    seed_augmentation,
)
from yolov12.engine.distributed import DistributedContext

NO_JITTER = dict(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, fliplr=0.5)
GREY = {"ops": [{"name": "ToGray", "p": 1.0}]}


def _colour_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _is_grey(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def test_a_certain_policy_op_changes_every_training_image():
    image = _colour_image()
    assert not _is_grey(build_classification_transforms(32, True, **NO_JITTER)(image))
    with_policy = build_classification_transforms(32, True, **NO_JITTER, policy=GREY)
    assert all(_is_grey(with_policy(_colour_image(seed))) for seed in range(5))


def test_validation_ignores_the_policy():
    image = _colour_image()
    plain = build_classification_transforms(32, training=False)(image)
    assert np.array_equal(build_classification_transforms(32, training=False, policy=GREY)(image), plain)


def test_policy_ops_see_rgb_and_leave_bgr():
    """ToGray weights red and blue differently: on RGB input, pure blue (BGR 255,0,0) turns dark grey."""
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[..., 0] = 255
    settings = {**NO_JITTER, "fliplr": 0.0, "scale": (1.0, 1.0), "ratio": (1.0, 1.0)}
    out = build_classification_transforms(32, True, **settings, policy=GREY)(blue)
    assert _is_grey(out) and out[..., 0].mean() < 60  # 0.114 * 255 ≈ 29 (0.299 * 255 ≈ 76 had it seen BGR)


def test_the_engine_applies_augment_policy_to_classification(tmp_path):
    path = tmp_path / "grey.yaml"
    AugmentPolicy.from_dict(GREY).save(path)
    config = TrainConfig.from_overrides(data="sample-cls", imgsz=32, batch=4, fraction=0.25, val=False, workers=0,
                                        hsv_s=0.0, augment_policy=str(path))
    data = build_training_data(config, "classify", DistributedContext())
    data.set_epoch(0, 2)
    images = next(iter(data.train_loader))["images"]
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])


def test_set_epoch_reaches_the_policy_schedule():
    policy = {"ops": [{"name": "Blur", "p": 1.0, "magnitude": 1.0}],
              "schedule": {"kind": "linear", "start": 0.0, "end": 1.0}}
    transform, pipeline = classification_dataset_transform(TrainConfig().augment, 32, None, training=True)
    assert pipeline is transform and pipeline.policy is None
    transform = build_classification_transforms(32, True, **NO_JITTER, policy=policy)
    blur = [t for t in transform.compose.transforms if type(t).__name__ == "Blur"][0]
    assert blur.blur_limit == (3, 3)  # magnitude 1 x factor 0 at the first epoch
    transform.set_epoch(9, 10)
    blur = [t for t in transform.compose.transforms if type(t).__name__ == "Blur"][0]
    assert transform.magnitude_scale == 1.0 and blur.blur_limit == (3, 9)


def test_pickled_transform_is_rebuilt_found_and_seeded():
    transform = build_classification_transforms(32, True, **NO_JITTER, policy={
        "ops": [{"name": "GaussNoise", "p": 1.0, "magnitude": 1.0}, {"name": "CoarseDropout", "p": 0.5}]})
    transform.set_epoch(3, 5)
    copy = pickle.loads(pickle.dumps(transform))
    assert copy._compose is None and copy.magnitude_scale == transform.magnitude_scale
    assert len(_albumentations_pipelines(copy)) == 1, "the worker's Compose was not found, so never seeded"
    image = _colour_image()

    def draw(seed: int) -> np.ndarray:
        seed_augmentation(seed, copy)
        return copy(image)

    assert np.array_equal(draw(1), draw(1)) and not np.array_equal(draw(1), draw(2))


def test_a_worker_copy_without_policy_is_seeded_too():
    """A loader worker gets the transform pickled, without its Compose: seeding must build and find it."""
    copy = pickle.loads(pickle.dumps(build_classification_transforms(32, True)))
    image = _colour_image()
    seed_augmentation(5, copy)
    first = copy(image)
    seed_augmentation(5, copy)
    assert np.array_equal(first, copy(image)), "the worker's crop and flips were not seeded"


@pytest.mark.parametrize("name", ["Affine", "Perspective", "CoarseDropout"])
def test_ops_that_move_boxes_in_detection_apply_to_the_image_alone(name):
    transform = build_classification_transforms(32, True, **NO_JITTER, policy={"ops": [{"name": name, "p": 1.0}]})
    assert transform(_colour_image()).shape == (32, 32, 3)
