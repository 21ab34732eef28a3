"""TaskAlignedAssigner: properties on random scenes and hand-made cases."""

from __future__ import annotations

import pytest
import torch

from yolov12.engine.assigner import TaskAlignedAssigner, anchors_inside_boxes
from yolov12.utils.boxes import bbox_iou

NUM_CLASSES = 3


def grid_anchors(size: int = 64, stride: int = 8) -> torch.Tensor:
    """(A, 2) cell-centre anchor points in pixels, row-major."""
    centres = torch.arange(size // stride, dtype=torch.float32) * stride + stride / 2
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack((x, y), -1).view(-1, 2)


def random_scene(seed: int, batch: int = 2, max_objects: int = 4, size: int = 64):
    """Random predictions around every anchor and random GTs (image i has max_objects - i real ones)."""
    generator = torch.Generator().manual_seed(seed)
    anchors = grid_anchors(size)
    a = len(anchors)
    scores = torch.rand(batch, a, NUM_CLASSES, generator=generator)
    half = torch.rand(batch, a, 2, generator=generator) * 12 + 2
    pred = torch.cat((anchors - half, anchors + half), -1)
    top_left = torch.rand(batch, max_objects, 2, generator=generator) * size * 0.6
    wh = torch.rand(batch, max_objects, 2, generator=generator) * size * 0.4 + 6
    gt_boxes = torch.cat((top_left, top_left + wh), -1)
    gt_labels = torch.randint(0, NUM_CLASSES, (batch, max_objects, 1), generator=generator).float()
    gt_mask = torch.zeros(batch, max_objects, 1, dtype=torch.bool)
    for i in range(batch):
        gt_mask[i, : max_objects - i] = True
    gt_boxes = gt_boxes * gt_mask  # padding rows are zeros, as prepare_targets makes them
    return scores, pred, anchors, gt_labels, gt_boxes, gt_mask


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("topk", [1, 3, 10])
def test_assignment_properties_on_random_scenes(seed: int, topk: int) -> None:
    scores, pred, anchors, gt_labels, gt_boxes, gt_mask = random_scene(seed)
    result = TaskAlignedAssigner(topk=topk, num_classes=NUM_CLASSES)(
        scores, pred, anchors, gt_labels, gt_boxes, gt_mask
    )
    b, a = scores.shape[:2]
    assert result.fg_mask.shape == (b, a) and result.fg_mask.dtype == torch.bool
    assert result.scores.shape == (b, a, NUM_CLASSES) and result.boxes.shape == (b, a, 4)
    assert result.fg_mask.any()
    inside = anchors_inside_boxes(anchors, gt_boxes)  # (B, M, A)
    for i in range(b):
        fg = result.fg_mask[i].nonzero().view(-1)
        gt = result.gt_index[i, fg]
        assert gt_mask[i, gt, 0].all(), "an anchor was assigned to a padding row"
        assert inside[i, gt, fg].all(), "a foreground anchor lies outside its GT"
        assert torch.equal(result.boxes[i, fg], gt_boxes[i, gt])
        assert torch.equal(result.labels[i, fg], gt_labels[i, gt, 0].long())
        assert torch.bincount(gt, minlength=gt_boxes.shape[1]).max() <= topk
        background = ~result.fg_mask[i]
        assert (result.scores[i, background] == 0).all()
        # soft targets live only on the assigned class and never exceed the IoU bound of 1
        wrong_class = torch.ones_like(result.scores[i], dtype=torch.bool)
        wrong_class[torch.arange(a), result.labels[i]] = False
        assert (result.scores[i][wrong_class] == 0).all()
        assert (result.scores[i] <= 1 + 1e-6).all()


def test_target_scores_are_normalised_to_the_best_iou_of_each_gt() -> None:
    scores, pred, anchors, gt_labels, gt_boxes, gt_mask = random_scene(0)
    result = TaskAlignedAssigner(topk=10, num_classes=NUM_CLASSES)(
        scores, pred, anchors, gt_labels, gt_boxes, gt_mask
    )
    for i in range(scores.shape[0]):
        for m in result.gt_index[i, result.fg_mask[i]].unique().tolist():
            members = result.fg_mask[i] & (result.gt_index[i] == m)
            iou = bbox_iou(gt_boxes[i, m].expand(int(members.sum()), 4), pred[i, members], kind="ciou").clamp(min=0)
            top = result.scores[i, members].amax(-1).max()
            assert top.item() == pytest.approx(iou.max().item(), abs=1e-5)


def test_topk_picks_the_best_aligned_anchors() -> None:
    anchors = grid_anchors()
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])  # contains the 4x4 anchors with centres 12..36
    pred = torch.cat((anchors - 4, anchors + 4), -1)[None]  # poor boxes everywhere
    good = [27, 28, 35]  # anchors (28, 28), (36, 28), (28, 36): give them the exact GT box
    pred[0, good] = gt[0, 0]
    scores = torch.full((1, len(anchors), NUM_CLASSES), 0.5)
    result = TaskAlignedAssigner(topk=3, num_classes=NUM_CLASSES)(
        scores, pred, anchors, torch.tensor([[[1.0]]]), gt, torch.ones(1, 1, 1, dtype=torch.bool)
    )
    assert result.fg_mask[0].nonzero().view(-1).tolist() == good
    assert torch.allclose(result.scores[0, good, 1], torch.ones(3), atol=1e-5)


