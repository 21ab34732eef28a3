"""data= resolution: data.yaml keys, split forms, names, built-ins, folders and the errors users see."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from yolov12.data.dataset_config import DatasetConfig, load_dataset_config
from yolov12.data.errors import DatasetError, DatasetNotFoundError


def _images(root: Path, image_writer, split: str, stems: list[str]) -> None:
    for i, stem in enumerate(stems):
        image_writer(root / "images" / split / f"{stem}.jpg", seed=i)


def test_folder_splits_and_names_list(tmp_path, image_writer) -> None:
    _images(tmp_path, image_writer, "train", ["b", "a"])
    _images(tmp_path, image_writer, "val", ["c"])
    (tmp_path / "images" / "train" / "notes.txt").write_text("not an image")
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\nnc: 2\n")
    config = load_dataset_config(data)
    assert isinstance(config, DatasetConfig) and config.names == ("cat", "dog") and config.num_classes == 2
    assert [p.name for p in config.resolve_split("train")] == ["a.jpg", "b.jpg"]
    assert [p.name for p in config.resolve_split("val")] == ["c.jpg"]
    assert config.format == "yolo" and config.task == "detect" and config.root == tmp_path.resolve()


def test_names_dict_and_txt_lists_and_lists_of_entries(tmp_path, image_writer) -> None:
    _images(tmp_path, image_writer, "train", ["a", "b"])
    _images(tmp_path, image_writer, "extra", ["x"])
    (tmp_path / "train.txt").write_text("./images/train/b.jpg\nimages/train/a.jpg\n\n")
    data = tmp_path / "data.yaml"
    data.write_text(
        f"path: {tmp_path}\ntrain: [train.txt, images/extra]\nval: train.txt\nnames: {{0: cat, 1: dog, 2: cow}}\n"
    )
    config = load_dataset_config(data)
    assert config.names == ("cat", "dog", "cow")
    assert [p.name for p in config.resolve_split("train")] == ["b.jpg", "a.jpg", "x.jpg"]


def test_relative_path_resolves_beside_the_yaml(tmp_path, image_writer, monkeypatch) -> None:
    _images(tmp_path / "sets" / "tiny", image_writer, "train", ["a"])
    (tmp_path / "sets" / "tiny.yaml").write_text("path: tiny\ntrain: images/train\nnames: [x]\n")
    monkeypatch.chdir(tmp_path)
    assert load_dataset_config("sets/tiny.yaml").root == (tmp_path / "sets" / "tiny").resolve()


def test_download_key_is_ignored_with_a_log_line(tmp_path, image_writer, caplog) -> None:
    _images(tmp_path, image_writer, "train", ["a"])
    data = tmp_path / "data.yaml"
    data.write_text("train: images/train\nnames: [x]\ndownload: https://example.invalid/set.zip\n")
    with caplog.at_level(logging.INFO, logger="yolov12.data.dataset_config"):
        load_dataset_config(data)
    assert any("'download' is ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("names: [a, b]\nnc: 3", "nc=3 but names lists 2 classes"),
        ("names: {0: a, 2: b}", "without gaps"),
        ("names: 7", "must be a list"),
        ("", "has no 'names'"),
    ],
)
def test_bad_names(tmp_path, image_writer, names, message) -> None:
    _images(tmp_path, image_writer, "train", ["a"])
    (tmp_path / "data.yaml").write_text(f"train: images/train\n{names}\n")
    with pytest.raises(DatasetError, match=message):
        load_dataset_config(tmp_path / "data.yaml")


def test_nc_without_names(tmp_path, image_writer) -> None:
    _images(tmp_path, image_writer, "train", ["a"])
    (tmp_path / "data.yaml").write_text("train: images/train\nnc: 2\n")
    assert load_dataset_config(tmp_path / "data.yaml").names == ("class_0", "class_1")


def test_missing_split_and_missing_entry(tmp_path, image_writer) -> None:
    _images(tmp_path, image_writer, "train", ["a"])
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: [x]\n")
    config = load_dataset_config(tmp_path / "data.yaml")
    with pytest.raises(DatasetNotFoundError, match="split 'test' is not defined .*defined splits: train"):
        config.resolve_split("test")
    (tmp_path / "bad.yaml").write_text("train: images/nope\nnames: [x]\n")
    with pytest.raises(DatasetNotFoundError, match="images/nope"):
        load_dataset_config(tmp_path / "bad.yaml")


def test_unknown_format_suggests_a_close_one(tmp_path) -> None:
    (tmp_path / "data.yaml").write_text("format: cocoo\ntrain: x\nnames: [a]\n")
    with pytest.raises(DatasetError, match="did you mean 'coco'"):
        load_dataset_config(tmp_path / "data.yaml")


@pytest.mark.parametrize("name", ["imagenet", "coco"])
def test_named_datasets_are_not_downloaded(name, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLOV12_DATASETS", str(tmp_path / "datasets"))
    expected = (
        f"dataset '{name}' is not on this machine and is never downloaded: put it in {tmp_path / 'datasets' / name} ("
    )
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset_config(name)
    assert str(caught.value).startswith(expected)


def test_missing_yaml_file(tmp_path) -> None:
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_dataset_config(tmp_path / "coco8.yaml")


def test_classification_folder(tmp_path, image_writer) -> None:
    for split in ("train", "val"):
        for cls in ("zebra", "ant"):
            image_writer(tmp_path / split / cls / "1.jpg")
    config = load_dataset_config(tmp_path)
    assert config.task == "classify" and config.names == ("ant", "zebra")
    assert [p.parent.name for p in config.resolve_split("val")] == ["ant", "zebra"]


def test_folder_with_data_yaml_and_mapping(tmp_path, image_writer) -> None:
    _images(tmp_path, image_writer, "train", ["a"])
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: [x]\n")
    assert load_dataset_config(tmp_path).source == str(tmp_path / "data.yaml")
    config = load_dataset_config({"path": str(tmp_path), "train": "images/train", "names": ["x"]})
    assert load_dataset_config(config) is config
    with pytest.raises(DatasetError, match="neither a data.yaml nor an ImageNet-style"):
        load_dataset_config(tmp_path / "images")


def test_builtin_sample_names(sample_root) -> None:
    config = load_dataset_config("sample")
    assert config.names == tuple(str(d) for d in range(10)) and len(config.resolve_split("val")) == 32
    assert Path(config.root).parent == sample_root
    classification = load_dataset_config("sample-cls")
    assert classification.task == "classify" and classification.names == config.names
