"""Fuzz target: bytes -> the core's image decoder for prediction sources (:func:`decode_image_bytes`).

``read_image`` reads a file and hands its bytes to the same function, so this covers image files given to
``predict`` as well. Allowed: :class:`SourceError` (not an image, corrupt, or over a limit). Anything else escaping,
a decoded image that is not (H, W, 3) uint8 within the limits, or memory over ``MEMORY_BUDGET_MB`` is a finding.

The limits are lowered from the defaults (400 Mpx, 1.2 GB) to 4 Mpx and 24 MiB, so an input the header check lets
through can only decode to sizes far below the memory budget; one that allocates more got past the check.
"""

from __future__ import annotations

import numpy as np

from yolov12.infer.image_io import SourceError, decode_image_bytes

MEMORY_BUDGET_MB = 256  # a decode within the limits below holds ~24 MiB of pixels plus a converted copy and codecs
INSTRUMENT = ("yolov12.infer", "PIL")  # the header check runs Pillow's header parsers: their coverage guides it
MAX_PIXELS = 4_000_000
MAX_BYTES = 24 * 2**20


def fuzz_one_input(data: bytes) -> None:
    """Decode ``data`` as an image file: :class:`SourceError` is the expected refusal, anything else a finding."""
    try:
        image = decode_image_bytes(data, "fuzz-input", max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES)
    except SourceError:
        return
    if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.flags.c_contiguous):
        raise AssertionError(f"decoded to {image.dtype} {image.shape}, not contiguous (H, W, 3) uint8")
    if image.shape[0] * image.shape[1] > MAX_PIXELS or image.nbytes > MAX_BYTES:
        raise AssertionError(f"decoded to {image.shape} ({image.nbytes} bytes), over the limits")
