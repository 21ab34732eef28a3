"""Named datasets (``coco``, ``imagenet``, ``VOC``, ...): found under datasets_dir in their usual layouts, never
downloaded; a missing one is one line saying where it is expected, in which layout, and how to move datasets_dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yolov12.data.builtin import NAMED_DATASETS, VOC_NAMES, named_dataset
from yolov12.data.coco import COCO80_NAMES
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.detection_dataset import build_datasets
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.visdrone import VISDRONE_NAMES
from yolov12.settings import save_settings


@pytest.fixture
def datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty datasets_dir (through the environment), an empty settings folder and an empty working folder."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("YOLOV12_DATASETS", str(root))
    monkeypatch.setenv("YOLOV12_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return root


def yolo_split(root: Path, image_writer, images: str, count: int = 2) -> None:
    """``count`` images under ``root/images`` (a path relative to root) with a one-box label file each."""
    for i in range(count):
        image = image_writer(root / images / f"{i}.jpg", seed=i)
        label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("0 0.5 0.5 0.2 0.2\n")


@pytest.mark.parametrize("name", list(NAMED_DATASETS))
def test_a_missing_dataset_is_one_line_with_place_layout_and_fix(name: str, datasets: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset_config(name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"dataset '{name}' is not on this machine and is never downloaded: put it in "
                              f"{datasets / name} ({NAMED_DATASETS[name].layout})")
    assert message.endswith("'yolov12 settings datasets_dir=/path' or YOLOV12_DATASETS=/path")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("coco", "coco"), ("COCO", "coco"), ("coco.yaml", "coco"), ("coco128.yaml", "coco128"), ("ImageNet", "imagenet"),
     ("ImageNet.yaml", "imagenet"), ("voc", "VOC"), ("VOC.yaml", "VOC"), ("visdrone.yml", "VisDrone"),
     ("coco8", "coco8"), ("imagenette", "imagenette"), ("configs/coco.yaml", None), ("coco.json", None),
     ("cocoa", None)],
)
def test_names_as_users_type_them(text: str, expected: str | None) -> None:
    found = named_dataset(text)
    assert (found.name if found else None) == expected


def test_unknown_names_list_every_known_dataset_and_the_closest(datasets: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset_config("imagenett")
    message = str(caught.value)
    assert message.startswith("dataset 'imagenett' is neither a local path nor a known dataset")
    assert "sample-cls, coco, coco128, coco8, imagenet, imagenette, VOC, VisDrone." in message
    assert message.endswith("Did you mean 'imagenette'?")
    with pytest.raises(DatasetNotFoundError, match="Did you mean 'VisDrone'"):
        load_dataset_config("visdron")


def test_coco_in_the_yolo_layout_with_the_80_names(datasets: Path, image_writer) -> None:
    yolo_split(datasets / "coco", image_writer, "images/train2017", 3)
    yolo_split(datasets / "coco", image_writer, "images/val2017", 2)
    config = load_dataset_config("coco")
    assert config.names == COCO80_NAMES and config.format == "yolo" and set(config.splits) == {"train", "val"}
    assert config.source == f"coco ({datasets / 'coco'})"
    assert [p.name for p in config.resolve_split("val")] == ["0.jpg", "1.jpg"]
    assert load_dataset_config("coco.yaml").splits == config.splits  # Ultralytics users type the yaml's name


def test_coco_in_its_own_json_layout(datasets: Path, image_writer) -> None:
    root = datasets / "coco"
    for split in ("train", "val"):
        image_writer(root / "images" / f"{split}2017" / "a.jpg", height=100, width=200)
        annotations = root / "annotations" / f"instances_{split}2017.json"
        annotations.parent.mkdir(parents=True, exist_ok=True)
        annotations.write_text(json.dumps({
            "images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 200}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [20, 10, 40, 50], "iscrowd": 0,
                             "area": 2000}],
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        }))
    config = load_dataset_config("coco")
    assert config.format == "coco" and config.names == ("person", "car")
    assert config.resolve_split("train") == [root / "images" / "train2017" / "a.jpg"]


def test_a_data_yaml_in_the_folder_wins(datasets: Path, image_writer) -> None:
    yolo_split(datasets / "coco8", image_writer, "images/train")
    yolo_split(datasets / "coco8", image_writer, "images/val")
    (datasets / "coco8" / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [only]\n")
    config = load_dataset_config("coco8")
    assert config.names == ("only",) and config.source == str(datasets / "coco8" / "data.yaml")


def test_a_local_file_wins_over_the_named_dataset(datasets: Path, image_writer) -> None:
    yolo_split(Path.cwd(), image_writer, "images/train")
    Path("coco.yaml").write_text("train: images/train\nval: images/train\nnames: [mine]\n")
    assert load_dataset_config("coco.yaml").names == ("mine",)


def test_coco128_uses_train2017_for_train_and_val(datasets: Path, image_writer) -> None:
    yolo_split(datasets / "coco128", image_writer, "images/train2017", 4)
    config = load_dataset_config("coco128")
    assert len(config.resolve_split("train")) == len(config.resolve_split("val")) == 4


def test_imagenet_folders_classify_and_build(datasets: Path, image_writer) -> None:
    for split, count in (("train", 2), ("val", 1)):
        for name in ("n01443537", "n01440764"):
            for i in range(count):
                image_writer(datasets / "imagenet" / split / name / f"{name}_{i}.JPEG", seed=i)
    config = load_dataset_config("ImageNet")
    assert config.task == "classify" and config.names == ("n01440764", "n01443537")
    dataset, names = build_datasets("imagenet", "val")
    assert len(dataset) == 2 and names == config.names and [dataset[i].label for i in range(2)] == [0, 1]


def test_voc_converted_to_the_yolo_layout_joins_2007_and_2012(datasets: Path, image_writer) -> None:
    for folder in ("train2012", "val2007", "test2007"):
        yolo_split(datasets / "VOC", image_writer, f"images/{folder}")
    config = load_dataset_config("VOC")
    assert config.names == VOC_NAMES
    assert [p.parent.name for p in config.resolve_split("train")] == ["train2012"] * 2 + ["val2007"] * 2
    assert {p.parent.name for p in config.resolve_split("val")} == {"test2007"}


def test_voc_devkit_is_read_with_the_voc_reader(datasets: Path, image_writer) -> None:
    devkit = datasets / "VOC" / "VOCdevkit" / "VOC2012"
    for stem in ("0001", "0002"):
        image_writer(devkit / "JPEGImages" / f"{stem}.jpg", height=100, width=200)
        (devkit / "Annotations").mkdir(parents=True, exist_ok=True)
        (devkit / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>200</width><height>100</height></size>"
            "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax><ymax>50</ymax></bndbox>"
            "</object></annotation>")
    (devkit / "ImageSets" / "Main").mkdir(parents=True)
    (devkit / "ImageSets" / "Main" / "train.txt").write_text("0001\n")
    (devkit / "ImageSets" / "Main" / "val.txt").write_text("0002\n")
    config = load_dataset_config("voc")
    assert config.format == "voc" and config.names == VOC_NAMES
    assert [p.name for p in config.resolve_split("val")] == ["0002.jpg"]


def test_visdrone_in_its_own_and_in_the_yolo_layout(datasets: Path, image_writer) -> None:
    root = datasets / "VisDrone"
    for split in ("train", "val"):
        image_writer(root / f"VisDrone2019-DET-{split}" / "images" / "a.jpg", height=100, width=200)
        (root / f"VisDrone2019-DET-{split}" / "annotations").mkdir(parents=True)
        (root / f"VisDrone2019-DET-{split}" / "annotations" / "a.txt").write_text("10,20,30,40,1,4,0,0\n")
    own = load_dataset_config("VisDrone")
    assert own.format == "visdrone" and own.names == VISDRONE_NAMES
    for split in ("train", "val"):  # after Ultralytics' conversion: labels/ beside images/
        (root / f"VisDrone2019-DET-{split}" / "labels").mkdir()
        (root / f"VisDrone2019-DET-{split}" / "labels" / "a.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    converted = load_dataset_config("VisDrone")
    assert converted.format == "yolo" and converted.names == VISDRONE_NAMES
    assert set(converted.splits) == {"train", "val"}


def test_a_folder_without_a_known_layout_names_what_it_expected(datasets: Path) -> None:
    (datasets / "imagenet" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError) as caught:
        load_dataset_config("imagenet")
    assert str(caught.value) == (f"{datasets / 'imagenet'} holds none of the layouts of dataset 'imagenet': expected "
                                 f"a data.yaml or {NAMED_DATASETS['imagenet'].layout}")


def test_datasets_dir_from_the_settings_file(datasets: Path, monkeypatch, image_writer, tmp_path: Path) -> None:
    monkeypatch.delenv("YOLOV12_DATASETS")
    save_settings({"datasets_dir": str(tmp_path / "from-settings")})
    for split in ("train", "val"):
        image_writer(tmp_path / "from-settings" / "imagenette" / split / "n02102040" / "a.JPEG")
    assert load_dataset_config("imagenette").root == tmp_path / "from-settings" / "imagenette"
