"""COCO-format splits of ``s3://`` datasets read in place: the instances JSON in memory, the images listed, none
downloaded.

A data.yaml with ``format: coco`` names each split as ``{images: <prefix>, annotations: <instances json>}``, both
relative to the dataset's ``path`` (or ``s3://`` URIs), as a local COCO dataset does
(:mod:`yolov12.data.formats.coco`). :func:`list_coco_split` reads the JSON (at most :data:`MAX_COCO_JSON_BYTES`;
COCO 2017's train instances are 448 MB) with pycocotools, lists the image prefix for ETags and sizes, and gives each
image the label rows the local reader gives it (category ids mapped to 0..nc-1 in ascending id order, crowd
annotations dropped, the row checks of :func:`yolov12.data.verify.repair_rows`). An image the JSON names but the
prefix does not hold is skipped as missing; one whose entry has no ``width``/``height`` is skipped too (its boxes
cannot be normalised without downloading it). Images come in ascending image-id order, as locally.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from yolov12.data.dataset_config import parse_names
from yolov12.data.errors import DatasetError, DatasetNotFoundError
from yolov12.data.formats.coco import category_ids, coco_from_bytes, image_labels
from yolov12.data.label_report import LabelReport
from yolov12.data.s3_objects import (
    ListedImage,
    S3SplitListing,
    get_object,
    join_uri,
    list_prefix,
    read_body,
    relative_key,
)
from yolov12.data.verify import repair_rows

MAX_COCO_JSON_BYTES = 2 << 30


def list_coco_split(client: Any, raw: Mapping[str, Any], split: str, root: str, source: str) -> S3SplitListing:
    """List split ``split`` of the COCO-format data.yaml ``source`` (parsed: ``raw``; dataset prefix ``root``).

    Raises:
        DatasetNotFoundError: the split is not defined, or none of its images is under its prefix.
        DatasetError: the split entry is not ``{images, annotations}``, the JSON is too large or not COCO, or the
            data.yaml's names disagree with the JSON's categories.
        RemoteStorageError: listing or reading failed.
    """
    value = raw.get(split)
    if not value:
        raise DatasetNotFoundError(f"split {split!r} is not defined by {source}; add {split}: {{images: images/"
                                   f"{split}, annotations: annotations/instances_{split}.json}}")
    if not isinstance(value, Mapping) or not {"images", "annotations"} <= set(value):
        raise DatasetError(f"{source}: a COCO split must be a mapping with 'images' and 'annotations', got "
                           f"{split}: {value!r}")
    images_prefix = join_uri(root, str(value["images"]), source, f"{split} images")
    json_uri = join_uri(root, str(value["annotations"]), source, f"{split} annotations")
    coco, json_object = _read_instances(client, json_uri)
    categories = category_ids(coco)
    names = parse_names(raw.get("names"), raw.get("nc"), source) or tuple(coco.cats[c]["name"] for c in categories)
    if len(names) != len(categories):
        raise DatasetError(f"{source} names {len(names)} classes but {json_uri} has {len(categories)} categories; "
                           "make names list the categories in ascending id order, or leave names out")
    refused: list[str] = []
    stored = {item[0]: item for item in list_prefix(client, images_prefix, refused)}
    contiguous = {category: index for index, category in enumerate(categories)}
    report, listed = LabelReport(split=split), []
    for image_id in sorted(coco.imgs):
        info = coco.imgs[image_id]
        uri = f"{images_prefix}/{str(info.get('file_name', '')).lstrip('/')}"
        counts: Counter = Counter()
        found = stored.get(uri)
        height, width = info.get("height"), info.get("width")
        if found is None:
            counts["missing_images"] += 1
        elif not height or not width:
            counts["unsized_images"] += 1
        else:
            labels = image_labels(coco, image_id, contiguous, uri, (int(height), int(width)))
            counts.update(labels.issues)
            listed.append(ListedImage(uri, found[1], found[2], repair_rows(labels, len(names), counts)))
        report.add(+counts, uri)
    if not listed:
        raise DatasetNotFoundError(f"none of the {len(coco.imgs)} images {json_uri} names is under {images_prefix}; "
                                   "check the split's images entry and that the images were uploaded")
    report.images, report.boxes = len(listed), sum(len(image.rows.classes) for image in listed)
    report.log()
    objects = [(relative_key(root, json_uri), *json_object)]
    objects += [(relative_key(root, image.uri), image.etag, image.size) for image in listed]
    return S3SplitListing(root, tuple(names), listed, objects, report, refused)


def _read_instances(client: Any, uri: str) -> tuple[Any, tuple[str, int]]:
    """(pycocotools COCO of the JSON ``uri``, the JSON's (ETag, size) for the listing digest)."""
    from yolov12.data import remote  # noqa: PLC0415 - boto3 only when S3 is used

    bucket, key = remote.split_s3_uri(uri)
    response = get_object(client, bucket, key, uri)
    size = int(response["ContentLength"])
    if size > MAX_COCO_JSON_BYTES:
        response["Body"].close()
        raise DatasetError(f"{uri} is {size} bytes, above the {MAX_COCO_JSON_BYTES} bytes a COCO JSON is read "
                           "into memory from; split it, or use data.loader=local")
    coco = coco_from_bytes(read_body(response, uri), uri)
    return coco, (str(response.get("ETag", "")), size)  # quoted, as listings give ETags
