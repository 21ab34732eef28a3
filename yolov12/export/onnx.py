"""ONNX export: the eval-mode model with decoding in the graph, optional end-to-end NMS, embedded metadata.

The graph's output has the PyTorch head's layout: detection (B, 4 + nc, A) with (cx, cy, w, h) boxes in input
pixels and sigmoid class scores; classification (B, nc) probabilities. With ``nms=True`` (detection) the graph ends
in ONNX ``NonMaxSuppression`` and outputs (B, max_det, 6) rows x1, y1, x2, y2, score, class, best first, padded with
zero rows.

Export runs on a deep copy of the model: Conv+BN fused, eval mode, attention on the ``sdpa`` (or ``reference``)
kernel — never FlashAttention, which has no ONNX form. The exporter is torch's TorchScript-based one
(``dynamo=False``), which needs nothing beyond torch and onnx.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from yolov12.export.metadata import ExportMetadata
from yolov12.infer.nms import nms_numpy
from yolov12.nn.area_attention import AreaAttention

logger = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "output0"
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 20  # torch's TorchScript exporter covers 7..20; SDPA and our NMS wiring need >= 13


@dataclass(frozen=True)
class NMSSettings:
    """NMS baked into an end-to-end graph: keep best-class score > conf, IoU threshold, detections per image."""

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    agnostic: bool = False

    def to_dict(self) -> dict:
        return {"conf": self.conf, "iou": self.iou, "max_det": self.max_det, "agnostic": self.agnostic}


def prepare_for_export(
    model: nn.Module, device: torch.device | str = "cpu", half: bool = False, attention: str = "sdpa"
) -> nn.Module:
    """A fused, eval-mode, gradient-free copy of ``model`` on ``device``, with attention forced to ``attention``."""
    if attention not in ("sdpa", "reference"):
        raise ValueError(f"attention={attention!r} cannot be exported; use 'sdpa' or 'reference'")
    prepared = copy.deepcopy(model).to(device).eval()
    prepared.fuse()
    prepared.requires_grad_(False)
    for module in prepared.modules():
        if isinstance(module, AreaAttention):
            module.backend = attention  # never "flash" or "auto" in an exported graph
    return prepared.half() if half else prepared.float()


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (per class); the eager forward (used while tracing) is our exact greedy NMS."""

    @staticmethod
    def forward(ctx, boxes, scores, max_output, iou_threshold, score_threshold):
        """boxes (B, A, 4) xyxy, scores (B, C, A) -> selected (K, 3) int64 rows [batch, class, box]."""
        rows = []
        limit, iou, thresh = int(max_output), float(iou_threshold), float(score_threshold)
        boxes_np, scores_np = boxes.detach().float().cpu().numpy(), scores.detach().float().cpu().numpy()
        for b in range(boxes_np.shape[0]):
            for c in range(scores_np.shape[1]):
                candidates = np.flatnonzero(scores_np[b, c] > thresh)
                keep = candidates[nms_numpy(boxes_np[b, candidates], scores_np[b, c, candidates], iou, limit)]
                rows.extend([b, c, int(i)] for i in keep)
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3).to(boxes.device)

    @staticmethod
    def symbolic(g, boxes, scores, max_output, iou_threshold, score_threshold):
        return g.op("NonMaxSuppression", boxes, scores, max_output, iou_threshold, score_threshold,
                    center_point_box_i=0)


class EndToEnd(nn.Module):
    """Detector + NMS: (B, 3, H, W) -> (B, max_det, 6) x1, y1, x2, y2, score, class; unused rows are zeros.

    Each anchor votes for its best class only (as :func:`yolov12.infer.non_max_suppression`): the other classes'
    scores are set to -1 before the per-class ONNX NMS, so the result equals class-aware NMS with the best class.
    """

    def __init__(self, model: nn.Module, settings: NMSSettings) -> None:
        super().__init__()
        self.model = model
        self.settings = settings

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        prediction = self.model(images).float()  # (B, 4 + nc, A); ONNX NonMaxSuppression takes float32
        s = self.settings
        xywh = prediction[:, :4].transpose(1, 2)
        boxes = torch.cat((xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2), -1)  # (B, A, 4)
        class_scores = prediction[:, 4:]  # (B, nc, A)
        best, label = class_scores.max(1)  # (B, A)
        if s.agnostic:
            nms_scores = best.unsqueeze(1)  # one "class"
        else:
            is_best = torch.arange(class_scores.shape[1], device=images.device).view(1, -1, 1) == label.unsqueeze(1)
            nms_scores = torch.where(is_best, class_scores, torch.full_like(class_scores, -1.0))
        selected = _NonMaxSuppression.apply(
            boxes, nms_scores, torch.tensor([s.max_det]), torch.tensor([s.iou], dtype=torch.float32),
            torch.tensor([s.conf], dtype=torch.float32),
        )  # (K, 3)
        batch_index, box_index = selected[:, 0], selected[:, 2]
        det_scores = best[batch_index, box_index]
        rows = torch.cat((boxes[batch_index, box_index], det_scores.unsqueeze(1),
                          label[batch_index, box_index].unsqueeze(1).to(boxes.dtype)), 1)  # (K, 6)
        # Append max_det dummy rows (score -1, owner -1) so that a fixed top-k per image always exists, then take
        # each image's best max_det rows from a (B, K + max_det) score matrix; rows of other images score -1.
        rows = torch.cat((rows, torch.zeros(s.max_det, 6, dtype=rows.dtype, device=rows.device)), 0)
        scores = torch.cat((det_scores, torch.full((s.max_det,), -1.0, dtype=rows.dtype, device=rows.device)), 0)
        owner = torch.cat((batch_index, torch.full((s.max_det,), -1, dtype=batch_index.dtype,
                                                   device=batch_index.device)), 0)
        mine = owner.unsqueeze(0) == torch.arange(images.shape[0], device=images.device).unsqueeze(1)  # (B, K')
        ranked = torch.where(mine, scores.unsqueeze(0), torch.full_like(scores, -1.0).unsqueeze(0))
        top_scores, top_index = ranked.topk(s.max_det, dim=1)  # (B, max_det)
        out = rows[top_index]  # (B, max_det, 6)
        return out * (top_scores > -1.0).unsqueeze(-1).to(out.dtype)


