"""``data=`` -> a typed :class:`DatasetConfig`: Ultralytics-style data.yaml, COCO JSON, VOC, folders, built-ins, S3.

Accepted ``data`` values:

- a ``data.yaml`` (local or ``s3://``) with ``path``, ``train``, ``val``, ``test``, ``names`` (list or
  ``{id: name}``), optional ``nc`` (checked against ``names``) and ``format`` (``yolo`` by default; ``coco``,
  ``voc``, ``visdrone``; see :data:`yolov12.data.formats.FORMATS`). ``download`` is ignored (logged): nothing is
  downloaded at run time.
- a COCO instances JSON (used for both train and val, logged);
- a folder: with a ``data.yaml`` inside, or ImageNet-style ``train/<class>/*.jpg`` + ``val/<class>/*.jpg``;
- the name of a built-in dataset (``sample``, ``sample-cls``), built on first use;
- the name of a well-known dataset (``coco``, ``coco128``, ``coco8``, ``imagenet``, ``imagenette``, ``VOC``,
  ``VisDrone``; also ``coco.yaml`` when no such file is here), found in ``<datasets_dir>/<name>/`` and never
  downloaded (see :data:`yolov12.data.builtin.NAMED_DATASETS`);
- a mapping (an already parsed data.yaml) or a :class:`DatasetConfig`.

A relative ``path`` is resolved against the yaml's folder when that exists there, else against the working directory
(as Ultralytics does); split entries are resolved against ``path``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from yolov12.data import builtin
from yolov12.data.classification_dataset import list_class_folder
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats import SplitSource, get_format
from yolov12.data.images import is_image_file

logger = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
_KNOWN_KEYS = {"path", "train", "val", "test", "names", "nc", "format", "download", "yaml_file"}


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset resolved to local paths.

    Attributes:
        root: local dataset root (``path`` of the yaml).
        names: class names, index = class id.
        splits: split name -> where its files are.
        format: reader name (``yolo``, ``coco``, ``voc``, ``visdrone``) or ``folder`` for classification.
        task: ``detect`` or ``classify``.
        source: what ``data`` was, for messages and lineage.

    Example:
        >>> config = load_dataset_config("sample")  # doctest: +SKIP
        >>> len(config.resolve_split("train")), config.names[:3]  # doctest: +SKIP
        (96, ('0', '1', '2'))
    """

    root: Path
    names: tuple[str, ...]
    splits: Mapping[str, SplitSource] = field(default_factory=dict)
    format: str = "yolo"
    task: Literal["detect", "classify"] = "detect"
    source: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.names)

    def split(self, name: str) -> SplitSource:
        """Where split ``name`` is; raises :class:`DatasetNotFoundError` naming the defined splits."""
        if name not in self.splits:
            defined = ", ".join(self.splits) or "none"
            raise DatasetNotFoundError(f"split {name!r} is not defined by {self.source}; defined splits: {defined}")
        return self.splits[name]

    def resolve_split(self, name: str) -> list[Path]:
        """Image files of split ``name`` in a stable order."""
        source = self.split(name)
        if self.task == "classify":
            return [Path(r.path) for r in list_class_folder(source.entries[0], self.names)]
        return get_format(source.format).list_images(source)


def load_dataset_config(data: Any) -> DatasetConfig:
    """Resolve ``data`` (see the module docstring) to a :class:`DatasetConfig`.

    Raises:
        DatasetNotFoundError: the file, folder, split or dataset name does not exist here.
        DatasetError: the description is invalid (bad names, nc mismatch, unknown format).
    """
    if isinstance(data, DatasetConfig):
        return data
    if isinstance(data, Mapping):
        return config_from_mapping(data, Path.cwd(), source="<mapping>")
    text = os.fspath(data)
    if _is_s3(text):
        return _from_s3(text)
    path = Path(text).expanduser()
    if path.is_file():
        return _from_file(path)
    if path.is_dir():
        return _from_directory(path)
    if text in builtin.BUILTIN_DATASETS:
        return load_dataset_config(builtin.build(text))
    named = builtin.named_dataset(text)
    if named is not None:
        return _from_named(named)
    if path.suffix or os.sep in text or "/" in text:
        raise DatasetNotFoundError(f"data {text!r} not found (looked at {path.resolve()}); pass an existing data.yaml")
    raise builtin.unknown_dataset_error(text)


