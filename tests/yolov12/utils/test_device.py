"""Device strings resolve to usable devices or fail with a one-line message."""

from __future__ import annotations

import pytest
import torch

from yolov12.infer.device import DeviceError, select_device


@pytest.mark.parametrize("text", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu(text) -> None:
    assert select_device(text) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only errors")
@pytest.mark.parametrize("text", ["cuda", "cuda:0", "0", 1])
def test_cuda_unavailable(text) -> None:
    with pytest.raises(DeviceError, match="requested but CUDA is not available") as info:
        select_device(text)
    assert "\n" not in str(info.value) and "use device=cpu" in str(info.value)


@pytest.mark.parametrize("text", ["gpu", "tpu:0", ""])
def test_unknown(text) -> None:
    with pytest.raises(DeviceError, match="unknown device"):
        select_device(text)
