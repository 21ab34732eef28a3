"""COCO detection metrics: hand-computed cases, the operating point, JSON export and input checks."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolov12.eval import COCOEvaluator, evaluate_detections

SQUARE = [0.0, 0.0, 100.0, 100.0]


def shifted(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def random_truth(seed: int, images: int = 6, num_classes: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    truths = []
    for _ in range(images):
        n = int(rng.integers(1, 6))
        top_left = rng.uniform(0, 400, (n, 2))
        boxes = np.concatenate([top_left, top_left + rng.uniform(10, 200, (n, 2))], 1)
        truths.append({"boxes": boxes, "classes": rng.integers(0, num_classes, n)})
    return truths


def test_perfect_predictions_score_one() -> None:
    truths = random_truth(0)
    predictions = [{**t, "scores": np.full(len(t["classes"]), 0.9)} for t in truths]
    metrics = evaluate_detections(predictions, truths, num_classes=3)
    for value in (metrics.map50_95, metrics.map50, metrics.map75, metrics.precision, metrics.recall):
        assert value == pytest.approx(1.0)
    assert metrics.ap_per_class == pytest.approx({0: 1.0, 1: 1.0, 2: 1.0})


@pytest.mark.parametrize(
    ("dx", "map50_95", "map75"),
    [(10.0, 0.7, 1.0), (20.0, 0.4, 0.0), (60.0, 0.0, 0.0)],  # IoU 90/110 = 0.818, 80/120 = 0.667, 40/160 = 0.25
)
def test_shifted_boxes_lose_the_stricter_thresholds(dx: float, map50_95: float, map75: float) -> None:
    truth = [{"boxes": [SQUARE], "classes": [0]}]
    metrics = evaluate_detections([{"boxes": [shifted(SQUARE, dx)], "scores": [0.8], "classes": [0]}], truth, 1)
    assert metrics.map50_95 == pytest.approx(map50_95)
    assert metrics.map75 == pytest.approx(map75)
    assert metrics.map50 == pytest.approx(1.0 if dx < 50 else 0.0)


def test_empty_predictions_score_zero() -> None:
    truths = random_truth(1)
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0, int)} for _ in truths]
    metrics = evaluate_detections(empty, truths, num_classes=3)
    assert (metrics.map50_95, metrics.map50, metrics.precision, metrics.recall) == (0.0, 0.0, 0.0, 0.0)
    assert all(v == 0.0 for v in metrics.ap_per_class.values())


def test_per_class_ap_follows_localisation_quality() -> None:
    truth = [{"boxes": [SQUARE, shifted(SQUARE, 300), shifted(SQUARE, 600)], "classes": [0, 1, 2]}]
    prediction = [{"boxes": [SQUARE, shifted(SQUARE, 310), shifted(SQUARE, 620)], "scores": [0.9, 0.8, 0.7],
                   "classes": [0, 1, 2]}]
    metrics = evaluate_detections(prediction, truth, num_classes=4)  # class 3 has no ground truth: left out
    assert metrics.ap_per_class == pytest.approx({0: 1.0, 1: 0.7, 2: 0.4})
    assert list(metrics.ap_per_class) == [0, 1, 2]
    assert metrics.map50_95 == pytest.approx((1.0 + 0.7 + 0.4) / 3)
    assert set(metrics.pr_curves) == {0, 1, 2} and metrics.pr_curves[0].shape == (101,)


def test_precision_and_recall_at_the_best_f1_confidence() -> None:
    truth = [{"boxes": [SQUARE, shifted(SQUARE, 300)], "classes": [0, 0]}]
    prediction = [{"boxes": [SQUARE, shifted(SQUARE, 900)], "scores": [0.9, 0.8], "classes": [0, 0]}]
    metrics = evaluate_detections(prediction, truth, num_classes=1)
    # thresholds in (0.8, 0.9]: P 1, R 0.5, F1 0.667; at or below 0.8: P 0.5, R 0.5, F1 0.5
    assert (metrics.precision, metrics.recall) == pytest.approx((1.0, 0.5))
    assert 0.8 < metrics.f1_confidence <= 0.9
    assert metrics.map50 == pytest.approx(0.5, abs=0.01)  # 101-point interpolation: 51/101


def test_false_positives_on_background_images_lower_precision() -> None:
    truth = [{"boxes": [SQUARE], "classes": [0]}, {"boxes": [], "classes": []}]
    prediction = [{"boxes": [SQUARE], "scores": [0.5], "classes": [0]},
                  {"boxes": [SQUARE], "scores": [0.9], "classes": [0]}]
    metrics = evaluate_detections(prediction, truth, num_classes=1)
    assert metrics.map50 == pytest.approx(0.5, abs=0.01)
    assert metrics.recall == pytest.approx(1.0) and metrics.precision == pytest.approx(0.5)


def test_accumulating_batches_equals_one_shot_and_accepts_tensors() -> None:
    truths = random_truth(2, images=8)
    rng = np.random.default_rng(3)
    predictions = [{"boxes": t["boxes"] + rng.normal(0, 4, t["boxes"].shape),
                    "scores": rng.uniform(0.1, 1, len(t["classes"])), "classes": t["classes"]} for t in truths]
    one_shot = evaluate_detections(predictions, truths, num_classes=3)
    evaluator = COCOEvaluator(num_classes=3)
    for start in range(0, 8, 3):
        as_tensors = [{k: torch.as_tensor(v) for k, v in p.items()} for p in predictions[start:start + 3]]
        evaluator.update(as_tensors, truths[start:start + 3])
    accumulated = evaluator.compute()
    assert accumulated.map50_95 == pytest.approx(one_shot.map50_95)
    assert accumulated.ap_per_class == pytest.approx(one_shot.ap_per_class)
    assert 0.0 < one_shot.map50_95 < 1.0
    evaluator.reset()
    assert evaluator.compute().map50_95 == 0.0


def test_dataset_category_ids_map_back_to_classes() -> None:
    truth = [{"boxes": [SQUARE, shifted(SQUARE, 300)], "classes": [0, 1]}]
    prediction = [{"boxes": [SQUARE, shifted(SQUARE, 320)], "scores": [0.9, 0.9], "classes": [0, 1]}]
    metrics = evaluate_detections(prediction, truth, num_classes=2, category_ids=[7, 3])  # unsorted on purpose
    assert metrics.ap_per_class == pytest.approx({0: 1.0, 1: 0.4})


def test_save_json_is_coco_results_that_pycocotools_scores_the_same(tmp_path) -> None:
    truths = random_truth(4, images=5)
    rng = np.random.default_rng(5)
    predictions = [{"boxes": t["boxes"] + rng.normal(0, 3, t["boxes"].shape),
                    "scores": rng.uniform(0.1, 1, len(t["classes"])), "classes": t["classes"]} for t in truths]
    image_ids = [101, 102, 103, 104, 105]
    path = tmp_path / "out" / "predictions.json"
    metrics = evaluate_detections(predictions, truths, 3, category_ids=[1, 2, 5], image_ids=image_ids, save_json=path)

    rows = json.loads(path.read_text())
    assert len(rows) == sum(len(t["classes"]) for t in truths)
    assert set(rows[0]) == {"image_id", "category_id", "bbox", "score"}
    x1, y1, x2, y2 = predictions[0]["boxes"][0]
    assert rows[0]["image_id"] == 101 and rows[0]["category_id"] == [1, 2, 5][predictions[0]["classes"][0]]
    assert rows[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-3)

    # the standard pycocotools flow on files gives the same mAP
    annotations = []
    for image_id, truth in zip(image_ids, truths):
        for (x1, y1, x2, y2), c in zip(truth["boxes"].tolist(), truth["classes"].tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": [1, 2, 5][c],
                                "iscrowd": 0, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps({"images": [{"id": i} for i in image_ids], "annotations": annotations,
                                   "categories": [{"id": i} for i in (1, 2, 5)]}))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        coco_eval = COCOeval(gt, gt.loadRes(str(path)), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    assert coco_eval.stats[0] == pytest.approx(metrics.map50_95, abs=1e-4)
    assert coco_eval.stats[1] == pytest.approx(metrics.map50, abs=1e-4)
    sizes = [metrics.map50_95_small, metrics.map50_95_medium, metrics.map50_95_large, metrics.average_recall,
             metrics.average_recall_small, metrics.average_recall_medium, metrics.average_recall_large]
    assert sizes == pytest.approx([*coco_eval.stats[3:6], *coco_eval.stats[8:12]], abs=1e-4)


def test_no_ground_truth_at_all_gives_zeros() -> None:
    metrics = evaluate_detections([{"boxes": [SQUARE], "scores": [0.9], "classes": [0]}],
                                  [{"boxes": [], "classes": []}], num_classes=1)
    assert metrics.map50_95 == 0.0 and metrics.ap_per_class == {}
    assert metrics.map50_95_small == metrics.average_recall == -1.0  # no size range has ground truth


def test_bad_inputs_raise_clear_errors() -> None:
    evaluator = COCOEvaluator(num_classes=2)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\)"):
        evaluator.update([{"boxes": [SQUARE], "scores": [0.9], "classes": [2]}], [{"boxes": [], "classes": []}])
    with pytest.raises(ValueError, match="1 boxes but 2 classes"):
        evaluator.update([{"boxes": [], "scores": [], "classes": []}], [{"boxes": [SQUARE], "classes": [0, 1]}])
    with pytest.raises(ValueError, match="predictions for"):
        evaluator.update([], [{"boxes": [], "classes": []}])
    evaluator.reset()
    evaluator.update([{"boxes": [], "scores": [], "classes": []}], [{"boxes": [], "classes": []}], image_ids=[7])
    with pytest.raises(ValueError, match="added twice"):
        evaluator.update([{"boxes": [], "scores": [], "classes": []}], [{"boxes": [], "classes": []}], image_ids=[7])
    with pytest.raises(ValueError, match="category ids"):
        COCOEvaluator(num_classes=2, category_ids=[1])


def test_size_metrics_of_a_small_a_medium_and_a_large_object() -> None:
    # areas 20² (small, below 32²), 50² (medium) and 200² (large, above 96²); all class 0 in one image
    truth = [{"boxes": [[0, 0, 20, 20], [100, 100, 150, 150], [300, 0, 500, 200]], "classes": [0, 0, 0]}]
    # the small one found exactly, the medium one shifted by 10% of its width (IoU 0.818), the large one missed
    found = [{"boxes": [[0, 0, 20, 20], [105, 100, 155, 150]], "scores": [0.9, 0.8], "classes": [0, 0]}]
    metrics = evaluate_detections(found, truth, num_classes=1)
    assert metrics.map50_95_small == pytest.approx(1.0)
    assert metrics.map50_95_medium == pytest.approx(0.7)  # matched at IoU 0.50 ... 0.80: 7 of the 10 thresholds
    assert metrics.map50_95_large == 0.0
    assert (metrics.average_recall_small, metrics.average_recall_medium, metrics.average_recall_large) == (
        pytest.approx(1.0), pytest.approx(0.7), 0.0)
    assert metrics.average_recall == pytest.approx((1.0 + 0.7 + 0.0) / 3)  # per threshold: 2 of 3 up to 0.80, then 1
    columns = metrics.results_dict()
    assert columns["metrics/mAP50-95_medium(B)"] == metrics.map50_95_medium
    assert columns["metrics/AR50-95(B)"] == metrics.average_recall


def test_a_size_range_without_ground_truth_is_minus_one() -> None:
    truth = [{"boxes": [[0, 0, 20, 20]], "classes": [0]}]
    metrics = evaluate_detections([{**truth[0], "scores": [0.9]}], truth, num_classes=1)
    assert (metrics.map50_95_small, metrics.average_recall_small) == (pytest.approx(1.0), pytest.approx(1.0))
    assert (metrics.map50_95_medium, metrics.map50_95_large) == (-1.0, -1.0)
    assert (metrics.average_recall_medium, metrics.average_recall_large) == (-1.0, -1.0)
    # a large prediction over an image without large objects is ignored in that range, not a false positive there
    extra = [{"boxes": [[0, 0, 20, 20], [200, 200, 400, 400]], "scores": [0.9, 0.95], "classes": [0, 0]}]
    assert evaluate_detections(extra, truth, num_classes=1).map50_95_large == -1.0
