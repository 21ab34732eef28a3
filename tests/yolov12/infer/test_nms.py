"""NMS against a brute-force greedy reference: random boxes, score ties, classes, thresholds, limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import yolov12.infer.nms as nms_module
from yolov12.infer.nms import nms, non_max_suppression
from yolov12.utils.boxes import box_iou


def _iou(a: list[float], b: list[float]) -> float:
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else float("nan")


def _reference_nms(boxes: list[list[float]], scores: list[float], labels: list[int], threshold: float) -> list[int]:
    """Plain greedy NMS: by descending score (ties: lower index first); only same-label boxes suppress each other."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(labels[i] != labels[k] or not _iou(boxes[i], boxes[k]) > threshold for k in kept):
            kept.append(i)
    return kept


def _reference(prediction: torch.Tensor, conf, iou, classes, agnostic, max_det) -> list[torch.Tensor]:
    outputs = []
    for image in prediction.transpose(1, 2):
        rows = []
        for anchor in image.tolist():
            cx, cy, w, h, *class_scores = anchor
            best = max(range(len(class_scores)), key=lambda c: (class_scores[c], -c))  # first max
            if class_scores[best] > conf and (classes is None or best in classes):
                rows.append((cx, cy, w, h, class_scores[best], best))
        xywh = torch.tensor([r[:4] for r in rows], dtype=torch.float32).reshape(-1, 4)
        xyxy = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1).tolist()
        scores, labels = [r[4] for r in rows], [0 if agnostic else r[5] for r in rows]
        kept = _reference_nms(xyxy, scores, labels, iou)[:max_det]
        outputs.append(torch.tensor([[*xyxy[i], scores[i], rows[i][5]] for i in kept], dtype=torch.float32)
                       .reshape(-1, 6))
    return outputs


@st.composite
def predictions(draw):
    batch, anchors, num_classes = draw(st.integers(1, 2)), draw(st.integers(0, 40)), draw(st.integers(1, 4))
    # integer centres and sizes (zero sizes included: NaN IoU never suppresses) keep IoUs exact in float32;
    # a handful of score values makes ties common
    geometry = draw(hnp.arrays(np.int64, (batch, 4, anchors), elements=st.integers(0, 60)))
    geometry[:, 2:] //= 2
    levels = np.array([0.0, 0.1, 0.3, 0.5, 0.8, 0.9], np.float32)
    scores = levels[draw(hnp.arrays(np.int64, (batch, num_classes, anchors), elements=st.integers(0, 5)))]
    return torch.from_numpy(np.concatenate((geometry.astype(np.float32), scores), 1)), num_classes


@settings(max_examples=150, deadline=None)
@given(
    data=predictions(),
    conf=st.sampled_from([0.0, 0.25, 0.5]),
    iou=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    agnostic=st.booleans(),
    max_det=st.sampled_from([1, 3, 300]),
    use_classes=st.booleans(),
)
def test_matches_brute_force_reference(data, conf, iou, agnostic, max_det, use_classes) -> None:
    prediction, num_classes = data
    classes = [0, num_classes - 1] if use_classes else None
    got = non_max_suppression(prediction, conf=conf, iou=iou, classes=classes, agnostic=agnostic, max_det=max_det)
    expected = _reference(prediction, conf, iou, classes, agnostic, max_det)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    count=st.integers(0, 120),
    threshold=st.sampled_from([0.2, 0.5, 0.8]),
    block=st.sampled_from([7, 32, 256]),
)
def test_nms_on_float_boxes_across_blocks(seed, count, threshold, block) -> None:
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 50
    boxes = torch.cat((corner, corner + torch.rand(count, 2, generator=generator, dtype=torch.float64) * 20 + 1), 1)
    scores = torch.randint(0, 5, (count,), generator=generator).double() / 4  # ties
    previous, nms_module.BLOCK_SIZE = nms_module.BLOCK_SIZE, block
    try:
        kept = nms(boxes, scores, threshold)
        limited = nms(boxes, scores, threshold, max_output=5)
    finally:
        nms_module.BLOCK_SIZE = previous
    expected = _reference_nms(boxes.tolist(), scores.tolist(), [0] * count, threshold)
    assert kept.tolist() == expected
    assert limited.tolist() == expected[:5]
    assert kept.dtype == torch.int64


def test_identical_boxes_keep_the_first_of_equal_scores() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 4)
    assert nms(boxes, torch.tensor([0.5, 0.9, 0.9, 0.1]), 0.5).tolist() == [1]


def test_classes_do_not_suppress_each_other_unless_agnostic() -> None:
    prediction = torch.zeros(1, 6, 2)
    prediction[0, :4] = torch.tensor([[50.0, 50.0], [50.0, 50.0], [20.0, 20.0], [20.0, 20.0]])
    prediction[0, 4:] = torch.tensor([[0.9, 0.0], [0.0, 0.8]])
    assert len(non_max_suppression(prediction, conf=0.1)[0]) == 2
    only = non_max_suppression(prediction, conf=0.1, agnostic=True)[0]
    assert only.tolist() == [[40.0, 40.0, 60.0, 60.0, pytest.approx(0.9), 0.0]]


def test_negative_coordinates_keep_classes_apart() -> None:
    prediction = torch.zeros(1, 6, 2)
    prediction[0, :4] = torch.tensor([[-30.0, 0.0], [-30.0, 0.0], [40.0, 20.0], [40.0, 20.0]])  # overlapping boxes
    prediction[0, 4:] = torch.tensor([[0.9, 0.0], [0.0, 0.8]])
    assert len(non_max_suppression(prediction, conf=0.1, iou=0.01)[0]) == 2


def test_empty_and_low_confidence_inputs() -> None:
    assert [t.shape for t in non_max_suppression(torch.zeros(2, 7, 0))] == [(0, 6), (0, 6)]
    assert non_max_suppression(torch.rand(1, 7, 50) * 0.2, conf=0.5)[0].shape == (0, 6)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_max_candidates_keeps_the_best_scores() -> None:
    prediction = torch.zeros(1, 5, 10)
    prediction[0, 0] = torch.arange(10) * 100.0  # far apart: nothing suppressed
    prediction[0, 2:4] = 10.0
    prediction[0, 4] = torch.linspace(0.1, 1.0, 10)
    out = non_max_suppression(prediction, conf=0.0, max_candidates=3)[0]
    assert out[:, 4].tolist() == pytest.approx([1.0, 0.9, 0.8])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision_inputs(dtype) -> None:
    prediction = (torch.rand(1, 8, 200) * torch.tensor([300, 300, 50, 50, 1, 1, 1, 1])[:, None]).to(dtype)
    out = non_max_suppression(prediction, conf=0.2)[0]
    assert out.dtype == torch.float32 and out.shape[1] == 6
    assert (out[1:, 4] <= out[:-1, 4]).all()


def test_box_iou_matches_reference() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 5.0, 5.0]])
    expected = [[_iou(x, y) for y in b.tolist()] for x in a.tolist()]
    torch.testing.assert_close(box_iou(a, b), torch.tensor(expected))
