"""OpenVINO export: the ONNX graph converted to OpenVINO IR in a ``<stem>_openvino/`` folder with ``metadata.yaml``.

The folder holds ``<stem>.xml`` (graph), ``<stem>.bin`` (weights) and ``metadata.yaml`` (the :class:`ExportMetadata`
document, the same as in the ONNX props). Weights stay fp32 unless ``half`` (then stored as fp16 and expanded at
load) or ``int8`` (NNCF post-training quantisation: int8 weights and ``FakeQuantize`` ops, ``metadata.int8``). The
inference precision (``fp32`` or ``bf16``) is a runtime hint recorded as the default in the metadata; bf16 runs
natively only on CPUs with AVX512-BF16/AMX, elsewhere OpenVINO keeps fp32. For an int8 model it applies to the
parts left in float (the detection post-processing).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from yolov12.export.metadata import ExportMetadata
from yolov12.utils.extras import extra_imports

if TYPE_CHECKING:  # openvino comes with the [openvino] extra: imported by the export itself, not by this module
    import openvino as ov

logger = logging.getLogger(__name__)

FOLDER_SUFFIX = "_openvino"
METADATA_FILE = "metadata.yaml"
PRECISIONS = ("fp32", "bf16")


def openvino_folder(path: Path) -> Path:
    """``x.onnx`` / ``x`` -> ``x_openvino`` (a path already ending in ``_openvino`` is kept)."""
    return path if path.name.endswith(FOLDER_SUFFIX) else path.with_name(f"{path.stem}{FOLDER_SUFFIX}")


def export_openvino(onnx_path: Path, folder: Path, metadata: ExportMetadata, half: bool = False,
                    quantize: Callable[[ov.Model], ov.Model] | None = None) -> Path:
    """Convert ``onnx_path`` to IR in ``folder`` (replaced if it exists); returns the folder.

    Static ONNX shapes stay static in the IR, which lets the CPU plugin plan memory once. ``quantize`` turns the
    converted model into its int8 version (see :mod:`yolov12.export.openvino_int8`) before it is saved.
    """
    with extra_imports("openvino", "OpenVINO export"):
        import openvino as ov  # noqa: PLC0415 - the [openvino] extra; reading metadata needs no OpenVINO

    model = ov.convert_model(str(onnx_path))
    if quantize is not None:
        model = quantize(model)
    model.set_rt_info(metadata.to_json(), ["model_info", "yolov12"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    xml = folder / f"{folder.name.removesuffix(FOLDER_SUFFIX)}.xml"
    ov.save_model(model, str(xml), compress_to_fp16=half)
    write_metadata(folder, metadata)
    weights = "int8" if metadata.int8 else "fp16" if half else "fp32"
    logger.info("OpenVINO export: %s (%s weights, default precision %s)", folder, weights, metadata.precision)
    return folder


def write_metadata(folder: Path, metadata: ExportMetadata) -> Path:
    path = folder / METADATA_FILE
    path.write_text(yaml.safe_dump(metadata.to_dict(), sort_keys=False, allow_unicode=True))
    return path


def read_openvino_metadata(folder: str | Path) -> ExportMetadata:
    """The :class:`ExportMetadata` of an ``*_openvino`` folder (from its ``metadata.yaml``)."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"'{folder}' has no {METADATA_FILE}: not an OpenVINO folder written by yolov12 export")
    return ExportMetadata.from_dict(yaml.safe_load(path.read_text()), origin=str(path))


def find_ir(folder: str | Path) -> Path:
    """The single ``.xml`` graph inside an OpenVINO folder."""
    graphs = sorted(Path(folder).glob("*.xml"))
    if len(graphs) != 1:
        raise FileNotFoundError(f"'{folder}' must hold exactly one OpenVINO .xml graph, found {len(graphs)}")
    return graphs[0]
