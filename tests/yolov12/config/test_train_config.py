"""TrainConfig: the article's arguments verbatim, routing by section, helpful errors."""

from __future__ import annotations

import pytest

from yolov12.config import ConfigError
from yolov12.config.train import TrainConfig

ARTICLE_CLASSIFICATION_RECIPE = dict(
    data="imagenet", epochs=200, batch=256, imgsz=224, lr0=0.2, lrf=0.01, nbs=256, warmup_epochs=0,
    warmup_bias_lr=0.1, weight_decay=0.0001, cos_lr=True, hsv_s=0.4, optimizer="SGD", device="0",
)


def test_article_arguments_are_accepted_verbatim() -> None:
    config = TrainConfig.from_overrides(ARTICLE_CLASSIFICATION_RECIPE)
    assert config.optim.lr0 == 0.2 and config.optim.nbs == 256 and config.optim.cos_lr
    assert config.augment.hsv_s == 0.4 and config.data.imgsz == 224 and config.run.epochs == 200
    assert config.run.device == "cuda:0"
    assert TrainConfig.from_overrides(config.to_flat()) == config


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"lr": 0.1}, "did you mean 'lr0'"),
        ({"epochs": 0}, "epochs=0"),
        ({"optimizer": "Lion"}, "optimizer"),
        ({"device": "tpu"}, "device"),
        ({"cache": True}, "does not implement"),
    ],
)
def test_bad_keys_and_values_are_named(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig.from_overrides(overrides)


def test_sections_and_lowercase_optimizer() -> None:
    config = TrainConfig.from_overrides({"optim": {"lr0": 0.05}, "optimizer": "sgd"})
    assert config.optim.lr0 == 0.05 and config.optim.optimizer == "SGD"
