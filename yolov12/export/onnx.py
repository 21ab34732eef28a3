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
from yolov12.tasks import task_spec

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
        cxcywh = prediction[:, :4].transpose(1, 2)
        boxes = torch.cat((cxcywh[..., :2] - cxcywh[..., 2:] / 2, cxcywh[..., :2] + cxcywh[..., 2:] / 2), -1)  # xyxy
        class_scores = prediction[:, 4:]  # (B, nc, A)
        best, label = class_scores.max(1, keepdim=True)  # (B, 1, A)
        if s.agnostic:
            nms_scores = best  # one "class"
        else:
            is_best = torch.arange(class_scores.shape[1], device=images.device).view(1, -1, 1) == label
            nms_scores = torch.where(is_best, class_scores, torch.full_like(class_scores, -1.0))
        selected = _NonMaxSuppression.apply(
            boxes, nms_scores, torch.tensor([s.max_det]), torch.tensor([s.iou], dtype=torch.float32),
            torch.tensor([s.conf], dtype=torch.float32),
        )  # (K, 3)
        return select_detections(boxes, best.squeeze(1), label.squeeze(1), selected, s.max_det)


def select_detections(boxes: torch.Tensor, best: torch.Tensor, label: torch.Tensor, selected: torch.Tensor,
                      max_det: int) -> torch.Tensor:
    """Each image's ``max_det`` best kept anchors as (B, max_det, 6) rows, best first, zero rows after the last one.

    Args:
        boxes: (B, A, 4) x1, y1, x2, y2.
        best: (B, A) best-class score of each anchor.
        label: (B, A) that class (int64).
        selected: (K, 3) [batch, class, anchor] rows kept by ``NonMaxSuppression``.
        max_det: rows per image.

    Only the scatter of ``selected`` into a (B, A) keep mask depends on K; everything after it has static shapes
    (scores and rows padded with ``max_det`` entries, so the top-k exists whatever A is). Indexing the scores at
    ``selected`` instead (``best[batch, anchor]``) exports as ReduceMax -> Flatten -> Gather, which OpenVINO's CPU
    plugin (2026.4) miscompiles in a static graph: it drops the (1, A) -> (A, 1) reshape, the Gather returns
    (K, A) and the next Concat fails as soon as NMS keeps a box.
    """
    keep = torch.zeros_like(best).index_put((selected[:, 0], selected[:, 2]),
                                            torch.ones_like(selected[:, 0], dtype=best.dtype))  # (B, A)
    ranked = torch.where(keep > 0, best, torch.full_like(best, -1.0))  # kept scores are > conf >= 0
    ranked = torch.cat((ranked, ranked.new_full((ranked.shape[0], max_det), -1.0)), 1)  # (B, A + max_det)
    rows = torch.cat((boxes, best.unsqueeze(-1), label.unsqueeze(-1).to(boxes.dtype)), -1)  # (B, A, 6)
    rows = torch.cat((rows, rows.new_zeros((rows.shape[0], max_det, rows.shape[2]))), 1)  # (B, A + max_det, 6)
    top_scores, top_index = ranked.topk(max_det, dim=1)  # (B, max_det)
    out = rows.gather(1, top_index.unsqueeze(-1).expand(-1, -1, rows.shape[-1]))  # (B, max_det, 6)
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
            if task_spec(metadata.task).predicts_boxes and nms is None:
                dynamic_axes[OUTPUT_NAME][2] = "anchors"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
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
