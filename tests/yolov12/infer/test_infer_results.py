"""Results, Boxes and Probs: formats, conversions, plotting, saving, showing headless, summaries."""

from __future__ import annotations

import io
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


def test_to_df_round_trips_the_boxes(detection) -> None:
    frame = detection.to_df()
    assert list(frame.columns) == ["name", "class", "confidence", "x1", "y1", "x2", "y2"] and len(frame) == 3
    np.testing.assert_allclose(frame[["x1", "y1", "x2", "y2", "confidence", "class"]].to_numpy(np.float64),
                               detection.boxes.data.numpy(), rtol=1e-6)
    assert frame["name"].tolist() == ["person", "car", "person"]
    normalised = detection.to_df(normalize=True, decimals=2)
    np.testing.assert_allclose(normalised[["x1", "y1", "x2", "y2"]].to_numpy(np.float64),
                               detection.boxes.xyxyn.numpy(), atol=0.005 + 1e-9)  # rounded to 2 decimals
    empty = Results(detection.orig_img, "e.jpg", NAMES, boxes=Boxes(torch.zeros(0, 6), (200, 400)))
    assert empty.to_df().empty and list(empty.to_df().columns) == list(frame.columns)


def test_to_df_of_a_classification_lists_the_top5(classification) -> None:
    frame = classification.to_df()
    assert list(frame.columns) == ["name", "class", "confidence"]
    assert frame["name"].tolist() == ["dog", "car", "person"] and frame["class"].tolist() == [2, 1, 0]
    np.testing.assert_allclose(frame["confidence"], [0.6, 0.3, 0.1], rtol=1e-6)


def test_to_csv_returns_the_text_and_writes_the_file(tmp_path, detection, classification) -> None:
    import pandas as pd

    text = detection.to_csv()
    assert text.splitlines()[0] == "name,class,confidence,x1,y1,x2,y2" and len(text.splitlines()) == 4
    assert text.splitlines()[1] == "person,0,0.9,10.0,20.0,110.0,120.0"
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(text)), detection.to_df(), check_dtype=False)
    path = tmp_path / "tables" / "street.csv"
    assert detection.to_csv(path, normalize=True) == path.read_text()
    assert path.read_text().splitlines()[2] == "car,1,0.8,0.5,0.25,0.75,0.75"
    assert classification.to_csv().splitlines() == ["name,class,confidence", "dog,2,0.6", "car,1,0.3",
                                                    "person,0,0.1"]


def _parse_labels(path, skip: int = 0) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()[skip:]])


def test_save_txt_writes_yolo_labels_and_appends(tmp_path, detection) -> None:
    path = detection.save_txt(tmp_path / "labels" / "street.txt")
    labels = _parse_labels(path)
    assert labels.shape == (3, 5)
    np.testing.assert_array_equal(labels[:, 0], detection.boxes.cls.numpy())
    np.testing.assert_allclose(labels[:, 1:], detection.boxes.xywhn.numpy(), rtol=1e-5)
    detection.save_txt(path, save_conf=True)  # appends, as Ultralytics does
    assert len(path.read_text().splitlines()) == 6
    labels = _parse_labels(path, skip=3)
    assert labels.shape == (3, 6)
    np.testing.assert_allclose(labels[:, 5], detection.boxes.conf.numpy(), rtol=1e-5)


def test_save_txt_without_detections_writes_nothing(tmp_path, detection) -> None:
    empty = Results(detection.orig_img, "e.jpg", NAMES, boxes=Boxes(torch.zeros(0, 6), (200, 400)))
    assert not empty.save_txt(tmp_path / "e.txt").exists()


def test_save_txt_of_a_classification_writes_conf_and_name(tmp_path, classification) -> None:
    path = classification.save_txt(tmp_path / "pet.txt", save_conf=True)
    assert path.read_text().splitlines() == ["0.60 dog", "0.30 car", "0.10 person"]


def test_save_crop_writes_one_jpeg_per_box_and_never_overwrites(tmp_path, detection) -> None:
    detection.orig_img[:] = np.arange(400, dtype=np.uint8)[None, :, None] // 2  # distinct columns: crops differ
    paths = detection.save_crop(tmp_path / "crops", file_name="frame.png")
    assert [p.relative_to(tmp_path / "crops").as_posix() for p in paths] == [
        "person/frame.jpg", "car/frame.jpg", "person/frame2.jpg"]
    shapes = [cv2.imread(str(p)).shape for p in paths]
    assert shapes == [(100, 100, 3), (100, 100, 3), (40, 100, 3)]
    again = detection.save_crop(tmp_path / "crops", file_name="frame")
    assert [p.name for p in again] == ["frame3.jpg", "frame2.jpg", "frame4.jpg"]
    assert len(list((tmp_path / "crops").rglob("*.jpg"))) == 6
    default = detection.save_crop(tmp_path / "default")
    assert default[0] == tmp_path / "default" / "person" / "street.jpg"


def test_save_crop_clips_to_the_image_and_keeps_a_pixel(tmp_path, detection) -> None:
    data = torch.tensor([[-20.0, -5.0, 30.5, 10.2, 0.9, 2.0], [399.5, 199.5, 399.5, 199.5, 0.5, 2.0]])
    result = Results(detection.orig_img, "edge.jpg", NAMES, boxes=Boxes(data, (200, 400)))
    shapes = [cv2.imread(str(p)).shape[:2] for p in result.save_crop(tmp_path)]
    assert shapes == [(11, 31), (1, 1)]


def test_save_crop_of_a_classification_saves_nothing(tmp_path, caplog, classification) -> None:
    with caplog.at_level(logging.WARNING):
        assert classification.save_crop(tmp_path) == []
    assert "no boxes" in caplog.text and not list(tmp_path.iterdir())