def _from_named(named: builtin.NamedDataset) -> DatasetConfig:
    """A named dataset (``coco``, ``imagenet``, ...) found under the ``datasets_dir`` setting."""
    location = named.locate()
    if isinstance(location, Path):
        return load_dataset_config(location)
    folder = Path(location["path"])
    return config_from_mapping(location, folder, source=f"{named.name} ({folder})")


def _from_file(path: Path) -> DatasetConfig:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return config_from_mapping(_read_yaml(path), path.parent, source=str(path))
    if suffix == ".json":
        return _from_coco_json(path)
    raise DatasetError(f"data {path} is a {suffix or 'suffix-less'} file; pass a data.yaml, a COCO .json or a folder")


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DatasetError(f"cannot parse {path}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{path} must hold a mapping with path/train/val/names, got {type(raw).__name__}")
    return raw


def config_from_mapping(raw: Mapping[str, Any], base: Path | str, source: str) -> DatasetConfig:
    """Build from a parsed data.yaml; ``base`` is the yaml's folder (local path or ``s3://`` prefix)."""
    for key in sorted(set(raw) - _KNOWN_KEYS):
        logger.info("%s: key %r is not used by the detection data layer; ignored", source, key)
    if raw.get("download"):
        logger.info("%s: 'download' is ignored; datasets are never downloaded at run time", source)
    fmt = get_format(raw.get("format", "yolo"))
    root = _resolve_root(raw.get("path"), base, source)
    resolve = _Resolver(root)
    splits = {name: fmt.parse_split(raw[name], resolve) for name in SPLIT_NAMES if raw.get(name)}
    if not splits:
        raise DatasetError(f"{source} defines no split; add at least train: and val:")
    names = parse_names(raw.get("names"), raw.get("nc"), source)
    if names is None and fmt.infer_names is not None:
        names = tuple(fmt.infer_names(next(iter(splits.values()))))
        logger.info("%s: %d class names taken from the %s annotations", source, len(names), fmt.name)
    if not names:
        raise DatasetError(f"{source} has no 'names'; add names: [class0, class1, ...] or nc:")
    return DatasetConfig(root=root, names=names, splits=splits, format=fmt.name, source=source)