def test_anchor_claimed_by_two_gts_keeps_the_higher_iou() -> None:
    anchors = grid_anchors()
    shared = 27  # anchor at (28, 28), inside both GTs
    gts = torch.tensor([[[8.0, 8.0, 40.0, 40.0], [20.0, 20.0, 60.0, 60.0]]])
    pred = torch.cat((anchors - 4, anchors + 4), -1)[None]
    pred[0, shared] = torch.tensor([21.0, 21.0, 59.0, 59.0])  # close to GT 1, overlaps GT 0 less
    scores = torch.full((1, len(anchors), NUM_CLASSES), 0.5)
    labels = torch.tensor([[[0.0], [2.0]]])
    mask = torch.ones(1, 2, 1, dtype=torch.bool)
    result = TaskAlignedAssigner(topk=64, num_classes=NUM_CLASSES)(scores, pred, anchors, labels, gts, mask)
    assert result.fg_mask[0, shared]
    assert result.gt_index[0, shared].item() == 1
    assert result.labels[0, shared].item() == 2


@pytest.mark.parametrize("padding_rows", [0, 2])
def test_no_objects_gives_no_foreground(padding_rows: int) -> None:
    anchors = grid_anchors()
    a = len(anchors)
    result = TaskAlignedAssigner(num_classes=NUM_CLASSES)(
        torch.rand(2, a, NUM_CLASSES), torch.rand(2, a, 4), anchors, torch.zeros(2, padding_rows, 1),
        torch.zeros(2, padding_rows, 4), torch.zeros(2, padding_rows, 1, dtype=torch.bool),
    )
    assert not result.fg_mask.any()
    assert (result.scores == 0).all()
    assert result.labels.shape == (2, a) and result.boxes.shape == (2, a, 4)


def test_topk_larger_than_anchor_count() -> None:
    anchors = grid_anchors(16)  # 4 anchors
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]]])
    pred = torch.cat((anchors - 3, anchors + 3), -1)[None]
    result = TaskAlignedAssigner(topk=10, num_classes=1)(
        torch.full((1, 4, 1), 0.9), pred, anchors, torch.zeros(1, 1, 1), gt, torch.ones(1, 1, 1, dtype=torch.bool)
    )
    assert result.fg_mask.all()


def test_rejects_invalid_topk() -> None:
    with pytest.raises(ValueError, match="topk"):
        TaskAlignedAssigner(topk=0, num_classes=1)
