"""The driver's dataset lineage: S3 data is digested from its listing (nothing downloaded), local data by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.train import dataset_lineage
from yolov12.data.dataset_config import load_dataset_config
from yolov12.data.digest import dataset_digest, listing_digest
from yolov12.data.labels import load_labels
from yolov12.data.sample_dataset import ensure_sample_detection

pytestmark = pytest.mark.integration


def _upload_sample(s3, prefix: str) -> list[tuple[str, str, int]]:
    """The sample dataset's train and val files and a portable data.yaml under ``prefix``; the expected listing."""
    local = ensure_sample_detection().parent
    client = s3.client()
    files = {f"{p.relative_to(local).as_posix()}": p.read_bytes() for p in sorted(local.rglob("*"))
             if p.is_file() and p.parent.name in ("train", "val")}
    files["data.yaml"] = b"path: .\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n"
    listing = []
    for relative, body in files.items():
        etag = client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{relative}", Body=body)["ETag"]
        listing.append((relative, etag, len(body)))
    return listing


def test_s3_data_is_digested_from_its_listing_without_downloading_the_images(s3, tmp_path: Path,
                                                                            monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    prefix = f"lineage/{tmp_path.name}"
    listing = _upload_sample(s3, prefix)
    data = f"s3://{s3.bucket}/{prefix}/data.yaml"
    digest, source = dataset_lineage(data)
    assert (digest, source) == (listing_digest(listing), data)
    mirrored = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert mirrored == ["data.yaml"]


def test_local_data_keeps_the_content_digest(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    data = str(ensure_sample_detection())
    records, _ = load_labels(load_dataset_config(data), "train", use_cache=False)
    assert dataset_lineage(data) == (dataset_digest(records), str(Path(data).resolve()))