def export_onnx(
    model: nn.Module,
    path: Path,
    metadata: ExportMetadata,
    *,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    nms: NMSSettings | None = None,
    device: torch.device | str = "cpu",
    attention: str = "sdpa",
    fp16: bool = False,
) -> Path:
    """Write ``model`` to ``path`` as ONNX with ``metadata`` in its metadata props; returns ``path``.

    Args:
        model: a detection or classification YOLOModel (not modified).
        path: destination ``.onnx`` file (overwritten).
        metadata: what the artifact says about itself (imgsz, batch, dynamic, task, names, ...).
        opset: ONNX opset (13..20).
        simplify: run onnxslim (constant folding, dead-node and shape simplification).
        nms: bake class-aware NMS into the graph (detection only).
        device: device the model is traced on (``cpu`` or ``cuda``).
        attention: ``sdpa`` or ``reference`` attention kernel in the graph.
        fp16: trace the model in float16: weights, activations, the input and the raw output are float16 (the
            end-to-end NMS output stays float32).
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset={opset} is not supported; use {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    prepared = prepare_for_export(model, device=device, half=fp16, attention=attention)
    module: nn.Module = EndToEnd(prepared, nms) if nms is not None else prepared
    height, width = metadata.imgsz
    example = torch.zeros(metadata.batch, 3, height, width, device=device,
                          dtype=torch.float16 if fp16 else torch.float32)
    dynamic_axes: dict[str, dict[int, str]] = {}
    if metadata.dynamic or metadata.dynamic_imgsz:
        dynamic_axes = {INPUT_NAME: {}, OUTPUT_NAME: {}}
        if metadata.dynamic:
            dynamic_axes[INPUT_NAME][0] = dynamic_axes[OUTPUT_NAME][0] = "batch"
        if metadata.dynamic_imgsz:
            dynamic_axes[INPUT_NAME].update({2: "height", 3: "width"})
            if metadata.task == "detect" and nms is None:
                dynamic_axes[OUTPUT_NAME][2] = "anchors"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*aten::index operator of advanced indexing.*")  # NMS indices >= 0
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes or None, do_constant_folding=True,
        )
    proto = onnx.load(str(path))
    if simplify:
        proto = simplify_onnx(proto)
    set_metadata_props(proto, metadata.replace(opset=opset))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    logger.info("ONNX export: %s (opset %d, %.1f MB)", path, opset, path.stat().st_size / 1e6)
    return path


def simplify_onnx(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim: constant folding, shape simplification, dead-node removal; falls back to the input on failure."""
    import onnxslim  # noqa: PLC0415 - onnxslim imports are slow; only exports need it

    try:
        return onnxslim.slim(proto)
    except Exception as exc:  # noqa: BLE001 - simplification is an optimisation, the unsimplified graph is valid
        logger.warning("onnxslim failed (%s); keeping the unsimplified graph", exc)
        return proto


def set_metadata_props(proto: onnx.ModelProto, metadata: ExportMetadata) -> None:
    """Replace the model's metadata props with ``metadata.to_props()`` and name the producer."""
    del proto.metadata_props[:]
    for key, value in metadata.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "yolov12-platform"
    proto.producer_version = metadata.package_version
    proto.doc_string = f"{metadata.model_name} ({metadata.task}); output {metadata.output_layout}"


def read_onnx_metadata(path: str | Path) -> ExportMetadata:
    """The :class:`ExportMetadata` stored in an ONNX file's metadata props (the weights are not loaded)."""
    proto = onnx.load(str(path), load_external_data=False)
    props = {entry.key: entry.value for entry in proto.metadata_props}
    return ExportMetadata.from_props(props, origin=str(path))
