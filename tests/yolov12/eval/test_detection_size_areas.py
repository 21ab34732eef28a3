"""COCO size ranges on given per-box ``areas`` (original-image pixels) instead of the areas of the boxes as given."""

from __future__ import annotations

import pytest

from yolov12.eval import evaluate_detections

BOX = [0.0, 0.0, 10.0, 10.0]  # 100 px² where it is given: small


def test_given_areas_pick_the_size_range_and_leave_the_iou_metrics_alone() -> None:
    # 100 px² in the evaluated (resized) image; 2000 px² in the original one: 32² <= 2000 < 96², medium
    truth = [{"boxes": [BOX], "classes": [0], "areas": [2000.0]}]
    prediction = [{"boxes": [[0.0, 0.0, 10.0, 8.7]], "scores": [0.9], "classes": [0], "areas": [1740.0]}]
    metrics = evaluate_detections(prediction, truth, num_classes=1)
    assert metrics.map50_95_medium == pytest.approx(0.8) and metrics.average_recall_medium == pytest.approx(0.8)
    assert metrics.map50_95_small == -1.0 and metrics.average_recall_small == -1.0
    assert metrics.map50_95_large == -1.0
    as_given = evaluate_detections([{k: v for k, v in prediction[0].items() if k != "areas"}],
                                   [{k: v for k, v in truth[0].items() if k != "areas"}], num_classes=1)
    assert as_given.map50_95_small == pytest.approx(0.8) and as_given.map50_95_medium == -1.0
    assert (metrics.map50_95, metrics.map50) == (as_given.map50_95, as_given.map50)  # IoU 0.87: AP 1 at 0.5-0.85


def test_a_detection_outside_the_range_is_not_a_false_positive_of_that_range() -> None:
    # pycocotools ignores unmatched detections whose area lies outside the range: the 20000 px² (large) one does not
    # lower the medium AP, and it is judged on its given area, not on its 100 px² box
    truth = [{"boxes": [BOX], "classes": [0], "areas": [2000.0]}]
    predictions = [{"boxes": [BOX, [50.0, 50.0, 60.0, 60.0]], "scores": [0.5, 0.9], "classes": [0, 0],
                    "areas": [2000.0, 20000.0]}]
    metrics = evaluate_detections(predictions, truth, num_classes=1)
    assert metrics.map50_95_medium == pytest.approx(1.0)
    assert metrics.map50_95 == pytest.approx(0.5, abs=0.01)  # over all sizes it is a false positive ranked first


def test_areas_must_match_the_boxes() -> None:
    truth = [{"boxes": [BOX, BOX], "classes": [0, 0], "areas": [2000.0]}]
    with pytest.raises(ValueError, match=r"image 0: 2 boxes but 1 areas"):
        evaluate_detections([{"boxes": [], "scores": [], "classes": []}], truth, num_classes=1)
