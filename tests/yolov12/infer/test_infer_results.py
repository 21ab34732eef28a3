"""Results, Boxes and Probs: formats, conversions, plotting, saving, showing headless, summaries."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from yolov12.infer.results import Boxes, Probs, Results

NAMES = {0: "person", 1: "car", 2: "dog"}


@pytest.fixture
def detection() -> Results:
    image = np.full((200, 400, 3), 90, np.uint8)
    data = torch.tensor([
        [10.0, 20.0, 110.0, 120.0, 0.9, 0.0],
        [200.0, 50.0, 300.0, 150.0, 0.8, 1.0],
        [50.0, 0.0, 150.0, 40.0, 0.4, 0.0],
    ])
    return Results(orig_img=image, path="street.jpg", names=NAMES, boxes=Boxes(data, image.shape[:2]))


@pytest.fixture
def classification() -> Results:
    image = np.full((64, 64, 3), 30, np.uint8)
    return Results(orig_img=image, path="pet.jpg", names=NAMES, probs=Probs(torch.tensor([0.1, 0.3, 0.6])))


def test_box_formats(detection) -> None:
    boxes = detection.boxes
    assert len(boxes) == len(detection) == 3
    torch.testing.assert_close(boxes.xywh[0], torch.tensor([60.0, 70.0, 100.0, 100.0]))
    torch.testing.assert_close(boxes.xyxyn[1], torch.tensor([0.5, 0.25, 0.75, 0.75]))
    torch.testing.assert_close(boxes.xywhn[0], torch.tensor([0.15, 0.35, 0.25, 0.5]))
    assert boxes.conf.tolist() == pytest.approx([0.9, 0.8, 0.4]) and boxes.cls.tolist() == [0.0, 1.0, 0.0]
    assert boxes.data.shape == (3, 6) and boxes.orig_shape == (200, 400)
    assert len(boxes[0]) == 1 and len(boxes[boxes.conf > 0.5]) == 2
    assert detection.boxes.xyxy.data_ptr() == boxes.data.data_ptr()  # a view, like Ultralytics


def test_numpy_and_cpu_copies(detection) -> None:
    as_numpy = detection.numpy()
    assert isinstance(as_numpy.boxes.data, np.ndarray) and isinstance(detection.boxes.data, torch.Tensor)
    np.testing.assert_allclose(as_numpy.boxes.xywhn, detection.boxes.xywhn.numpy(), rtol=1e-6)
    assert isinstance(detection.cpu().boxes.data, torch.Tensor)
    empty = Results(detection.orig_img, "e.jpg", NAMES, boxes=Boxes(torch.zeros(0, 6), (200, 400)))
    assert isinstance(empty.numpy().boxes.data, np.ndarray) and len(empty) == 0


def test_probs(classification) -> None:
    probs = classification.probs
    assert probs.top1 == 2 and probs.top5 == [2, 1, 0]
    assert float(probs.top1conf) == pytest.approx(0.6)
    torch.testing.assert_close(probs.top5conf, torch.tensor([0.6, 0.3, 0.1]))
    assert len(classification) == 3
    assert classification.numpy().probs.top5 == [2, 1, 0]


def test_plot_draws_a_copy(detection, classification) -> None:
    for result in (detection, classification):
        before = result.orig_img.copy()
        plotted = result.plot()
        assert plotted.shape == before.shape and plotted.dtype == np.uint8
        assert (result.orig_img == before).all() and (plotted != before).any()
    bare = detection.plot(labels=False, line_width=1)
    labelled = detection.plot()
    assert (bare != labelled).any()


def test_box_colours_follow_the_class(detection) -> None:
    plotted = detection.plot(labels=False, line_width=2)
    person_edge, car_edge = plotted[70, 10], plotted[100, 200]
    assert (person_edge != car_edge).any()
    assert (plotted[120, 80] == detection.plot(labels=False, line_width=2)[120, 80]).all()


def test_save_writes_a_readable_image(tmp_path, detection) -> None:
    path = detection.save(tmp_path / "out ü" / "annotated.png")
    image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    assert (image == detection.plot()).all()
    with pytest.raises(ValueError, match="cannot encode"):
        detection.save(tmp_path / "annotated.unknownformat")


def test_show_headless_warns_and_returns(monkeypatch, caplog, detection) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.WARNING):
        assert detection.show() is None
    assert "no display" in caplog.text


def test_show_without_gui_support_warns(monkeypatch, caplog, detection) -> None:
    monkeypatch.setenv("DISPLAY", ":99")

    def no_gui(*args):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ support")

    monkeypatch.setattr(cv2, "imshow", no_gui)
    with caplog.at_level(logging.WARNING):
        detection.show()
    assert "no GUI support" in caplog.text


def test_summary_and_json(detection, classification) -> None:
    rows = detection.summary()
    assert rows[0] == {
        "name": "person", "class": 0, "confidence": pytest.approx(0.9),
        "box": {"x1": 10.0, "y1": 20.0, "x2": 110.0, "y2": 120.0},
    }
    assert detection.summary(normalize=True)[1]["box"] == {"x1": 0.5, "y1": 0.25, "x2": 0.75, "y2": 0.75}
    assert json.loads(detection.to_json()) == json.loads(json.dumps(rows))
    assert [row["name"] for row in classification.summary()] == ["dog", "car", "person"]


def test_verbose_lines(detection, classification) -> None:
    assert detection.verbose() == "2 persons, 1 car"
    assert classification.verbose() == "dog 0.60, car 0.30, person 0.10"
    empty = Results(detection.orig_img, "e.jpg", NAMES, boxes=Boxes(torch.zeros(0, 6), (200, 400)))
    assert empty.verbose() == "(no detections)" and empty.summary() == []


def test_speed_defaults_and_repr(detection) -> None:
    assert set(detection.speed) == {"preprocess", "inference", "postprocess"}
    assert "street.jpg" in repr(detection) and "n=3" in repr(detection)


@pytest.mark.parametrize("bad", [torch.zeros(3, 5), torch.zeros(6)])
def test_boxes_reject_bad_shapes(bad) -> None:
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        Boxes(bad, (10, 10))
