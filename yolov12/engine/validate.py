"""``validate``: the ``model.val(...)`` / ``yolov12 val`` entry point.

Example:
    >>> from yolov12.models import build_model, load_architecture
    >>> model = build_model(load_architecture("yolov12n"))
    >>> metrics = validate(model, data="sample", imgsz=64, conf=0.1, device="cpu")  # doctest: +SKIP
    >>> metrics["metrics/mAP50-95(B)"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch

from yolov12.config.val import ValConfig
from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.evaluate import evaluate
from yolov12.engine.precision import autocast_for, reduced_precision_dtype
from yolov12.engine.run_dir import new_run_dir
from yolov12.infer.device import select_device
from yolov12.tasks import task_spec
from yolov12.utils.stride import max_stride

logger = logging.getLogger(__name__)


def validate(model: Any, config: ValConfig | None = None, **overrides: Any) -> dict[str, float]:
    """Metrics of ``model`` on a split of ``config.data``.

    Args:
        model: a detection or classification ``YOLOModel`` (moved to ``config.device`` in place; its train/eval mode
            is restored afterwards).
        config: the settings; None builds them from ``overrides``, else ``overrides`` are applied on top.
        **overrides: :class:`ValConfig` keys (``data``, ``conf``, ``iou``, ``max_det``, ...).

    Returns:
        The metrics, keyed as in ``results.csv`` (``metrics/mAP50-95(B)``, ``metrics/accuracy_top1``, ...).
        With ``save_json`` or ``plots`` the files go to a new run folder ``project/name`` (logged).

    Raises:
        ConfigError: an unknown key or a value out of range.
        ValueError: no ``data`` was given.
    """
    if config is None:
        config = ValConfig.from_overrides(overrides)
    elif overrides:
        config = config.updated(**overrides)
    if config.data is None:
        raise ValueError("validation needs data=...: a data.yaml, a dataset folder, or 'sample'")
    spec = task_spec(model.task)
    imgsz = config.imgsz or spec.default_image_size
    device = select_device(config.device)
    model = model.to(device)
    stride = max_stride(model) if getattr(model, "stride", None) is not None else 32
    loader = build_val_loader(config.data, model.task, imgsz, config.batch, config.workers, split=config.split,
                              rect=config.rect, stride=stride)
    run_dir = new_run_dir(config.project, config.name) if config.save_json or config.plots else None
    json_path = run_dir / "predictions.json" if config.save_json else None
    with _half_precision(device, config.half):
        metrics = evaluate(model, loader, model.names, device, conf=config.conf, iou=config.iou,
                           max_det=config.max_det, save_json=json_path, plots_dir=run_dir if config.plots else None,
                           verbose=config.verbose)
    logger.info("val %s: %s", config.split, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    if run_dir is not None:
        logger.info("validation results written to %s", Path(run_dir))
    return metrics


def _half_precision(device: torch.device, half: bool) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA, bf16 autocast on a CPU with native bf16, else fp32 (said in the log).

    Autocast leaves the model's weights alone, so the caller's model is still fp32 afterwards.
    """
    if not half:
        return contextlib.nullcontext()
    if (dtype := reduced_precision_dtype(device)) is not None:
        return autocast_for(dtype, device)
    reason = "this CPU has no native bf16 (no AVX512-BF16/AMX)" if device.type == "cpu" else f"not on {device.type}"
    logger.info("half=True: %s, so validation runs in fp32", reason)
    return contextlib.nullcontext()
