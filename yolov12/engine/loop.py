"""The one training loop: ``train_one_epoch`` is called by the local trainer, Ray Train workers and Tune trials."""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from yolov12.engine.callbacks import Callback
from yolov12.engine.ema import unwrap
from yolov12.engine.freeze import keep_frozen_norms_in_eval
from yolov12.engine.schedule import accumulation_at, apply_schedule
from yolov12.engine.state import TrainState
from yolov12.eval.metric_names import IMAGES_PER_SECOND, LEARNING_RATE, SKIPPED_STEPS, loss_column


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf in fp32 training: the run diverged (lower lr0, check the labels)."""


def to_device(batch: dict, device: torch.device) -> dict:
    """Move tensors of a collated batch to ``device``; images become float in [0, 1]."""
    moved = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    moved["images"] = moved["images"].float() / 255.0
    return moved


def multi_scale_images(images: torch.Tensor, imgsz: int, stride: int) -> torch.Tensor:
    """(B, 3, H, W) -> the batch resized (bilinear) to a random side in [0.5, 1.5] x ``imgsz``, a ``stride`` multiple.

    Ultralytics' rule: ``size = randrange(0.5 imgsz, 1.5 imgsz + stride) // stride * stride`` (at least one stride);
    the longer side becomes ``size`` and the other the nearest stride multiple above its scaled length. Boxes are
    normalised, so they need no change. Draws from Python's ``random`` (seeded per epoch by the trainer).
    """
    size = max(random.randrange(int(imgsz * 0.5), int(imgsz * 1.5 + stride)) // stride * stride, stride)
    factor = size / max(images.shape[2:])
    if factor == 1:
        return images
    shape = [math.ceil(side * factor / stride) * stride for side in images.shape[2:]]
    return F.interpolate(images, size=shape, mode="bilinear", align_corners=False)


def model_stride(model: torch.nn.Module) -> int:
    """The largest stride of ``model`` (DDP-wrapped or not); 32 when it records none."""
    stride = getattr(unwrap(model), "stride", None)
    return int(stride.max()) if isinstance(stride, torch.Tensor) and stride.numel() else 32


def train_one_epoch(state: TrainState, loader: Iterable[dict], callbacks: Callback) -> dict[str, float]:
    """Train for one pass over ``loader``; returns the mean loss parts and throughput of this rank.

    Gradients of ``state.accumulate`` batches (fewer during warm-up) are summed before each optimiser step; the EMA
    follows every applied step. Learning rate and momentum are set per batch from the global step (so resume is exact).
    With ``multi_scale`` each batch is first resized (:func:`multi_scale_images`); norm layers of frozen layers stay
    in eval mode (``freeze``).
    """
    state.model.train()
    keep_frozen_norms_in_eval(state.model)  # freeze=...: frozen layers keep their running statistics
    optim, data = state.config.optim, state.config.data
    stride = model_stride(state.model)
    totals: dict[str, float] = defaultdict(float)
    images_seen, batches, start = 0, 0, time.perf_counter()
    callbacks.on_epoch_start(state)
    if hasattr(state.loss_fn, "start_epoch"):  # distillation: fade-out factor of this epoch
        state.loss_fn.start_epoch(state.epoch, state.epochs)
    for batch in loader:
        apply_schedule(state.optimiser, optim, state.global_step, state.epoch, state.epochs, state.warmup_steps,
                       base_momentum=state.base_momentum)
        accumulate = accumulation_at(state.global_step, state.warmup_steps, state.accumulate)
        batch = to_device(batch, state.device)
        if data.multi_scale:
            batch["images"] = multi_scale_images(batch["images"], data.imgsz, stride)
        with state.precision.autocast():
            outputs = state.model(batch["images"])
            loss, parts = state.loss_fn(outputs, batch)
        if not math.isfinite(loss.item()) and state.precision.dtype is None:
            raise NonFiniteLossError(f"loss is {loss.item()} at epoch {state.epoch + 1}, step {state.global_step}")
        state.precision.backward(loss)
        state.global_step += 1
        if state.global_step - state.last_optimiser_step >= accumulate:
            if state.precision.step(state.optimiser, [p for g in state.optimiser.param_groups for p in g["params"]]):
                state.ema.update(state.model)
            state.last_optimiser_step = state.global_step
        batches += 1
        images_seen += batch["images"].shape[0]
        for name, value in parts.items():
            totals[name] += float(value)
        running = {loss_column(k): v / batches for k, v in totals.items()}
        callbacks.on_batch_end(state, running)
    elapsed = time.perf_counter() - start
    metrics = {loss_column(k): v / max(batches, 1) for k, v in totals.items()}
    metrics[IMAGES_PER_SECOND.engine] = images_seen / elapsed if elapsed > 0 else 0.0
    metrics[SKIPPED_STEPS.engine] = float(state.precision.skipped_steps)
    metrics[LEARNING_RATE.engine] = state.optimiser.param_groups[0]["lr"]
    if hasattr(state.loss_fn, "epoch_metrics"):  # distillation: adapted weight and gradient norms
        metrics.update(state.loss_fn.epoch_metrics())
    return metrics
