"""``evaluate_engine``: validation metrics of any engine (exported or PyTorch) through the library's one evaluation.

The engine stands in for the PyTorch model in :func:`yolov12.engine.evaluate.evaluate` (the task's evaluator: COCO
mAP with pycocotools for detection, top-1/top-5 for classification). The batches are the validation batches
``yolov12 val`` uses (:func:`yolov12.engine.data_setup.build_val_loader`, letterboxed by the inference letterbox),
and the NMS and metrics are the same; only the forward runs in the engine. So an exported model is scored exactly as
its PyTorch source is, and any difference between the two is the engine's.

Example:
    >>> from yolov12.engines import load_engine
    >>> engine = load_engine("best.onnx")  # doctest: +SKIP
    >>> evaluate_engine(engine, "sample")["metrics/mAP50-95(B)"]  # doctest: +SKIP
    0.412
"""

from __future__ import annotations

from typing import Any

import torch

from yolov12.engines.base import Engine, EngineError

__all__ = ["EngineModel", "evaluate_engine"]


class EngineModel(torch.nn.Module):
    """An engine behind the ``model(images) -> raw output`` interface the evaluator calls.

    ``train()``/``eval()`` change nothing (an engine is always in inference mode); ``task`` and ``names`` come from
    the engine's info.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.task = engine.info.task
        self.names = dict(engine.info.names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> the engine's raw output as a CPU tensor (layout: :mod:`yolov12.engines`)."""
        return torch.from_numpy(self.engine(images))


def evaluate_engine(engine: Engine, data: Any, *, split: str = "val", batch: int = 16, workers: int = 0,
                    device: str | torch.device = "cpu", conf: float = 0.001, iou: float = 0.7,
                    max_det: int = 300) -> dict[str, float]:
    """Metrics of ``engine`` on split ``split`` of ``data``, at the engine's input size.

    Args:
        engine: any :class:`~yolov12.engines.Engine`; detection engines must output raw predictions (exported
            without ``nms=True``), since the evaluator applies its own NMS.
        data: a data.yaml, a dataset folder or a built-in name (``sample``).
        split: the split to score.
        batch, workers: of the validation loader (a fixed-batch engine splits each batch itself).
        device: where the batches are put before the engine takes them (``cuda`` for a TensorRT engine).
        conf, iou, max_det: of the NMS (detection), the validation defaults of ``yolov12 val``.

    Returns:
        The task's metrics dict, as ``yolov12 val`` prints it.
    """
    from yolov12.engine.data_setup import build_val_loader  # noqa: PLC0415 - the training stack, only when asked
    from yolov12.engine.evaluate import evaluate  # noqa: PLC0415

    info = engine.info
    if info.end2end:
        raise EngineError(f"{info.artifact or info.backend} has NMS inside the model; evaluate an export made "
                          "without nms=True (the evaluator applies its own NMS)")
    height, width = info.imgsz
    if height != width:
        raise EngineError(f"{info.artifact or info.backend} takes {height}x{width} inputs; validation batches are "
                          "square: export with a square imgsz")
    loader = build_val_loader(data, info.task, height, batch, workers, split=split)
    model = EngineModel(engine)
    return evaluate(model, loader, model.names, torch.device(device), conf=conf, iou=iou, max_det=max_det)
