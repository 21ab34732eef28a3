"""The driver's side of the output of ``pipelines.batch_predict``: parts written as shards complete, then totals.

Rows stream from the actor pool to the driver in any order (a few hundred bytes per image: paths and boxes, no
pixels). :class:`ShardCollector` keeps the rows of each unfinished shard and writes its Parquet part as soon as the
last of its images arrived, so a job that stops half-way keeps every finished part and a rerun predicts only the
rest. Ray Data's own ``write_parquet`` names files by write and block and commits a whole dataset at once; a part
per shard with a name that a rerun can find needs the rows of a shard together, which the driver sees.

:func:`finish_output` then reads every part back (the totals cover parts of earlier runs too) and writes
``_bad_images.txt``, the optional COCO results file and ``_SUCCESS``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from pipelines.batch_predict_io import (
    BAD_IMAGES_FILE,
    COCO_FILE,
    SUCCESS_FILE,
    OutputFolder,
    Shard,
    is_part,
    parquet_bytes,
    part_table,
)
from pipelines.batch_predict_worker import OUTPUT_SCHEMA

logger = logging.getLogger(__name__)

NOT_READ = "the image was listed but could not be read (deleted or replaced during the job); run the job again"


class ShardCollector:
    """Collects output rows by shard and writes each shard's part once all its images have a row.

    Args:
        shards: the shards this run predicts.
        output: where parts go.
        model, version: what rows made here (images that could not be read) report.
    """

    def __init__(self, shards: Sequence[Shard], output: OutputFolder, model: str, version: str) -> None:
        self._shard_of = {image.uri: shard for shard in shards for image in shard.images}
        self._open = {shard.name: shard for shard in shards}
        self._rows: dict[str, list[pa.Table]] = defaultdict(list)
        self._seen: dict[str, set[str]] = defaultdict(set)
        self.output, self.model, self.version = output, model, version
        self.written: list[str] = []

    def add(self, table: pa.Table) -> None:
        """Rows of :data:`~pipelines.batch_predict_worker.OUTPUT_SCHEMA` for any images of the open shards."""
        groups: dict[str, list[int]] = defaultdict(list)
        paths = table.column("path").to_pylist()
        for index, path in enumerate(paths):
            shard = self._shard_of.get(path)
            if shard is None or shard.name not in self._open:
                raise RuntimeError(f"a prediction came back for {path}, which no open shard lists")
            groups[shard.name].append(index)
        for name, indices in groups.items():
            self._rows[name].append(table.take(indices))
            self._seen[name].update(paths[i] for i in indices)
            if len(self._seen[name]) == len(self._open[name].images):
                self._write(name)

    def add_errors(self, errors: dict[str, str]) -> None:
        """Rows for images refused without reading them: URI -> reason."""
        if errors:
            self.add(pa.Table.from_pylist([self._error_row(uri, reason) for uri, reason in errors.items()],
                                          schema=OUTPUT_SCHEMA))

    def finish(self) -> None:
        """Write the shards still open: their images that never came back get a row saying so."""
        for name in list(self._open):
            missing = {image.uri: NOT_READ for image in self._open[name].images if image.uri not in self._seen[name]}
            self.add_errors(missing)

    def _error_row(self, uri: str, reason: str) -> dict[str, Any]:
        return {"path": uri, "model": self.model, "version": self.version, "error": reason}

    def _write(self, name: str) -> None:
        table = part_table(self._rows.pop(name))  # sorted by path: rows of a retried task would lie side by side
        paths = table.column("path").to_pylist()
        table = table.take([i for i, path in enumerate(paths) if i == 0 or path != paths[i - 1]])
        self.output.write(name, parquet_bytes(table))
        del self._open[name], self._seen[name]
        self.written.append(name)
        logger.info("wrote %s (%d images)", self.output.location(name), table.num_rows)


@dataclass(frozen=True)
class Totals:
    """What the whole output holds."""

    images: int
    bad_images: int
    detections: int
    parts: int


def output_is_current(output: OutputFolder, plan: Sequence[Shard], input_digest: str) -> bool:
    """True when ``_SUCCESS`` describes this listing and plan and every part is there (a rerun then does nothing)."""
    success = output.read_json(SUCCESS_FILE)
    if not success or success.get("input_digest") != input_digest:
        return False
    names = [shard.name for shard in plan]
    return success.get("parts") == names and set(names) <= output.names()


def finish_output(output: OutputFolder, plan: Sequence[Shard], coco_json: bool, facts: dict[str, Any]) -> Totals:
    """Remove parts of an older listing, then write ``_bad_images.txt``, the COCO file (``coco_json``) and
    ``_SUCCESS`` (the totals plus ``facts``) from every part of ``plan``."""
    names = [shard.name for shard in plan]
    for stale in sorted(n for n in output.names() if is_part(n) and n not in set(names)):
        logger.info("removing %s: its images are no longer listed as they were", output.location(stale))
        output.delete(stale)
    columns = ["path", "boxes", "scores", "classes", "error"] if coco_json else ["path", "scores", "error"]
    images, detections, bad, predicted = 0, 0, [], []
    for name in names:  # one part at a time: the driver never holds the whole output
        table = output.read_part(name, columns)
        images += table.num_rows
        for row in table.to_pylist():
            if row["error"] is not None:
                bad.append(f"{row['path']}\t{row['error']}\n")
                continue
            detections += len(row["scores"])
            if coco_json:
                predicted.append(row)
    totals = Totals(images, len(bad), detections, len(names))
    output.write(BAD_IMAGES_FILE, "".join(bad).encode())
    if coco_json:
        output.write_json(COCO_FILE, coco_results(predicted))
    output.write_json(SUCCESS_FILE, {**facts, **asdict(totals), "parts": names})
    return totals


def coco_results(rows: Sequence[dict[str, Any]]) -> list[dict]:
    """The COCO results format of predicted rows (``image_id``, ``category_id`` = class + 1, ``bbox`` [x, y, w, h],
    ``score``), through the library's evaluator. ``image_id`` is the file's number when every file name is one
    (COCO's ``000000000139.jpg``), else the image's path."""
    from yolov12.eval.detection_metrics import COCOEvaluator  # noqa: PLC0415 - pycocotools, only when asked

    stems = [PurePosixPath(row["path"]).stem for row in rows]
    numeric = all(stem.isdigit() for stem in stems) and len({int(s) for s in stems}) == len(stems)
    image_ids = [int(stem) for stem in stems] if numeric else [row["path"] for row in rows]
    num_classes = 1 + max((c for row in rows for c in row["classes"]), default=0)
    evaluator = COCOEvaluator(num_classes)
    predictions = [{"boxes": row["boxes"], "scores": row["scores"], "classes": row["classes"]} for row in rows]
    evaluator.update(predictions, [{} for _ in rows], image_ids=image_ids)
    return evaluator.predictions_json()
