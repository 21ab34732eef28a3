"""Detection splits of ``s3://`` datasets read in place: object listings and label rows, no image downloaded.

For readers that fetch each image when they need it (the Ray Data train stream) instead of mirroring the dataset
(:mod:`yolov12.data.remote`). :func:`list_s3_split` reads the data.yaml and the split's small YOLO label files into
memory and lists its images (key, ETag, size); nothing is written under the local mirror
(:func:`yolov12.data.remote.cache_root`). :func:`fetch_image_bgr` then reads one image's bytes and decodes them with
the checks a local dataset image gets (:func:`yolov12.data.images.decode_image_bgr`).

What can be read in place: a ``data.yaml`` on S3 (or a prefix holding one) in the ``yolo`` format whose split entries
are folders (prefixes) of images, relative to the dataset's ``path`` or ``s3://`` URIs; or in the ``coco`` format
(:mod:`yolov12.data.s3_coco`: an instances JSON per split). An image's label file is found
by the YOLO rule (the last ``/images/`` of its key becomes ``/labels/``, the suffix ``.txt``); its rows get the checks
of :func:`yolov12.data.verify.repair_rows` (the image is checked when it is decoded). A key that cannot be a safe
path (:mod:`yolov12.data.object_keys`) is skipped with one warning naming it, as the mirror skips it.

Credentials, region and endpoint come from the environment, through :func:`yolov12.data.remote.s3_client`.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import yaml

from yolov12.data.dataset_config import load_dataset_config, parse_names
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.base import empty_labels
from yolov12.data.formats.yolo import parse_label_text
from yolov12.data.images import decode_image_bgr, is_image_file
from yolov12.data.label_report import LabelReport
from yolov12.data.s3_coco import list_coco_split
from yolov12.data.s3_objects import (
    ListedImage,
    ObjectEntry,
    S3SplitListing,
    get_object,
    join_uri,
    list_prefix,
    object_exists,
    read_body,
    relative_key,
)
from yolov12.data.verify import repair_rows
from yolov12.infer.image_io import decoded_byte_limit

logger = logging.getLogger(__name__)

MAX_YAML_BYTES = 1 << 20  # a data.yaml is a few hundred bytes
MAX_LABEL_BYTES = 16 << 20  # a larger label file is not read (counted as unreadable; its image kept as background)


def list_s3_split(data: str, split: str = "train", client: Any | None = None) -> S3SplitListing:
    """List split ``split`` of the ``s3://`` dataset ``data`` and read its label files; no image is downloaded.

    Args:
        data: ``s3://bucket/prefix/data.yaml``, or a prefix holding ``data.yaml`` / ``data.yml``.
        split: ``train``, ``val`` or ``test``.
        client: a boto3 S3 client (default :func:`yolov12.data.remote.s3_client`); label files are read on
            ``$YOLOV12_S3_THREADS`` threads.

    Raises:
        DatasetNotFoundError: no data.yaml, the split is not defined, or it holds no image.
        DatasetError: the data.yaml cannot be read in place (another format, ``.txt`` image lists, local paths).
        RemoteStorageError: listing or reading failed (credentials, endpoint, permissions).

    Example:
        >>> listing = list_s3_split("s3://datasets/sample/data.yaml")  # doctest: +SKIP
        >>> len(listing.images), listing.images[0].uri  # doctest: +SKIP
        (96, 's3://datasets/sample/images/train/train_0000.jpg')
    """
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    client = client or remote.s3_client()
    yaml_uri = find_data_yaml(data, client)
    raw = read_s3_yaml(yaml_uri, client)
    root = join_uri(yaml_uri.rsplit("/", 1)[0], str(raw.get("path") or "."), yaml_uri, "path")
    if str(raw.get("format", "yolo")).lower() == "coco":
        return list_coco_split(client, raw, split, root, yaml_uri)
    names = _yolo_names(raw, yaml_uri)
    prefixes = _split_prefixes(raw, split, root, yaml_uri)
    images, labels, refused = _list_split_objects(client, prefixes)
    if not images:
        raise DatasetNotFoundError(f"the {split} split of {yaml_uri} has no image under {', '.join(prefixes)}; "
                                   "check the split entry and that the images were uploaded")
    report, listed = LabelReport(split=split), []
    with ThreadPoolExecutor(min(remote.download_threads(), len(images)), thread_name_prefix="s3-labels") as pool:
        for image, counts, file in pool.map(lambda item: _labelled(client, item, labels, len(names)), images):
            listed.append(image)
            report.add(counts, file)
    report.images, report.boxes = len(listed), sum(len(image.rows.classes) for image in listed)
    report.log()
    used = [labels[_label_uri(image.uri)] for image in listed if _label_uri(image.uri) in labels]
    objects = [(relative_key(root, uri), etag, size) for uri, etag, size in images + used]
    return S3SplitListing(root, names, listed, objects, report, refused)


def fetch_image_bgr(uri: str, client: Any | None = None, max_bytes: int | None = None) -> np.ndarray:
    """GET the image ``uri`` and decode it in memory -> (H, W, 3) uint8 BGR (nothing is written to disk).

    An object larger than the decoded-byte limit (``max_bytes``, default ``image_io.MAX_DECODED_BYTES``) is refused
    before its body is read; the bytes then get :func:`~yolov12.data.images.decode_image_bgr`'s header checks.

    Raises:
        DatasetNotFoundError: the object does not exist (removed since the split was listed?).
        RemoteStorageError: the GET failed; UnsafeObjectKeyError: the key is not a safe path.
        DatasetError: the object is over a limit or is not a decodable image.
    """
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    bucket, key = remote.split_s3_uri(uri)
    response = get_object(client or remote.s3_client(), bucket, key, uri)
    limit = decoded_byte_limit(max_bytes)
    if int(response["ContentLength"]) > limit:
        response["Body"].close()
        raise DatasetError(f"image {uri} is a {response['ContentLength']}-byte object, above the limit of {limit} "
                           "bytes an image may decode to; downscale it or remove it from the split")
    return decode_image_bgr(read_body(response, uri), uri, max_bytes)


def dataset_names(data: Any) -> tuple[str, ...]:
    """Class names of ``data``; an ``s3://`` data.yaml that lists them is read alone (the dataset is not mirrored).

    Anything else goes through :func:`~yolov12.data.dataset_config.load_dataset_config`.

    Raises:
        DatasetError: an ``s3://`` COCO-format data.yaml without ``names`` (they would come from the instances JSON,
            which every caller would then read whole).
    """
    if isinstance(data, str) and data.startswith("s3://"):
        from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

        client = remote.s3_client()
        try:
            raw = read_s3_yaml(find_data_yaml(data, client), client)
        except DatasetNotFoundError:
            raw = {}  # no data.yaml: an ImageNet-style folder or a COCO json, which the full loader resolves
        names = parse_names(raw.get("names"), raw.get("nc"), data) if raw else None
        if names:
            return names
        if str(raw.get("format", "")).lower() == "coco":
            raise DatasetError(f"{data} is a COCO dataset on S3 without names: add names: [...] (the categories in "
                               "ascending id order) to its data.yaml, so that each training worker reads the class "
                               "names there instead of the whole instances JSON")
    return load_dataset_config(data).names


def find_data_yaml(data: str, client: Any) -> str:
    """``data`` itself when it names a .yaml/.yml object, else the ``data.yaml`` (or ``data.yml``) under it."""
    if data.lower().endswith((".yaml", ".yml")):
        return data
    for name in ("data.yaml", "data.yml"):
        candidate = f"{data.rstrip('/')}/{name}"
        if object_exists(client, candidate):
            return candidate
    raise DatasetNotFoundError(f"{data} holds no data.yaml; pass s3://.../data.yaml of a YOLO dataset")


def read_s3_yaml(uri: str, client: Any) -> Mapping[str, Any]:
    """The data.yaml ``uri`` parsed in memory (at most :data:`MAX_YAML_BYTES`)."""
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    bucket, key = remote.split_s3_uri(uri)
    response = get_object(client, bucket, key, uri)
    if int(response["ContentLength"]) > MAX_YAML_BYTES:
        response["Body"].close()
        raise DatasetError(f"{uri} is {response['ContentLength']} bytes, too large for a data.yaml "
                           f"(at most {MAX_YAML_BYTES}); check that data= names the dataset's data.yaml")
    try:
        raw = yaml.safe_load(read_body(response, uri).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot parse {uri}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{uri} must hold a mapping with path/train/val/names, got {type(raw).__name__}")
    return raw


def label_key_for(key: str) -> str:
    """The YOLO label key of an image key (or of a prefix ending with ``/``): last ``/images/`` -> ``/labels/``,
    suffix -> ``.txt`` (the rule of :func:`yolov12.data.formats.yolo.label_path_for`, on the key alone).

    Example:
        >>> label_key_for("sets/a/images/train/x.jpg")
        'sets/a/labels/train/x.txt'
    """
    head, found, tail = ("/" + key).rpartition("/images/")
    text = (head + "/labels/" + tail if found else "/" + key)[1:]
    return text if text.endswith("/") else posixpath.splitext(text)[0] + ".txt"


# -- data.yaml ------------------------------------------------------------------------------------------------------
def _yolo_names(raw: Mapping[str, Any], source: str) -> tuple[str, ...]:
    fmt = str(raw.get("format", "yolo")).lower()
    if fmt != "yolo":
        raise DatasetError(f"{source}: format {fmt!r} cannot be read in place from S3 (YOLO txt labels and COCO "
                           "JSON can); use data.loader=local, which mirrors the dataset onto each node")
    names = parse_names(raw.get("names"), raw.get("nc"), source)
    if not names:
        raise DatasetError(f"{source} has no 'names'; add names: [class0, class1, ...] or nc:")
    return names


def _split_prefixes(raw: Mapping[str, Any], split: str, root: str, source: str) -> list[str]:
    """The ``s3://`` prefixes the split entry names (a folder or a list of folders)."""
    value = raw.get(split)
    if not value:
        raise DatasetNotFoundError(f"split {split!r} is not defined by {source}; add {split}: images/{split}")
    prefixes = []
    for entry in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(entry, str):
            raise DatasetError(f"{source}: {split} entry {entry!r} is not a folder of images; give a path or a list")
        if entry.lower().endswith(".txt"):
            raise DatasetError(f"{source}: {split} entry {entry!r} is a .txt list of images, which cannot be read in "
                               "place (its lines may name any file); name a folder of images or use "
                               "data.loader=local")
        prefixes.append(join_uri(root, entry, source, split))
    return prefixes


