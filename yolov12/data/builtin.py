"""The datasets that ``data=<name>`` names: built-in ones built offline, and well-known ones found under datasets_dir.

Built in (:data:`BUILTIN_DATASETS`): ``sample``, ``sample-large``, ``sample-photo``, ``sample-cls``, generated on
first use.

Named (:data:`NAMED_DATASETS`): ``coco``, ``coco128``, ``coco8``, ``imagenet``, ``imagenette``, ``VOC``, ``VisDrone``
(any letter case; ``coco.yaml`` too when no such file exists here). They are never downloaded: each is looked up as
a folder of the same name under the ``datasets_dir`` setting (``yolov12 settings datasets_dir=/data`` or
``$YOLOV12_DATASETS``), in which a ``data.yaml`` wins, else the layout the table describes.

Example:
    >>> named_dataset("COCO.yaml").name, named_dataset("voc").name, named_dataset("configs/coco.yaml")
    ('coco', 'VOC', None)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolov12.data import sample_dataset
from yolov12.data.coco import COCO80_NAMES
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.visdrone import VISDRONE_NAMES

BUILTIN_DATASETS: dict[str, Callable[[], Path]] = {
    "sample": sample_dataset.ensure_sample_detection,
    "sample-large": sample_dataset.ensure_sample_large_detection,
    "sample-photo": sample_dataset.ensure_sample_photo_detection,
    "sample-cls": sample_dataset.ensure_sample_classification,
}

VOC_NAMES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

DatasetLocation = Path | Mapping[str, Any]
"""What a resolver finds: a data.yaml or dataset folder, or a data.yaml mapping whose ``path`` is the folder."""


def build(name: str) -> Path:
    """Build (once) and return the local path of built-in dataset ``name`` (a data.yaml or a class-folder root)."""
    if name not in BUILTIN_DATASETS:
        raise unknown_dataset_error(name)
    return BUILTIN_DATASETS[name]()


def labels_folder(images: str) -> str:
    """The label folder of an image folder: ``images/val2017`` -> ``labels/val2017``, ``a/images`` -> ``a/labels``."""
    parts = images.split("/")
    index = len(parts) - 1 - parts[::-1].index("images")
    return "/".join([*parts[:index], "labels", *parts[index + 1:]])


def yolo_layout(names: tuple[str, ...], **splits: str | tuple[str, ...]) -> Callable[[Path], DatasetLocation | None]:
    """Resolver of a YOLO layout: each split lists image folders relative to the dataset folder, with ``labels/``
    beside ``images/`` (``test`` may be unlabelled); the layout is there when some train and val folders exist
    (missing ones are left out)."""

    def resolve(folder: Path) -> DatasetLocation | None:
        found = {}
        for split, entries in splits.items():
            entries = (entries,) if isinstance(entries, str) else entries
            existing = [entry for entry in entries if (folder / entry).is_dir()
                        and (split == "test" or (folder / labels_folder(entry)).is_dir())]
            if existing:
                found[split] = existing if len(existing) > 1 else existing[0]
        if not {"train", "val"} <= set(found):
            return None
        return {"path": str(folder), **found, "names": list(names)}

    return resolve


def class_folder_layout(folder: Path) -> DatasetLocation | None:
    """ImageNet layout: ``train/<class>/*.jpg`` and ``val/<class>/*.jpg`` (the folder itself is the dataset)."""
    train = folder / "train"
    if train.is_dir() and (folder / "val").is_dir() and any(d.is_dir() for d in train.iterdir()):
        return folder
    return None


def coco_json_layout(folder: Path) -> DatasetLocation | None:
    """COCO's own layout: ``annotations/instances_{train,val}2017.json`` with ``images/<split>2017/`` or
    ``<split>2017/``."""
    splits = {}
    for split in ("train", "val"):
        annotations = folder / "annotations" / f"instances_{split}2017.json"
        images = next((p for p in (folder / "images" / f"{split}2017", folder / f"{split}2017") if p.is_dir()), None)
        if annotations.is_file() and images is not None:
            splits[split] = {"images": str(images), "annotations": str(annotations)}
    return {"path": str(folder), "format": "coco", **splits} if len(splits) == 2 else None


def voc_devkit_layout(folder: Path) -> DatasetLocation | None:
    """Pascal VOC's devkit: ``[VOCdevkit/]VOC2012/`` (else ``VOC2007/``) with ``Annotations/``, ``JPEGImages/`` and
    ``ImageSets/Main/{train,val}.txt``."""
    for year in ("VOC2012", "VOC2007"):
        for devkit in (folder / "VOCdevkit" / year, folder / year):
            ids = devkit / "ImageSets" / "Main"
            if (devkit / "Annotations").is_dir() and (ids / "train.txt").is_file() and (ids / "val.txt").is_file():
                files = {"images": str(devkit / "JPEGImages"), "annotations": str(devkit / "Annotations")}
                splits = {split: {**files, "ids": str(ids / f"{split}.txt")} for split in ("train", "val")}
                return {"path": str(folder), "format": "voc", "names": list(VOC_NAMES), **splits}
    return None


def visdrone_layout(folder: Path) -> DatasetLocation | None:
    """VisDrone-DET's own layout: ``VisDrone2019-DET-{train,val}/`` with ``images/`` and ``annotations/``."""
    splits = {split: f"VisDrone2019-DET-{split}" for split in ("train", "val")}
    if all((folder / path / "annotations").is_dir() and (folder / path / "images").is_dir()
           for path in splits.values()):
        return {"path": str(folder), "format": "visdrone", **splits}
    return None


@dataclass(frozen=True)
class NamedDataset:
    """A well-known dataset that lives in ``datasets_dir/<name>/`` (never downloaded).

    Attributes:
        name: the folder name and the name users pass (matched in any letter case).
        layout: the layouts looked for, in words, for the error when none is found.
        resolvers: tried in order after ``data.yaml``; each returns a location or None when its layout is absent.
    """

    name: str
    layout: str
    resolvers: tuple[Callable[[Path], DatasetLocation | None], ...]

    def folder(self) -> Path:
        """``datasets_dir/<name>`` (the setting is read now)."""
        return sample_dataset.datasets_root() / self.name

    def locate(self) -> DatasetLocation:
        """The dataset's data.yaml, folder or data.yaml mapping.

        Raises:
            DatasetNotFoundError: the folder does not exist (one line: where, which layout, how to move it).
            DatasetError: the folder exists but holds none of the layouts.
        """
        folder = self.folder()
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"dataset {self.name!r} is not on this machine and is never downloaded: put it in {folder} "
                f"({self.layout}), or point datasets_dir at its parent folder with 'yolov12 settings "
                "datasets_dir=/path' or YOLOV12_DATASETS=/path")
        for candidate in (folder / "data.yaml", folder / f"{self.name}.yaml"):
            if candidate.is_file():
                return candidate
        for resolve in self.resolvers:
            found = resolve(folder)
            if found is not None:
                return found
        raise DatasetError(
            f"{folder} holds none of the layouts of dataset {self.name!r}: expected a data.yaml or {self.layout}")


_COCO_SPLITS = {"train": "images/train2017", "val": "images/val2017", "test": "images/test2017"}
NAMED_DATASETS: dict[str, NamedDataset] = {dataset.name: dataset for dataset in (
    NamedDataset("coco", "YOLO layout images/{train2017,val2017}/ + labels/{train2017,val2017}/; or "
                 "annotations/instances_{train,val}2017.json + images/{train,val}2017/",
                 (yolo_layout(COCO80_NAMES, **_COCO_SPLITS), coco_json_layout)),
    NamedDataset("coco128", "YOLO layout images/train2017/ + labels/train2017/ (used for train and val)",
                 (yolo_layout(COCO80_NAMES, train="images/train2017", val="images/train2017"),)),
    NamedDataset("coco8", "YOLO layout images/{train,val}/ + labels/{train,val}/",
                 (yolo_layout(COCO80_NAMES, train="images/train", val="images/val"),)),
    NamedDataset("imagenet", "ImageNet layout train/<class>/*.JPEG + val/<class>/*.JPEG", (class_folder_layout,)),
    NamedDataset("imagenette", "ImageNet layout train/<class>/*.JPEG + val/<class>/*.JPEG", (class_folder_layout,)),
    NamedDataset("VOC", "YOLO layout images/{train2012,train2007,val2012,val2007,test2007}/ + labels/...; or "
                 "VOCdevkit/VOC2012/ with Annotations/, JPEGImages/, ImageSets/Main/{train,val}.txt",
                 (yolo_layout(VOC_NAMES, train=("images/train2012", "images/train2007", "images/val2012",
                                                "images/val2007"), val="images/test2007"),
                  voc_devkit_layout)),
    NamedDataset("VisDrone", "VisDrone2019-DET-{train,val,test-dev}/ with images/ + labels/ (YOLO) or "
                 "images/ + annotations/ (VisDrone's own)",
                 (yolo_layout(VISDRONE_NAMES, train="VisDrone2019-DET-train/images",
                              val="VisDrone2019-DET-val/images", test="VisDrone2019-DET-test-dev/images"),
                  visdrone_layout)),
)}
_BY_LOWER_NAME = {name.lower(): dataset for name, dataset in NAMED_DATASETS.items()}
_YAML_SUFFIXES = (".yaml", ".yml")


def named_dataset(text: str) -> NamedDataset | None:
    """The named dataset ``text`` refers to (``coco``, ``ImageNet``, ``VOC.yaml``), else None.

    Only a bare name counts: ``coco.yaml`` does, ``configs/coco.yaml`` does not.
    """
    if "/" in text or "\\" in text:
        return None
    stem = text[: -len(Path(text).suffix)] if Path(text).suffix.lower() in _YAML_SUFFIXES else text
    return _BY_LOWER_NAME.get(stem.lower())


def is_dataset_name(text: str) -> bool:
    """Whether ``text`` names a built-in or a named dataset (for callers that also accept image sources)."""
    return text in BUILTIN_DATASETS or named_dataset(text) is not None


def unknown_dataset_error(name: str) -> DatasetNotFoundError:
    """The error for a dataset name that is neither a local path nor a built-in or named dataset."""
    known = [*BUILTIN_DATASETS, *NAMED_DATASETS]
    by_lower = {known_name.lower(): known_name for known_name in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    hint = f" Did you mean '{by_lower[close[0]]}'?" if close else ""
    return DatasetNotFoundError(
        f"dataset {name!r} is neither a local path nor a known dataset; pass a data.yaml, a dataset folder "
        f"(ImageNet-style train/<class>/*.jpg, val/<class>/*.jpg) or one of: {', '.join(known)}.{hint}"
    )
