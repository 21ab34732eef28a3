"""One augmentation schema: out-of-range values are refused where the config is made, valid ones reach the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolov12 import YOLO
from yolov12.config import ConfigError
from yolov12.config.train import AugmentSection, TrainConfig
from yolov12.data.augment import DetectionTransforms, RandomAffine, RandomFlip, RandomHSV, build_detection_transforms

# Values the config used to accept and the augmentation pipeline refused later, inside the data-loader workers.
FORMERLY_LATE_ERRORS = [
    ("translate", 0.8, "translate=0.8 is out of range: use 0.0 <= translate <= 0.5"),
    ("translate", 1.0, "translate=1.0 is out of range: use 0.0 <= translate <= 0.5"),
    ("scale", 1.0, "scale=1.0 is out of range: use 0.0 <= scale < 1.0"),
]


@pytest.mark.parametrize(("key", "value", "message"), FORMERLY_LATE_ERRORS)
def test_out_of_range_values_are_refused_when_the_config_is_made(key: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError) as flat:
        TrainConfig.from_overrides({key: value})
    assert str(flat.value) == message
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_overrides(augment={key: value})
    with pytest.raises(ConfigError, match=message):
        AugmentSection.from_overrides({key: value})


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_overrides(translate=0.8, hsv_s=2.0, epochs=0)
    text = str(error.value)
    assert "translate=0.8 is out of range: use 0.0 <= translate <= 0.5" in text
    assert "hsv_s=2.0 is out of range: use 0.0 <= hsv_s <= 1.0" in text
    assert "epochs=0 is out of range: use 1 <= epochs" in text


def test_yolo_train_refuses_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"translate=0.8 is out of range: use 0.0 <= translate <= 0.5"):
        YOLO("yolov12n.yaml").train(data="sample", translate=0.8, project=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # no run folder: nothing started


def test_valid_values_reach_the_pipeline_unchanged() -> None:
    config = TrainConfig.from_overrides(translate=0.5, scale=0.9, degrees=10.0, shear=2.0, perspective=0.0005,
                                        hsv_h=0.1, hsv_s=0.2, hsv_v=0.3, flipud=0.25, fliplr=0.75, mosaic=0.0)
    pipeline = build_detection_transforms(config.augment, imgsz=64, dataset=None)
    assert isinstance(pipeline, DetectionTransforms) and pipeline.params is config.augment
    affine = pipeline.find(RandomAffine)[0]
    assert (affine.translate, affine.scale, affine.degrees, affine.shear, affine.perspective) == (
        0.5, 0.9, 10.0, 2.0, 0.0005)
    hsv = pipeline.find(RandomHSV)[0]
    assert (hsv.hsv_h, hsv.hsv_s, hsv.hsv_v) == (0.1, 0.2, 0.3)
    assert {flip.direction: flip.p for flip in pipeline.find(RandomFlip)} == {"vertical": 0.25, "horizontal": 0.75}


def test_a_mapping_is_validated_by_the_same_schema() -> None:
    with pytest.raises(ConfigError, match=r"translate=0.8 is out of range"):
        build_detection_transforms({"translate": 0.8, "mosaic": 0.0}, imgsz=64)
