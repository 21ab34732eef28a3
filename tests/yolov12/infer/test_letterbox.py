"""Letterbox geometry, batch preprocessing and the round trip of boxes back to the original image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov12.infer.letterbox import LetterboxInfo, letterbox, scale_boxes
from yolov12.infer.preprocess import letterbox_batch

COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))


@pytest.mark.parametrize(
    ("shape", "size", "expected_shape", "expected_pad"),
    [
        ((480, 640), 320, (320, 320), (0, 40)),
        ((640, 480), 320, (320, 320), (40, 0)),
        ((320, 320), 320, (320, 320), (0, 0)),
        ((100, 300), 640, (640, 640), (0, 213)),
        ((480, 640), (320, 480), (320, 480), (26, 0)),
    ],
)
def test_letterbox_shape_and_centred_padding(shape, size, expected_shape, expected_pad) -> None:
    image = np.full((*shape, 3), 200, np.uint8)
    boxed, info = letterbox(image, size)
    assert boxed.shape == (*expected_shape, 3)
    assert info.pad == expected_pad
    left, top = info.pad
    assert (boxed[:top] == 114).all() and (boxed[:, :left] == 114).all()
    new_h, new_w = round(shape[0] * info.ratio[1]), round(shape[1] * info.ratio[0])
    assert (boxed[top:top + new_h, left:left + new_w] == 200).all()


def test_letterbox_auto_pads_to_stride_multiple_only() -> None:
    boxed, info = letterbox(np.zeros((480, 640, 3), np.uint8), 640, stride=32, auto=True)
    assert boxed.shape == (480, 640, 3) and info.pad == (0, 0)
    boxed, _ = letterbox(np.zeros((470, 640, 3), np.uint8), 640, stride=32, auto=True)
    assert boxed.shape == (480, 640, 3)


def test_letterbox_without_scaleup_only_pads_small_images() -> None:
    boxed, info = letterbox(np.zeros((100, 200, 3), np.uint8), 320, scaleup=False)
    assert boxed.shape == (320, 320, 3)
    assert info.ratio == (1.0, 1.0) and info.pad == (60, 110)


def _draw_boxes(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    boxes = np.array([
        [0.05 * width, 0.10 * height, 0.40 * width, 0.50 * height],
        [0.50 * width, 0.20 * height, 0.95 * width, 0.90 * height],
        [0.30 * width, 0.60 * height, 0.45 * width, 0.98 * height],
    ]).round()
    image = np.zeros((height, width, 3), np.uint8)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), COLOURS):
        image[y1:y2, x1:x2] = colour
    return image, boxes


def _find_boxes(image: np.ndarray) -> np.ndarray:
    found = []
    for colour in COLOURS:
        mask = (np.abs(image.astype(int) - colour).sum(-1) < 60)
        ys, xs = np.nonzero(mask)
        found.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(found, dtype=np.float64)


@pytest.mark.parametrize("shape", [(300, 500), (640, 480), (123, 457), (1000, 200), (320, 320)])
@pytest.mark.parametrize("size", [320, 640])
def test_boxes_survive_the_letterbox_round_trip(shape, size) -> None:
    image, boxes = _draw_boxes(shape)
    boxed, info = letterbox(image, size)
    mapped = scale_boxes(_find_boxes(boxed), info, shape)
    tolerance = 1.5 / min(info.ratio) + 1  # one letterboxed pixel of interpolation blur, in original pixels
    np.testing.assert_allclose(mapped, boxes, atol=tolerance)


def test_scale_boxes_clips_to_the_original_image() -> None:
    info = LetterboxInfo(ratio=(0.5, 0.5), pad=(0, 40))
    boxes = torch.tensor([[-10.0, 0.0, 400.0, 400.0]])
    mapped = scale_boxes(boxes, info, (480, 640))
    assert mapped.tolist() == [[0.0, 0.0, 640.0, 480.0]]
    assert boxes.tolist() == [[-10.0, 0.0, 400.0, 400.0]]  # input untouched


def test_letterbox_batch_tensor_is_rgb_chw_in_unit_range() -> None:
    blue = np.zeros((100, 200, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    grey = np.full((300, 150, 3), 51, np.uint8)
    prepared = letterbox_batch([blue, grey], 64)
    batch, infos = prepared.to_tensor("cpu", torch.float32), prepared.letterboxes
    assert batch.shape == (2, 3, 64, 64) and batch.dtype == torch.float32 and batch.is_contiguous()
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    assert batch[0, 2, 32, 32] == 1.0 and batch[0, 0, 32, 32] == 0.0  # blue ends in channel 2 (RGB)
    assert torch.isclose(batch[0, 0, 0, 0], torch.tensor(114 / 255))  # padding
    assert torch.isclose(batch[1, 1, 32, 32], torch.tensor(0.2))
    assert [i.pad for i in infos] == [(0, 16), (16, 0)]
