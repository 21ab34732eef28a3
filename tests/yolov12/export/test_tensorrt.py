"""TensorRT: the one-line message without a GPU / tensorrt, the engine-file header and its compatibility checks.

Building and running engines needs an NVIDIA GPU; these tests cover everything that does not.
"""

from __future__ import annotations

import pytest
from export_helpers import make_model

from yolov12.cli.main import main
from yolov12.engines import available_backends, load_engine
from yolov12.export import (
    EngineCompatibilityError,
    EngineFileError,
    ExportMetadata,
    TensorRTUnavailableError,
    export_model,
)
from yolov12.export.tensorrt import (
    EngineHeader,
    check_compatibility,
    missing_requirements,
    read_engine_header,
    write_engine_file,
)

NO_TENSORRT = bool(missing_requirements())
needs_no_gpu = pytest.mark.skipif(not NO_TENSORRT, reason="checks the message on machines without TensorRT")
MESSAGE = (r"TensorRT (export|load) needs an NVIDIA GPU and the tensorrt package: .*"
           r"pip install 'yolov12-platform\[gpu\]'")


def metadata() -> ExportMetadata:
    return ExportMetadata(format="engine", task="detect", names={0: "a", 1: "b"}, stride=32, imgsz=(640, 640),
                          batch=4, dynamic=True, half=True, model_name="yolov12n", model_version="turbo")


@needs_no_gpu
def test_export_without_gpu_or_tensorrt_is_one_clear_line(tmp_path) -> None:
    model = make_model("yolov12n-cls")
    with pytest.raises(TensorRTUnavailableError, match=MESSAGE) as caught:
        export_model(model, format="engine", half=True, output=str(tmp_path / "m.engine"))
    text = str(caught.value)
    assert "\n" not in text and "tensorrt" in text and ("GPU" in text)
    assert not list(tmp_path.iterdir())  # failed before writing anything


@needs_no_gpu
def test_load_without_gpu_or_tensorrt_is_one_clear_line(tmp_path) -> None:
    path = write_engine_file(tmp_path / "m.engine", EngineHeader("10.3.0", (8, 6), "NVIDIA A10", metadata()), b"x")
    with pytest.raises(TensorRTUnavailableError, match=MESSAGE.replace("(export|load)", "load")):
        load_engine(path)
    assert "tensorrt" not in available_backends()


@needs_no_gpu
def test_cli_export_engine_prints_the_message(capsys) -> None:
    assert main(["export", "model=yolov12n-cls.yaml", "format=engine"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'yolov12-platform[gpu]'" in err


def test_engine_header_round_trip(tmp_path) -> None:
    header = EngineHeader("10.3.0", (8, 9), "NVIDIA L4", metadata())
    path = write_engine_file(tmp_path / "m.engine", header, b"serialized-engine")
    read, offset = read_engine_header(path)
    assert read == header and path.read_bytes()[offset:] == b"serialized-engine"


def test_an_engine_built_for_another_gpu_or_tensorrt_is_refused_with_the_reason() -> None:
    header = EngineHeader("10.3.0", (8, 6), "NVIDIA A10", metadata())
    check_compatibility(header, "10.3.0.26", (8, 6))  # same release (build number aside), same architecture
    with pytest.raises(EngineCompatibilityError, match=r"built for TensorRT 10\.3\.0, this machine has TensorRT 10\.5"):
        check_compatibility(header, "10.5.0", (8, 6))
    with pytest.raises(EngineCompatibilityError,
                       match=r"compute capability 8\.6 \(NVIDIA A10\), this GPU is 9\.0; rebuild it here"):
        check_compatibility(header, "10.3.0", (9, 0))


def test_a_file_without_our_header_is_refused(tmp_path) -> None:
    path = tmp_path / "foreign.engine"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(EngineFileError, match="not a yolov12 TensorRT engine"):
        read_engine_header(path)
