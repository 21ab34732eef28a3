"""Exported artifacts shared by the export tests, built once per session (exports take seconds each)."""

from __future__ import annotations

import pytest
import torch
from export_helpers import export_cached, make_model


@pytest.fixture(scope="session", autouse=True)
def at_most_two_torch_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))  # at most the share of cores this process has (tests/conftest.py)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def turbo_n():
    return make_model("yolov12n")


@pytest.fixture(scope="session")
def v1_n():
    return make_model("yolov12n-v1")


@pytest.fixture(scope="session")
def cls_n():
    return make_model("yolov12n-cls", num_classes=5)


@pytest.fixture(scope="session")
def turbo_dynamic_onnx(turbo_n, tmp_path_factory):
    """yolov12n (turbo) at 320, dynamic batch and image size."""
    return export_cached(turbo_n, tmp_path_factory, "turbo_dynamic.onnx", imgsz=320, dynamic=True,
                         dynamic_imgsz=True, batch=2)


@pytest.fixture(scope="session")
def v1_static_onnx(v1_n, tmp_path_factory):
    """yolov12n-v1 at 320, static batch 1."""
    return export_cached(v1_n, tmp_path_factory, "v1_static.onnx", imgsz=320)


@pytest.fixture(scope="session")
def cls_onnx(cls_n, tmp_path_factory):
    """yolov12n-cls at 224 with dynamic batch."""
    return export_cached(cls_n, tmp_path_factory, "cls.onnx", dynamic=True)


@pytest.fixture(scope="session")
def turbo_openvino(turbo_n, tmp_path_factory):
    """yolov12n (turbo) at 320 as an OpenVINO folder (static batch 1)."""
    return export_cached(turbo_n, tmp_path_factory, "turbo", format="openvino", imgsz=320)
