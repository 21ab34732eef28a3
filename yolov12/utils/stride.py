"""Input sizes and the model stride: detection inputs must be multiples of the largest stride.

Example:
    >>> round_up_to_stride(300, 32), round_up_to_stride(8, 32)
    (320, 32)
"""

from __future__ import annotations

from typing import Any

import torch


def round_up_to_stride(size: int, stride: int) -> int:
    """The smallest multiple of ``stride`` that is at least ``size`` (and at least one stride)."""
    return max(stride, -(-int(size) // stride) * stride)


def max_stride(model: Any) -> int:
    """The largest stride of a model (``model.stride``: an int or a tensor of per-level strides); at least 1."""
    return max(int(torch.as_tensor(model.stride).max()), 1)
