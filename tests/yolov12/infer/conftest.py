"""Shared fixtures for the inference tests: small real models, built once per session."""

from __future__ import annotations

import pytest
import torch

from yolov12.models import build_model, load_architecture


@pytest.fixture(scope="session")
def detector():
    """yolov12n with 3 classes (fast), eval mode."""
    return build_model(load_architecture("yolov12n").with_overrides(num_classes=3)).eval()


@pytest.fixture(scope="session")
def classifier():
    """yolov12n-cls with 10 classes, eval mode."""
    return build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=10)).eval()


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread while these tests run (restored after each module).

    The models here are tiny; on a shared 2-core machine torch's parallel regions wait for descheduled threads and a
    320-pixel forward took 3-4 s with 2 threads against 0.25 s with 1.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
