"""VisDrone-DET: categories 1..10 -> 0..9, ignored regions (0) and others (11) dropped, converter writes YOLO."""

from __future__ import annotations

import numpy as np
import yaml

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.formats.visdrone import VISDRONE_NAMES, convert_visdrone, parse_annotation_text
from yolov12.data.labels import load_labels

ANNOTATION = (
    "10,20,30,40,1,4,0,0\n"  # car -> 3
    "0,0,50,50,0,0,0,0\n"  # ignored region
    "100,50,20,10,1,1,0,1,\n"  # pedestrian -> 0, trailing comma
    "5,5,5,5,1,11,0,0\n"  # others
    "1,2,3\n"  # malformed
)


def test_parse_rows() -> None:
    rows = parse_annotation_text(ANNOTATION)
    np.testing.assert_array_equal(rows.classes, [3, 0])
    np.testing.assert_array_equal(rows.boxes_xyxy, [[10, 20, 40, 60], [100, 50, 120, 60]])
    assert rows.counts == {"ignored_regions_dropped": 1, "others_dropped": 1, "malformed_rows": 1}
    assert VISDRONE_NAMES[3] == "car" and len(VISDRONE_NAMES) == 10


def _write_split(folder, image_writer) -> None:
    image_writer(folder / "images" / "0000001_00000_d_0000001.jpg", height=100, width=200)
    (folder / "annotations").mkdir(parents=True)
    (folder / "annotations" / "0000001_00000_d_0000001.txt").write_text(ANNOTATION)


def test_convert_visdrone(tmp_path, image_writer) -> None:
    _write_split(tmp_path / "VisDrone2019-DET-val", image_writer)
    report = convert_visdrone(tmp_path, tmp_path / "out")
    assert report.images == 1 and report.boxes == 2 and report.counts["ignored_regions_dropped"] == 1
    label = (tmp_path / "out" / "labels" / "val" / "0000001_00000_d_0000001.txt").read_text().split("\n")
    assert label[0] == "3 0.125000 0.400000 0.150000 0.400000"
    assert (tmp_path / "out" / "images" / "val" / "0000001_00000_d_0000001.jpg").is_symlink()
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert data["val"] == "images/val" and data["names"][9] == "motor"
    config = load_dataset_config(tmp_path / "out" / "data.yaml")
    records, report = load_labels(config, "val")
    assert report.boxes == 2 and config.names == VISDRONE_NAMES


def test_visdrone_format_reads_originals(tmp_path, image_writer) -> None:
    _write_split(tmp_path / "VisDrone2019-DET-train", image_writer)
    (tmp_path / "data.yaml").write_text("format: visdrone\ntrain: VisDrone2019-DET-train\n")
    config = load_dataset_config(tmp_path / "data.yaml")
    records, report = load_labels(config, "train")
    assert config.names == VISDRONE_NAMES
    assert report.ignored_regions_dropped == 1 and report.others_dropped == 1 and report.malformed_rows == 1
    np.testing.assert_allclose(records[0].boxes_xywhn[1], [0.55, 0.55, 0.1, 0.1], atol=1e-6)
