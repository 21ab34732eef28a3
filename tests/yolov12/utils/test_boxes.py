"""Box helpers against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolov12.utils.boxes import (
    bbox_iou,
    box_area,
    box_iou,
    cxcywh_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

SQUARE = torch.tensor([0.0, 0.0, 2.0, 2.0])
SHIFTED = torch.tensor([1.0, 0.0, 3.0, 2.0])  # overlap 2, union 6
WIDE = torch.tensor([0.0, 0.0, 4.0, 2.0])  # contains SQUARE: IoU 4 / 8
DISJOINT = torch.tensor([3.0, 0.0, 4.0, 2.0])  # gap of 1 to SQUARE


def test_format_conversions_round_trip_torch_and_numpy() -> None:
    cxcywh = torch.tensor([[5.0, 5.0, 4.0, 2.0], [1.0, 2.0, 0.0, 0.0]])
    xyxy = cxcywh_to_xyxy(cxcywh)
    assert torch.equal(xyxy, torch.tensor([[3.0, 4.0, 7.0, 6.0], [1.0, 2.0, 1.0, 2.0]]))
    assert torch.equal(xyxy_to_cxcywh(xyxy), cxcywh)
    assert torch.equal(xyxy_to_xywh(xyxy), torch.tensor([[3.0, 4.0, 4.0, 2.0], [1.0, 2.0, 0.0, 0.0]]))
    as_numpy = cxcywh_to_xyxy(cxcywh.numpy())
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_array_equal(as_numpy, xyxy.numpy())
    assert cxcywh_to_xyxy(torch.zeros(2, 3, 4)).shape == (2, 3, 4)


@pytest.mark.parametrize("to_type", [torch.tensor, np.array])
def test_each_format_round_trips_through_xyxy(to_type) -> None:
    xyxy = to_type([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 1.0, 3.0]])
    cxcywh, xywh = xyxy_to_cxcywh(xyxy), xyxy_to_xywh(xyxy)
    assert type(cxcywh) is type(xyxy) and type(xywh) is type(xyxy)
    np.testing.assert_array_equal(np.asarray(cxcywh), [[30.0, 50.0, 40.0, 60.0], [0.5, 1.5, 1.0, 3.0]])
    np.testing.assert_array_equal(np.asarray(xywh), [[10.0, 20.0, 40.0, 60.0], [0.0, 0.0, 1.0, 3.0]])
    np.testing.assert_array_equal(np.asarray(cxcywh_to_xyxy(cxcywh)), np.asarray(xyxy))
    np.testing.assert_array_equal(np.asarray(xywh_to_xyxy(xywh)), np.asarray(xyxy))


def test_conversions_promote_integers_to_floats() -> None:
    assert xyxy_to_cxcywh(np.array([[0, 0, 3, 3]])).tolist() == [[1.5, 1.5, 3.0, 3.0]]
    assert cxcywh_to_xyxy(torch.tensor([[1, 1, 3, 3]])).tolist() == [[-0.5, -0.5, 2.5, 2.5]]
    assert xyxy_to_cxcywh(torch.tensor([[0, 0, 3, 3]])).dtype == torch.float32


def test_box_area_clamps_inverted_boxes() -> None:
    boxes = torch.stack([SQUARE, WIDE, torch.tensor([2.0, 2.0, 1.0, 5.0])])
    assert box_area(boxes).tolist() == [4.0, 8.0, 0.0]
    np.testing.assert_array_equal(box_area(boxes.numpy()), [4.0, 8.0, 0.0])


def test_box_iou_is_pairwise() -> None:
    iou = box_iou(torch.stack([SQUARE, SHIFTED]), torch.stack([SQUARE, SHIFTED, WIDE, DISJOINT]))
    expected = torch.tensor([[1.0, 1 / 3, 0.5, 0.0], [1 / 3, 1.0, 0.5, 0.0]])
    assert iou.shape == (2, 4)
    torch.testing.assert_close(iou, expected, atol=1e-6, rtol=0)


def test_box_iou_hand_computed_numpy_and_empty_boxes() -> None:
    first = np.array([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 2.0, 2.0]])
    second = np.array([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 2.0, 2.0]])
    iou = box_iou(first, second)
    assert isinstance(iou, np.ndarray) and iou.shape == (2, 3)
    # overlap [5, 5, 10, 10] = 25, union 100 + 100 - 25 = 175; an empty box overlaps nothing (0, not NaN)
    np.testing.assert_array_equal(iou, [[25 / 175, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(box_iou(torch.from_numpy(first), torch.from_numpy(second)).numpy(), iou)


@pytest.mark.parametrize(
    ("other", "kind", "expected"),
    [
        (SHIFTED, "iou", 1 / 3),
        (SHIFTED, "giou", 1 / 3),  # enclosing box [0, 0, 3, 2] equals the union
        (SHIFTED, "diou", 1 / 3 - 1 / 13),  # centre distance 1, enclosing diagonal^2 = 3^2 + 2^2
        (SHIFTED, "ciou", 1 / 3 - 1 / 13),  # same aspect ratio: v = 0
        (DISJOINT, "iou", 0.0),
        (DISJOINT, "giou", -2 / 8),  # enclosing area 8, union 6
        (DISJOINT, "diou", -(2.5**2) / (4**2 + 2**2)),
        (SQUARE, "ciou", 1.0),
    ],
)
def test_bbox_iou_variants(other: torch.Tensor, kind: str, expected: float) -> None:
    assert bbox_iou(SQUARE, other, kind=kind).item() == pytest.approx(expected, abs=1e-6)


def test_ciou_aspect_ratio_term() -> None:
    iou, distance_term = 0.5, 1 / 20  # centres (1, 1) and (2, 1); enclosing [0, 0, 4, 2]
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    alpha = v / (v - iou + 1)
    assert bbox_iou(SQUARE, WIDE, kind="ciou").item() == pytest.approx(iou - distance_term - alpha * v, abs=1e-6)


def test_bbox_iou_broadcasts_and_accepts_cxcywh() -> None:
    pred = torch.rand(3, 5, 4)
    assert bbox_iou(pred, pred[:1], kind="ciou").shape == (3, 5)
    a, b = xyxy_to_cxcywh(SQUARE), xyxy_to_cxcywh(SHIFTED)
    assert bbox_iou(a, b, box_format="cxcywh").item() == pytest.approx(1 / 3, abs=1e-6)
    with pytest.raises(ValueError, match="unknown IoU kind"):
        bbox_iou(SQUARE, SHIFTED, kind="eiou")  # type: ignore[arg-type]


def test_ciou_gradients_are_finite_for_degenerate_boxes() -> None:
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 9.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    (1 - bbox_iou(pred, target, kind="ciou")).sum().backward()
    assert torch.isfinite(pred.grad).all()
