"""Pascal VOC reader: devkit layout with ImageSets, 1-based inclusive boxes, difficult flagged, unknown names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.labels import load_labels

XML = """<annotation><filename>{name}.jpg</filename><size><width>200</width><height>100</height><depth>3</depth></size>
{objects}</annotation>"""
OBJECT = ("<object><name>{cls}</name><difficult>{difficult}</difficult>"
          "<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


def write_voc(root: Path, image_writer) -> None:
    objects = {
        "0001": [("dog", 0, 1, 1, 100, 50), ("cat", 1, 101, 51, 200, 100)],
        "0002": [("unicorn", 0, 10, 10, 20, 20), ("cat", 0, 11, 21, 30, 40)],
        "0003": [("dog", 0, 1, 1, 10, 10)],
    }
    for stem, items in objects.items():
        image_writer(root / "JPEGImages" / f"{stem}.jpg", height=100, width=200)
        body = "".join(OBJECT.format(cls=c, difficult=d, x1=a, y1=b, x2=x, y2=y) for c, d, a, b, x, y in items)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(XML.format(name=stem, objects=body))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0001\n0002\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("0003\n")


def test_voc_devkit_with_id_lists(tmp_path, image_writer) -> None:
    write_voc(tmp_path / "VOC2012", image_writer)
    (tmp_path / "data.yaml").write_text(
        "format: voc\npath: VOC2012\nnames: [cat, dog]\n"
        "train: {images: JPEGImages, annotations: Annotations, ids: ImageSets/Main/train.txt}\n"
        "val: {images: JPEGImages, annotations: Annotations, ids: ImageSets/Main/val.txt}\n"
    )
    config = load_dataset_config(tmp_path / "data.yaml")
    assert [p.name for p in config.resolve_split("train")] == ["0001.jpg", "0002.jpg"]
    records, report = load_labels(config, "train")
    assert report.unknown_class_names == 1 and report.difficult_flagged == 1 and report.boxes == 3
    first = records[0]
    np.testing.assert_array_equal(first.classes, [1, 0])
    np.testing.assert_array_equal(first.difficult, [False, True])
    np.testing.assert_allclose(first.boxes_xywhn[0], [0.25, 0.25, 0.5, 0.5], atol=1e-6)  # xmin=1..xmax=100 of 200
    np.testing.assert_allclose(first.boxes_xywhn[1], [0.75, 0.75, 0.5, 0.5], atol=1e-6)
    val, _ = load_labels(config, "val")
    assert len(val) == 1


def test_voc_plain_folder_and_names_from_xml(tmp_path, image_writer) -> None:
    write_voc(tmp_path / "VOC2012", image_writer)
    (tmp_path / "data.yaml").write_text("format: voc\npath: VOC2012\ntrain: .\n")
    config = load_dataset_config(tmp_path / "data.yaml")
    assert config.names == ("cat", "dog", "unicorn")
    assert len(config.resolve_split("train")) == 3


def test_broken_xml_is_counted(tmp_path, image_writer) -> None:
    write_voc(tmp_path / "VOC2012", image_writer)
    (tmp_path / "VOC2012" / "Annotations" / "0003.xml").write_text("<annotation><object>")
    (tmp_path / "data.yaml").write_text("format: voc\npath: VOC2012\nnames: [cat, dog]\ntrain: .\n")
    records, report = load_labels(load_dataset_config(tmp_path / "data.yaml"), "train")
    assert report.unreadable_label_files == 1 and len(records) == 3
