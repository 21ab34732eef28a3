"""``yolov12 benchmark``: one row per format with size, metric and latency; unavailable formats say why."""

from __future__ import annotations

import pytest

from yolov12.benchmark import BenchmarkConfig, cpu_flags, has_bf16, unavailable_reason
from yolov12.cli.main import main

TINY = ["model=yolov12n.yaml", "data=sample", "imgsz=64", "runs=2", "warmup=1", "batch=32"]


def table_rows(out: str) -> dict[str, list[str]]:
    """format -> the other columns of the printed table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("format ")) + 2
    return {line.split()[0]: line.split()[1:] for line in lines[start:] if line.strip()}


def test_torch_row_has_numbers_and_the_machine_is_printed(capsys) -> None:
    assert main(["benchmark", *TINY, "formats=torch,tensorrt", "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "logical cores" in out and "torch " in out
    rows = table_rows(out)
    precision, size, metric, latency, status = rows["torch"]
    assert status == "ok" and precision == "fp32"
    assert 5 < float(size) < 20 and 0 <= float(metric) <= 1 and float(latency) > 0
    assert "not available: " in " ".join(rows["tensorrt"])


@pytest.mark.slow
def test_torch_and_onnx_rows(capsys) -> None:
    assert main(["benchmark", *TINY, "formats=torch,onnx"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert set(rows) == {"torch", "onnx"}
    for columns in rows.values():
        assert columns[-1] == "ok"
        assert all(float(value) >= 0 for value in columns[1:4])
    assert abs(float(rows["onnx"][1]) - float(rows["torch"][1])) < 1.0  # the same weights, give or take headers


def test_bf16_row_follows_the_cpu_features() -> None:
    config = BenchmarkConfig(model="yolov12n.yaml", formats="openvino-bf16,trt", device="cpu")
    assert config.formats == ["openvino-bf16", "tensorrt"]
    assert has_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    reason = unavailable_reason("openvino-bf16", config)
    assert (reason is None) == has_bf16() or (reason or "").startswith("openvino is not installed")
    assert unavailable_reason("tensorrt", config) is not None


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [("formats=torch,tflite", "unknown format(s) ['tflite']"),
     ("model=missing.safetensors", "never downloads weights"),
     ("data=samplee", "data: "),
     ("imgz=64", "did you mean 'imgsz'")],
)
def test_bad_arguments_are_one_line(capsys, argument: str, fragment: str) -> None:
    assert main(["benchmark", "model=yolov12n.yaml", argument]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err
