"""The optimiser plan comes from the global batch: the same ``batch`` gives the same plan on any number of ranks."""

import logging

import pytest

from yolov12.config.train import TrainConfig
from yolov12.engine.distributed import DistributedContext
from yolov12.engine.optim import plan_optimiser
from yolov12.engine.trainer import build_state, optimiser_plan_text


@pytest.mark.parametrize("world_size", [1, 2, 8])
def test_global_batch_accumulation_lr_and_decay_do_not_depend_on_the_rank_count(world_size: int) -> None:
    config = TrainConfig.from_overrides(batch=16, nbs=64, lr0=0.01, weight_decay=0.0005, optimizer="SGD")
    plan = plan_optimiser(config.optim, config.data.batch, iterations=1000, num_classes=3)
    assert (plan.accumulate, plan.lr, plan.weight_decay) == (4, 0.01, pytest.approx(0.0005))
    text = optimiser_plan_text(config, plan, world_size)
    assert f"batch 16 global ({16 // world_size} per rank x {world_size} rank" in text
    assert "accumulate 4 (nbs 64): 64 images per optimiser step" in text
    assert "SGD lr0 0.01" in text and "weight decay 0.0005" in text


def test_the_plan_is_logged_once_at_start(tmp_path, caplog) -> None:
    from yolov12.engine.data_setup import build_training_data
    from yolov12.models import load_model

    config = TrainConfig.from_overrides(data="sample", batch=4, nbs=8, epochs=1, imgsz=64, workers=0, device="cpu",
                                        project=str(tmp_path), optimizer="SGD", lr0=0.02)
    model = load_model("yolov12n.yaml")
    data = build_training_data(config, model.task, DistributedContext())
    with caplog.at_level(logging.INFO, logger="yolov12.engine.trainer"):
        build_state(model, config, data, DistributedContext(), tmp_path)
    lines = [r.getMessage() for r in caplog.records if "global" in r.getMessage()]
    assert lines == ["batch 4 global (4 per rank x 1 rank), accumulate 2 (nbs 8): 8 images per optimiser step; "
                     "SGD lr0 0.02, momentum 0.937, weight decay 0.0005 (configured 0.0005)"]