def parse_names(names: Any, nc: Any, source: str) -> tuple[str, ...] | None:
    """``names`` as a list or ``{id: name}`` dict (ids 0..n-1) -> tuple; ``nc`` must agree when both are given."""
    if names is None:
        if nc is None:
            return None
        logger.info("%s: no names; using class_0..class_%d", source, int(nc) - 1)
        return tuple(f"class_{i}" for i in range(int(nc)))
    if isinstance(names, Mapping):
        try:
            by_id = {int(key): str(value) for key, value in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: names keys must be integer class ids, got {list(names)}") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetError(f"{source}: names ids must be 0..{len(by_id) - 1} without gaps, got {sorted(by_id)}")
        result = tuple(by_id[i] for i in range(len(by_id)))
    elif isinstance(names, (list, tuple)):
        result = tuple(str(name) for name in names)
    else:
        raise DatasetError(f"{source}: names must be a list or a {{id: name}} mapping, got {names!r}")
    if nc is not None and int(nc) != len(result):
        raise DatasetError(f"{source}: nc={nc} but names lists {len(result)} classes; fix one of them")
    return result


def _is_s3(value: Any) -> bool:
    """``s3://`` check without importing boto3 (the remote module is imported only when S3 is really used)."""
    return str(value).startswith("s3://")


def _resolve_root(path_value: Any, base: Path | str, source: str) -> Path:
    if path_value is None or str(path_value) in ("", "."):
        target: Path | str = base
    elif _is_s3(path_value) or Path(str(path_value)).expanduser().is_absolute():
        target = str(path_value) if _is_s3(path_value) else Path(str(path_value)).expanduser()
    elif isinstance(base, str):  # yaml in S3: relative to its prefix
        target = f"{base.rstrip('/')}/{path_value}"
    else:
        beside_yaml = base / str(path_value)
        target = beside_yaml if beside_yaml.exists() else Path.cwd() / str(path_value)
    if isinstance(target, str):
        from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

        return remote.sync_prefix(target).local
    if not target.exists():
        raise DatasetNotFoundError(f"{source}: dataset path {path_value!r} -> {target} does not exist")
    return target.resolve()


class _Resolver:
    """Resolves split entries against the local root; ``s3://`` entries are mirrored first."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, value: str) -> Path:
        if _is_s3(value):
            from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

            head, sep, _ = value.rpartition("/images/")
            if sep:  # mirror the dataset root so that labels/ comes along with images/
                remote.sync_prefix(head)
                return remote.local_path(value)
            return remote.materialize(value)
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path).resolve()


def _from_s3(uri: str) -> DatasetConfig:
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    if uri.lower().endswith((".yaml", ".yml")):
        local = remote.fetch_object(uri)
        base = uri.rsplit("/", 1)[0]
        return config_from_mapping(_read_yaml(local), base, source=uri)
    local = remote.materialize(uri)
    return _from_file(local) if local.is_file() else _from_directory(local)


def _from_directory(folder: Path) -> DatasetConfig:
    for name in ("data.yaml", "data.yml"):
        if (folder / name).is_file():
            return _from_file(folder / name)
    train = folder / "train"
    if train.is_dir() and _class_folders(train):
        return _classification_config(folder)
    raise DatasetError(
        f"folder {folder} holds neither a data.yaml nor an ImageNet-style layout (train/<class>/*.jpg, "
        "val/<class>/*.jpg); add a data.yaml or pass its path"
    )


def _class_folders(split_dir: Path) -> list[str]:
    """Sorted names of sub-folders that hold at least one image (directly or deeper)."""
    return sorted(
        d.name for d in split_dir.iterdir() if d.is_dir() and any(is_image_file(p) for p in d.rglob("*"))
    )


def _classification_config(folder: Path) -> DatasetConfig:
    names = tuple(_class_folders(folder / "train"))
    splits = {
        split: SplitSource(format="folder", entries=(folder / directory,), root=folder)
        for split, directory in (("train", "train"), ("val", "val"), ("test", "test"))
        if (folder / directory).is_dir()
    }
    if "val" not in splits and (folder / "valid").is_dir():
        splits["val"] = SplitSource(format="folder", entries=(folder / "valid",), root=folder)
    return DatasetConfig(root=folder.resolve(), names=names, splits=splits, format="folder", task="classify",
                         source=str(folder))


def _from_coco_json(path: Path) -> DatasetConfig:
    try:
        first = json.loads(path.read_text(encoding="utf-8")).get("images", [{}])
    except (ValueError, AttributeError) as exc:
        raise DatasetError(f"{path} is not a COCO instances JSON: {exc}") from None
    first_name = first[0].get("file_name", "") if first else ""
    images = _guess_coco_images(path, first_name)
    logger.warning("data=%s names one COCO split; it is used for both train and val", path)
    raw = {"format": "coco", "path": str(path.parent), "train": {"images": str(images), "annotations": str(path)}}
    raw["val"] = raw["train"]
    return config_from_mapping(raw, path.parent, source=str(path))


def _guess_coco_images(path: Path, first_name: str) -> Path:
    """The image folder of ``annotations/instances_val2017.json``: ``images/val2017``, ``val2017``, ... ."""
    split = path.stem.split("_", 1)[-1]
    candidates = [path.parent.parent / "images" / split, path.parent.parent / split, path.parent / "images",
                  path.parent / split, path.parent, path.parent.parent]
    for folder in candidates:
        if folder.is_dir() and (not first_name or (folder / first_name).exists()):
            return folder
    raise DatasetNotFoundError(
        f"cannot find the images of {path} (looked in {', '.join(str(c) for c in candidates)}); use a data.yaml with "
        "format: coco and train: {images: <folder>, annotations: <json>}"
    )
