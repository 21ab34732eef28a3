"""Session fixtures for the checkpoint tests (helpers live in checkpoint_helpers.py)."""

from __future__ import annotations

import pytest
from checkpoint_helpers import make_model
from torch import nn


@pytest.fixture(scope="session")
def detection_model() -> nn.Module:
    """YOLOv12n (turbo) detector with 3 classes."""
    return make_model("yolov12n", 3)


@pytest.fixture(scope="session")
def classification_model() -> nn.Module:
    """YOLOv12n classifier with 5 classes."""
    return make_model("yolov12n-cls", 5)
