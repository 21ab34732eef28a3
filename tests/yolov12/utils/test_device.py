"""Device settings: normalised forms, ``auto`` on this machine, GPU lists, and one-line errors."""

from __future__ import annotations

import logging

import pytest
import torch

from yolov12.config import PredictConfig
from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.utils.device import DeviceError, best_device, gpu_indices, normalise_device, select_device

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answers")


@pytest.mark.parametrize(("value", "expected"), [
    (None, "auto"), ("", "auto"), (" AUTO ", "auto"), ("cpu", "cpu"), ("mps", "mps"), ("cuda", "cuda"),
    (0, "cuda:0"), ("1", "cuda:1"), ("cuda:2", "cuda:2"), ([0, 1], "0,1"), ((0, 1), "0,1"), ("0,1", "0,1"),
    ("[0, 1]", "0,1"), ("cuda:0,1", "0,1"), ("0, 1, 1", "0,1"), ([3], "cuda:3"), (torch.device("cpu"), "cpu"),
])
def test_normalised_forms(value, expected) -> None:
    assert normalise_device(value) == expected


@pytest.mark.parametrize("value", ["gpu", "tpu:0", "0,x", "cuda:a", [0, "b"]])
def test_unknown_forms_are_one_line(value) -> None:
    with pytest.raises(ValueError, match="is not a device") as info:
        normalise_device(value)
    assert "\n" not in str(info.value)
    with pytest.raises(DeviceError, match="unknown device"):
        select_device(value)


def test_gpu_indices() -> None:
    assert gpu_indices("0,1") == [0, 1] and gpu_indices([2, 3]) == [2, 3]
    assert gpu_indices("cuda:0") == [] and gpu_indices("auto") == []


@pytest.mark.parametrize("text", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu(text) -> None:
    assert select_device(text) == torch.device("cpu")


@NO_CUDA
def test_auto_is_the_best_device_here_and_logged_with_its_name(caplog) -> None:
    expected = "mps" if torch.backends.mps.is_available() else "cpu"
    assert best_device() == expected
    with caplog.at_level(logging.INFO, logger="yolov12.utils.device"):
        assert select_device("auto").type == expected
        assert select_device(None).type == expected
    lines = [r.getMessage() for r in caplog.records if "device=auto" in r.getMessage()]
    assert len(lines) <= 1  # once per process (an earlier test may have logged it already)


def test_configs_default_to_auto() -> None:
    assert TrainConfig().run.device == "auto"
    assert PredictConfig().device == "auto"
    assert TrainConfig.from_overrides(device=[0, 1]).run.device == "0,1"


def test_predict_refuses_a_gpu_list() -> None:
    with pytest.raises(ConfigError, match="inference runs on one device"):
        PredictConfig.from_overrides({"device": "0,1"})


@NO_CUDA
@pytest.mark.parametrize("text", ["cuda", "cuda:0", "0", 1])
def test_cuda_unavailable(text) -> None:
    with pytest.raises(DeviceError, match="requested but CUDA is not available") as info:
        select_device(text)
    assert "\n" not in str(info.value) and "use device=cpu" in str(info.value)


def test_a_gpu_list_in_one_process_names_the_training_command() -> None:
    with pytest.raises(DeviceError, match="one process on one device.*yolov12 train device=0,1"):
        select_device("0,1")