# -- listing and labels ---------------------------------------------------------------------------------------------
def _list_split_objects(client: Any, prefixes: list[str]
                        ) -> tuple[list[ObjectEntry], dict[str, ObjectEntry], list[str]]:
    """(images in key order, label objects by URI, refused URIs) under the split's prefixes and their label prefixes."""
    images: dict[str, ObjectEntry] = {}
    labels: dict[str, ObjectEntry] = {}
    refused: list[str] = []
    for prefix in prefixes:
        listed = list_prefix(client, prefix, refused)
        label_prefix = _label_uri(prefix + "/")
        if label_prefix.rstrip("/") != prefix:
            listed = listed + list_prefix(client, label_prefix.rstrip("/"), refused)
        images.update((item[0], item) for item in listed if is_image_file(item[0]))
        labels.update((item[0], item) for item in listed if item[0].endswith(".txt"))
    return [images[uri] for uri in sorted(images)], labels, refused


def _label_uri(image_uri: str) -> str:
    bucket, _, key = image_uri[len("s3://"):].partition("/")
    return f"s3://{bucket}/{label_key_for(key)}"


def _labelled(client: Any, image: ObjectEntry, labels: dict[str, ObjectEntry],
              num_classes: int) -> tuple[ListedImage, Counter, str]:
    """(the image with its checked label rows, the counts of what the checks found, the file they concern)."""
    uri, etag, size = image
    label = labels.get(_label_uri(uri))
    counts: Counter = Counter()
    text = _label_text(client, label, counts) if label is not None else None
    if label is None:
        counts["missing_label_files"] += 1
    raw = parse_label_text(uri, label[0], text) if label is not None and text is not None else empty_labels(uri, None)
    counts.update(raw.issues)
    rows = repair_rows(raw, num_classes, counts)
    return ListedImage(uri, etag, size, rows), +counts, label[0] if label is not None else uri


def _label_text(client: Any, label: ObjectEntry, counts: Counter) -> str | None:
    """The label file's text; None (counted as unreadable) when it is too large or not UTF-8."""
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    uri, _, size = label
    if size > MAX_LABEL_BYTES:
        logger.debug("label file %s is %d bytes, above %d: not read", uri, size, MAX_LABEL_BYTES)
        counts["unreadable_label_files"] += 1
        return None
    bucket, key = remote.split_s3_uri(uri)
    try:
        return read_body(get_object(client, bucket, key, uri), uri).decode("utf-8")
    except DatasetNotFoundError:  # removed since it was listed: the image has no labels now
        counts["missing_label_files"] += 1
    except UnicodeDecodeError as exc:
        logger.debug("unreadable label file %s: %s", uri, exc)
        counts["unreadable_label_files"] += 1
    return None
