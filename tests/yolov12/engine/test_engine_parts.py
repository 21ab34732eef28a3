"""Schedule, optimiser groups and nbs rules, EMA v2, and skipped non-finite steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from yolov12.config.train import OptimSection
from yolov12.engine.ema import ModelEMA
from yolov12.engine.optim import build_optimiser, lr_factor, parameter_groups, plan_optimiser
from yolov12.engine.precision import MixedPrecision
from yolov12.engine.schedule import accumulation_at, apply_schedule, warmup_steps


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def test_parameter_groups_exclude_norms_and_biases_from_decay() -> None:
    model = _tiny()
    decay, no_decay, biases = parameter_groups(model)
    assert {id(p) for p in decay} == {id(model[0].weight), id(model[2].weight)}
    assert {id(p) for p in no_decay} == {id(model[1].weight)}
    assert {id(p) for p in biases} == {id(model[1].bias), id(model[2].bias)}


def test_nominal_batch_size_sets_accumulation_and_scales_weight_decay() -> None:
    plan = plan_optimiser(OptimSection(optimizer="SGD", nbs=64, weight_decay=0.0005), 16, 50_000, 80)
    assert plan.accumulate == 4
    assert plan.weight_decay == pytest.approx(0.0005)  # 16 * 4 / 64 = 1
    plan = plan_optimiser(OptimSection(optimizer="SGD", nbs=64, weight_decay=0.0005), 256, 50_000, 80)
    assert plan.accumulate == 1 and plan.weight_decay == pytest.approx(0.0005 * 4)


def test_auto_picks_adamw_for_short_runs_and_sgd_for_long_ones() -> None:
    short = plan_optimiser(OptimSection(), 16, 500, 10)
    assert short.name == "AdamW" and short.lr == pytest.approx(round(0.002 * 5 / 14, 6))
    assert plan_optimiser(OptimSection(), 16, 50_000, 10).name == "SGD"


def test_linear_and_cosine_factors_end_at_lrf() -> None:
    assert lr_factor(0, 10, 0.01, False) == 1.0 and lr_factor(10, 10, 0.01, False) == pytest.approx(0.01)
    assert lr_factor(5, 10, 0.01, True) == pytest.approx((1 + 0.01) / 2)


def test_warmup_ramps_bias_lr_down_and_others_up() -> None:
    section = OptimSection(optimizer="SGD", lr0=0.01, warmup_epochs=1, warmup_bias_lr=0.1, warmup_momentum=0.8)
    optimiser = build_optimiser(_tiny(), plan_optimiser(section, 16, 50_000, 2))
    warm = warmup_steps(section, batches_per_epoch=10, epochs=10)
    assert warm == 10
    apply_schedule(optimiser, section, 0, 0, 10, warm, base_momentum=0.937)
    assert [g["lr"] for g in optimiser.param_groups] == [0.0, 0.0, 0.1]
    assert optimiser.param_groups[0]["momentum"] == pytest.approx(0.8)
    apply_schedule(optimiser, section, warm, 1, 10, warm, base_momentum=0.937)
    assert all(g["lr"] == pytest.approx(0.01 * lr_factor(1, 10, 0.01, False)) for g in optimiser.param_groups)
    assert optimiser.param_groups[2]["momentum"] == pytest.approx(0.937)


def test_warmup_never_reaches_into_the_last_epoch_and_accumulation_ramps_up() -> None:
    assert warmup_steps(OptimSection(warmup_epochs=3), batches_per_epoch=6, epochs=35) == 18
    assert warmup_steps(OptimSection(warmup_epochs=3), batches_per_epoch=6, epochs=2) == 6  # 1 epoch, not 3
    assert warmup_steps(OptimSection(warmup_epochs=3), batches_per_epoch=6, epochs=1) == 0
    assert warmup_steps(OptimSection(warmup_epochs=0), batches_per_epoch=6, epochs=35) == 0
    assert [accumulation_at(step, 12, 4) for step in range(0, 16, 2)] == [1, 2, 2, 2, 3, 4, 4, 4]
    assert accumulation_at(5, 0, 4) == 4


def test_ema_decay_ramps_and_averages_buffers() -> None:
    model = _tiny()
    ema = ModelEMA(model, decay=0.9999, tau=2000)
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.add_(1.0)
    before = ema.ema[0].weight.clone()
    ema.update(model)
    d = 0.9999 * (1 - math.exp(-1 / 2000))
    torch.testing.assert_close(ema.ema[0].weight, d * before + (1 - d) * model[0].weight)
    torch.testing.assert_close(ema.ema[1].running_mean, (1 - d) * model[1].running_mean)
    assert ema.ema[1].num_batches_tracked == model[1].num_batches_tracked


def test_non_finite_gradients_are_skipped_and_counted() -> None:
    model = _tiny()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = MixedPrecision(torch.device("cpu"), enabled=False)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.rand(1, 3, 8, 8)).sum() * float("inf")
    precision.backward(loss)
    assert precision.step(optimiser, model.parameters()) is False
    assert precision.skipped_steps == 1
    for old, new in zip(before, model.parameters()):
        torch.testing.assert_close(old, new)
    precision.backward(model(torch.rand(1, 3, 8, 8)).sum())
    assert precision.step(optimiser, model.parameters()) is True
    assert precision.skipped_steps == 1


def test_training_and_validation_share_one_reduced_precision_rule() -> None:
    from yolov12.engine.precision import cpu_has_native_bf16, reduced_precision_dtype  # noqa: PLC0415

    cpu = torch.device("cpu")
    assert reduced_precision_dtype(cpu) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert MixedPrecision(cpu).dtype == reduced_precision_dtype(cpu)
    assert reduced_precision_dtype(torch.device("cuda", 0)) == torch.float16  # a rule; no GPU needed to read it
