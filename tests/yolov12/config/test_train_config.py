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
        ({"profile": True}, "yolov12 benchmark"),
        ({"overlap_mask": True}, "segmentation is not supported"),
        ({"cache": "gpu"}, "cache='gpu'"),
        ({"freeze": "0,-1"}, "freeze"),
    ],
)
def test_bad_keys_and_values_are_named(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig.from_overrides(overrides)


def test_sections_and_lowercase_optimizer() -> None:
    config = TrainConfig.from_overrides({"optim": {"lr0": 0.05}, "optimizer": "sgd"})
    assert config.optim.lr0 == 0.05 and config.optim.optimizer == "SGD"


def test_ultralytics_spellings_of_the_new_keys() -> None:
    config = TrainConfig.from_overrides(cache=True, freeze="0,1,2", pretrained="false", time=0.5, rect="true")
    assert config.data.cache == "ram" and config.optim.freeze == [0, 1, 2] and config.run.pretrained is False
    assert config.data.rect is True and config.run.time == 0.5
    assert TrainConfig.from_overrides(cache="disk", freeze=10).to_flat()["cache"] == "disk"
    assert TrainConfig.from_overrides(cache=False).data.cache is False


def test_updated_keeps_which_keys_were_given() -> None:
    config = TrainConfig.from_overrides(lr0=0.05).updated(epochs=3)
    assert config.set_keys() == {"lr0": 0.05, "epochs": 3}
    assert "lr0" not in TrainConfig().updated(epochs=3).optim.model_fields_set
