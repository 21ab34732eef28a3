"""Explicit int8 (Q/DQ) ONNX for TensorRT: NNCF's ONNX backend inserts QuantizeLinear / DequantizeLinear pairs.

TensorRT 10 deprecates its implicit calibrators (``IInt8EntropyCalibrator2`` and friends, since 10.1) in favour of
explicit quantisation: the ONNX carries the quantisation as Q/DQ node pairs and TensorRT builds exactly those
layers in int8. The quantiser here is NNCF (the same tool and the same choices as the OpenVINO int8 path,
:mod:`yolov12.export.openvino_int8`), run on the fp32 ONNX with ONNX Runtime on the calibration images.

Two choices differ from the OpenVINO path because TensorRT requires them:

- quantisation is symmetric for weights and activations (NNCF's ``performance`` preset): TensorRT's int8 is
  symmetric, a Q/DQ pair with a non-zero zero point is rejected;
- activations are signed int8 (``signedness_to_force=True``): TensorRT runs Q/DQ in signed INT8 only, while NNCF
  would make the non-negative activations uint8.

The detection post-processing stays in float, as in the OpenVINO path and for the same reason (boxes in steps of
1/256 of the image otherwise): the ops directly in the head's own scope (per-level concat, DFL, box decode, class
sigmoid, output concat) and everything downstream of them (an end-to-end NMS tail). The head's convolutions are
quantised.

nncf is imported only when an int8 export runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from yolov12.export.calibration import CalibrationImages, quiet_nncf
from yolov12.export.metadata import ExportMetadata
from yolov12.export.onnx import set_metadata_props

logger = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class OnnxCalibration:
    """The calibration images as a sized, re-iterable source of ``{input name: (B, 3, H, W) float32}`` feeds.

    NNCF's ONNX backend feeds each item to ONNX Runtime as is, and iterates the source more than once.
    """

    def __init__(self, images: CalibrationImages, input_name: str, batch_size: int = 1, fixed: bool = False) -> None:
        self.images, self.input_name, self.batch_size, self.fixed = images, input_name, batch_size, fixed

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return ({self.input_name: batch} for batch in self.images.batches(self.batch_size, self.fixed))


def postprocess_nodes(model: onnx.ModelProto, head_scope: str) -> list[str]:
    """Names of the nodes after the head's last convolutions: nodes directly in the head's own scope (not in one of
    its sub-modules such as ``cv2.0``) and every node that consumes their outputs, up to the graph outputs.

    ``head_scope`` is the head's module path (``model.21``); the exporter names nodes ``/model.21/Concat``,
    ``/model.21/dfl/Conv``, ``/model/model.21/...`` (end-to-end wrapper). ONNX graphs are topologically sorted, so
    one pass in node order sees every producer before its consumers.
    """
    own = re.compile(rf"(^|/){re.escape(head_scope)}/[^/]+$")
    tainted: set[str] = set()  # tensors produced by a kept node
    kept: list[str] = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        if own.search(node.name) or any(name in tainted for name in node.input):
            kept.append(node.name)
            tainted.update(node.output)
    return sorted(kept)


def count_qdq_nodes(model: onnx.ModelProto) -> int:
    """How many QuantizeLinear / DequantizeLinear nodes the graph holds (0: not an explicitly quantised ONNX)."""
    return sum(node.op_type in QDQ_OPS for node in model.graph.node)


def quantize_onnx(onnx_path: Path, output_path: Path, images: CalibrationImages, *, batch_size: int = 1,
                  fixed_batch: bool = False, head_scope: str | None = None) -> Path:
    """Write the Q/DQ int8 ONNX of ``onnx_path`` to ``output_path``, calibrated on ``images``.

    Args:
        onnx_path: the fp32 ONNX (from :func:`yolov12.export.onnx.export_onnx`).
        output_path: where the quantised ONNX goes (its metadata is the fp32 ONNX's, with ``int8`` set).
        images: calibration images prepared at the model's input size.
        batch_size: images per calibration batch (the graph's batch when it is static).
        fixed_batch: the graph has a static batch: every batch holds exactly ``batch_size`` images.
        head_scope: module path of a detection head whose post-processing stays in float (None: quantise all).

    Returns:
        ``output_path``.
    """
    import nncf  # noqa: PLC0415 - heavy; only int8 exports need it

    model = onnx.load(str(onnx_path))
    ignored = _ignored_scope(nncf, model, head_scope)
    source = OnnxCalibration(images, model.graph.input[0].name, batch_size, fixed_batch)
    with quiet_nncf():
        quantized = nncf.quantize(model, nncf.Dataset(source), preset=nncf.QuantizationPreset.PERFORMANCE,
                                  subset_size=len(source), ignored_scope=ignored)
    _make_signed(quantized)
    _copy_metadata(model, quantized)
    onnx.save(quantized, str(output_path))
    logger.info("int8 Q/DQ ONNX %s: %d quantise/dequantise nodes", output_path, count_qdq_nodes(quantized))
    return output_path


def _make_signed(model: onnx.ModelProto) -> None:
    """Turn NNCF's unsigned (uint8, zero point 0) activation quantisers into signed int8 ones, in place.

    NNCF gives a non-negative activation (the input image, a sigmoid) the range [0, 255 * scale] in uint8; TensorRT
    accepts signed INT8 Q/DQ only. The same range in int8 with zero point 0 is [0, 127 * scale'] with
    scale' = scale * 255 / 127: one bit less resolution on those tensors, the range kept.
    """
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    scales: dict[str, str] = {}  # scale name -> zero-point name, of the unsigned quantisers
    signed_scales: set[str] = set()
    quantized: set[str] = set()  # the uint8 tensors those quantisers produce
    for node in model.graph.node:
        point = initializers.get(node.input[2]) if node.op_type in QDQ_OPS and len(node.input) == 3 else None
        if point is not None and point.data_type == onnx.TensorProto.UINT8:
            scales[node.input[1]] = node.input[2]
            quantized.update(node.output if node.op_type == "QuantizeLinear" else ())
        elif point is not None:
            signed_scales.add(node.input[1])
    if shared := sorted(signed_scales & scales.keys()):
        raise RuntimeError(f"quantiser scales {shared} serve both int8 and uint8 quantisers; cannot make them signed")
    for scale_name, point_name in scales.items():
        point = onnx.numpy_helper.to_array(initializers[point_name])
        if point.any():
            raise RuntimeError(f"quantiser zero point '{point_name}' is not 0: TensorRT needs symmetric int8")
        scale = onnx.numpy_helper.to_array(initializers[scale_name]).astype(np.float32) * np.float32(255 / 127)
        initializers[scale_name].CopyFrom(onnx.numpy_helper.from_array(scale, scale_name))
    for point_name in set(scales.values()):
        shape = onnx.numpy_helper.to_array(initializers[point_name]).shape
        initializers[point_name].CopyFrom(onnx.numpy_helper.from_array(np.zeros(shape, np.int8), point_name))
    for info in model.graph.value_info:
        if info.name in quantized:
            info.type.tensor_type.elem_type = onnx.TensorProto.INT8


def _ignored_scope(nncf: object, model: onnx.ModelProto, head_scope: str | None) -> object:
    """NNCF's ignored scope for the head's post-processing (None when the whole graph is quantised)."""
    if head_scope is None:
        return None
    names = postprocess_nodes(model, head_scope)
    if not names:
        raise RuntimeError(f"no post-processing nodes of the detection head '{head_scope}' found in the ONNX graph")
    logger.info("int8: %d post-processing nodes of the head %s stay in float", len(names), head_scope)
    return nncf.IgnoredScope(names=names, validate=False)  # type: ignore[attr-defined]


def _copy_metadata(source: onnx.ModelProto, target: onnx.ModelProto) -> None:
    """The fp32 ONNX's metadata on the quantised one, with ``int8`` recorded."""
    props = {entry.key: entry.value for entry in source.metadata_props}
    set_metadata_props(target, ExportMetadata.from_props(props, origin="the fp32 ONNX").replace(int8=True))
