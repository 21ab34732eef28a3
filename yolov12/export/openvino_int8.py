"""int8 post-training quantisation of the OpenVINO model with NNCF (``export(format="openvino", int8=True, data=...)``).

NNCF's OpenVINO backend runs the fp32 IR on the calibration images, records activation ranges and inserts
``FakeQuantize`` ops (int8 weights, activations quantised at the inputs of convolutions and matmuls), with the
``mixed`` preset: symmetric weights, asymmetric activations (SiLU outputs are not centred on zero).

The detection post-processing stays in float: every op after the head's last convolutions (per-level concat, DFL
softmax and its convolution, box decoding against the anchors, the class sigmoid, the output concat and an
end-to-end NMS tail). Quantised there, the boxes would move in steps of ~1/256 of the image (2.5 px at 640) and the
scores in steps of 1/256. The head's convolutions themselves are quantised.

nncf is imported here only, when an int8 export runs. Like OpenVINO's model converter, NNCF reports usage through
``openvino-telemetry`` unless the user opted out (``opt_in_out --opt_out``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import numpy as np

from yolov12.export.calibration import CalibrationImages, quiet_nncf
from yolov12.utils.extras import extra_imports

with extra_imports("openvino", "int8 OpenVINO export"):  # the [openvino] extra
    import openvino as ov

logger = logging.getLogger(__name__)

# NNCF's transformer model type (SmoothQuant before the matmuls, more attention ops left in float: 149 FakeQuantize
# ops instead of 189 in yolov12n). Measured with benchmarks/int8_accuracy.py --variants on yolov12n trained 35 epochs
# on `sample` at 160 px (fp32 mAP50-95 0.101), scored on its 32 val images, int8 default / transformer:
#   best@160 0.0977 / 0.1001, best@224 0.0784 / 0.0792, best@320 0.0332 / 0.0320, last@160 0.0988 / 0.0996;
#   mAP50 +0.003, +0.003, -0.002, -0.004 for transformer. Mean +0.0007 mAP50-95: within the noise of 32 images.
# Post-processing quantised too (no ignored scope): 0.0958, 0.0696, 0.0285, 0.1001, i.e. 0.002-0.009 below the
# default in three of the four, hence the ignored scope. With no measurable accuracy gain, the default stays the
# plain model type, which quantises more ops (not slower: 9.6 vs 10.4 ms best-of-40 at 320 px, 2 threads, on a
# loaded machine). Re-measure on a better-trained checkpoint with --variants.
TRANSFORMER_DEFAULT = False


class CalibrationBatches:
    """The calibration images as a sized, re-iterable source of model inputs (NNCF iterates it more than once).

    ``batch_size`` tells NNCF to collect statistics per image inside a batch when it is above 1.
    """

    def __init__(self, images: CalibrationImages, batch_size: int = 1, fixed: bool = False) -> None:
        self.images, self.batch_size, self.fixed = images, batch_size, fixed

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.images.batches(self.batch_size, self.fixed)


def postprocess_ops(model: ov.Model, head_scope: str) -> list[str]:
    """Names of the ops after the head's last convolutions: ops directly in the head's own scope (not in one of its
    sub-modules such as ``cv2.0``) and everything downstream of them, up to the outputs.

    ``head_scope`` is the head's module path in the exported model (``model.21``); the ONNX exporter names ops
    ``/model.21/Concat``, ``/model.21/dfl/Softmax``, ``/model/model.21/...`` (end-to-end wrapper).
    """
    own = re.compile(rf"(^|/){re.escape(head_scope)}/[^/]+$")
    marked: dict[str, str] = {}  # unique op name -> friendly name (what NNCF matches)
    for op in model.get_ordered_ops():  # topological order: producers before consumers
        if op.get_type_name() == "Constant":
            continue
        if own.search(op.get_friendly_name()) or any(v.get_node().get_name() in marked for v in op.input_values()):
            marked[op.get_name()] = op.get_friendly_name()
    return sorted(marked.values())


def quantize_openvino(model: ov.Model, images: CalibrationImages, *, batch_size: int = 1, fixed_batch: bool = False,
                      head_scope: str | None = None, transformer: bool = TRANSFORMER_DEFAULT) -> ov.Model:
    """The int8 model: NNCF post-training quantisation (``mixed`` preset) calibrated on ``images``.

    Args:
        model: the fp32 OpenVINO model (converted from our ONNX).
        images: calibration images prepared at the model's input size.
        batch_size: images per calibration batch (the graph's batch when it is static).
        fixed_batch: the graph has a static batch: every batch holds exactly ``batch_size`` images.
        head_scope: module path of a detection head whose post-processing stays in float (None: quantise all).
        transformer: NNCF's ``ModelType.TRANSFORMER``.
    """
    import nncf  # noqa: PLC0415 - heavy; only int8 exports need it

    ignored = None
    if head_scope is not None:
        names = postprocess_ops(model, head_scope)
        if not names:
            raise RuntimeError(f"no post-processing ops of the detection head '{head_scope}' found in the graph")
        ignored = nncf.IgnoredScope(names=names, validate=False)  # Result / shape ops are not in NNCF's graph
        logger.info("int8: %d post-processing ops of the head %s stay in float", len(names), head_scope)
    source = CalibrationBatches(images, batch_size, fixed_batch)
    with quiet_nncf():
        return nncf.quantize(
            model, nncf.Dataset(source), preset=nncf.QuantizationPreset.MIXED, subset_size=len(source),
            model_type=nncf.ModelType.TRANSFORMER if transformer else None, ignored_scope=ignored,
        )
