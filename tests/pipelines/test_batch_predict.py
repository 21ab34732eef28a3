"""Batch inference on Ray Data (``pipelines.batch_predict``) with real Ray, a real ``mlflow server`` and moto S3.

A registered one-class yolov12n predicts 12 small photos and 2 corrupt files under an ``s3://`` prefix: the Parquet
rows equal ``YOLO(weights).predict`` on the same images, the corrupt files are rows with their reason (and in
``_bad_images.txt``), a rerun writes nothing, and the job's MLflow run is found from the model version. The same job
on a 2-node cluster with local folders writes again only a part that went missing.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomllib
from support.ray_guard import forbid_ray_start

from pipelines.batch_predict import BatchPredictConfig, BatchPredictResult, main, parse_config, run_batch_predict
from pipelines.batch_predict_io import JOB_FILE, InputImage, OutputFolder, claim_output, parquet_bytes, plan_shards
from pipelines.batch_predict_results import ShardCollector, finish_output, output_is_current
from pipelines.batch_predict_tracking import batch_runs_for_version
from pipelines.batch_predict_worker import OUTPUT_SCHEMA, BatchPredictError, decode_batch
from pipelines.lineage import lineage
from yolov12.cli.arguments import CommandLineError
from yolov12.config.base import ConfigError

REPO = Path(__file__).resolve().parents[2]
IMGSZ = 64
SETTINGS = {"backend": "torch", "imgsz": IMGSZ, "conf": 0.25, "iou": 0.7, "max_det": 300}
CORRUPT = {"broken.jpg": b"\xff\xd8\xff\xe0 this is not a JPEG at all", "empty.png": b""}


def confident_checkpoint(path: Path, bias: float = 6.0, name: str = "thing") -> Path:
    """A one-class yolov12n whose class bias says 'object' everywhere (non-empty, image-dependent detections)."""
    from yolov12.models import build_model, load_architecture
    from yolov12.weights import save_checkpoint

    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=1), names={0: name})
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[:] = bias
    return save_checkpoint(model, path)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 small photos (sizes, crops and flips of the bundled samples) and 2 corrupt files in one folder."""
    from yolov12.infer.samples import sample_images

    folder = tmp_path_factory.mktemp("images")
    for photo in sample_images():
        image = cv2.imread(str(photo))
        height, width = image.shape[:2]
        variants = [cv2.resize(image, (96, 72)), cv2.resize(image, (80, 120)), cv2.flip(cv2.resize(image, (64, 64)), 1),
                    cv2.resize(image[: height // 2, : width // 2], (100, 60)), cv2.resize(image, (48, 90)),
                    cv2.resize(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), (70, 70))]
        for index, variant in enumerate(variants):
            name = f"{photo.stem} é-{index}.png" if index == 5 else f"{photo.stem}-{index}.jpg"  # a key to quote
            (folder / name).write_bytes(cv2.imencode(Path(name).suffix, variant)[1].tobytes())
    for name, data in CORRUPT.items():
        (folder / name).write_bytes(data)
    (folder / "notes.txt").write_text("not an image: listed, not predicted")
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return confident_checkpoint(tmp_path_factory.mktemp("weights") / "best.safetensors")


@pytest.fixture(scope="module")
def local_ray(s3_server, tmp_path_factory: pytest.TempPathFactory):
    """A local Ray (2 CPUs) started with the S3 variables set, so its workers read the moto bucket."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        for key, value in s3_server.env.items():
            patch.setenv(key, value)
        patch.setenv("YOLOV12_CACHE", str(tmp_path_factory.mktemp("cache")))
        if ray.is_initialized():
            ray.shutdown()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        try:
            yield s3_server
        finally:
            ray.shutdown()


@dataclass(frozen=True)
class S3Job:
    config: BatchPredictConfig
    result: BatchPredictResult
    model: str  # the registered name
    prefix: str  # of the images and the predictions in the bucket
    s3: Any  # support.services.S3Endpoint


@pytest.fixture(scope="module")
def s3_job(local_ray, mlflow_server, images: Path, weights: Path) -> S3Job:
    """The images uploaded under a fresh prefix, the weights registered as version 1 (champion), the job run once."""
    from pipelines.registry import mlflow_client, promote, register_weights

    name, prefix = f"batch-{uuid.uuid4().hex[:8]}", f"batch-{uuid.uuid4().hex[:8]}"
    client = mlflow_client(mlflow_server.url)
    run = client.create_run(client.create_experiment(name), run_name="train")
    register_weights(client, name=name, run_id=run.info.run_id, weights=weights, alias=None)
    client.set_terminated(run.info.run_id)
    promote(name, 1, tracking_uri=mlflow_server.url)
    bucket = local_ray.client()
    for path in sorted(images.iterdir()):
        bucket.upload_file(str(path), local_ray.bucket, f"{prefix}/images/{path.name}")
    config = BatchPredictConfig(
        model=f"models:/{name}@champion", source=f"s3://{local_ray.bucket}/{prefix}/images/",
        output=f"s3://{local_ray.bucket}/{prefix}/preds/", batch_size=4, shard_size=5, concurrency=(1, 1),
        coco_json=True, tracking_uri=mlflow_server.url, experiment=f"{name}-batch", **SETTINGS)
    return S3Job(config, run_batch_predict(config), name, prefix, local_ray)


def output_rows(s3, prefix: str) -> dict[str, dict]:
    """Every row of the Parquet parts under ``prefix/preds/`` by path."""
    client, rows = s3.client(), {}
    for key in s3.keys(f"{prefix}/preds/part-"):
        table = pq.read_table(io.BytesIO(client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()))
        assert table.schema.equals(OUTPUT_SCHEMA), key
        rows.update({row["path"]: row for row in table.to_pylist()})
    return rows


def assert_rows_match_predict(rows: dict[str, dict], local_of: dict[str, Path], weights: Path) -> None:
    """Every predicted row equals ``YOLO(weights).predict`` on the local copy of its image."""
    from yolov12 import YOLO

    predicted = {uri: row for uri, row in rows.items() if row["error"] is None}
    options = {key: value for key, value in SETTINGS.items() if key != "backend"}
    results = YOLO(str(weights)).predict([str(local_of[uri]) for uri in predicted], **options)
    assert len(results) == len(predicted) == 12
    for (uri, row), result in zip(predicted.items(), results):
        data = result.boxes.data.numpy()
        assert (row["height"], row["width"]) == result.orig_shape, uri
        assert len(row["boxes"]) == len(data) > 0, uri
        np.testing.assert_allclose(np.array(row["boxes"]), data[:, :4], atol=1e-4, err_msg=uri)
        np.testing.assert_allclose(row["scores"], data[:, 4], atol=1e-6, err_msg=uri)
        assert row["classes"] == data[:, 5].astype(int).tolist(), uri


@pytest.mark.slow
@pytest.mark.integration
def test_s3_job_writes_the_rows_predict_gives_and_lists_the_bad_images(s3_job: S3Job, images: Path,
                                                                        weights: Path) -> None:
    source, result, s3 = s3_job.config.source, s3_job.result, s3_job.s3
    rows = output_rows(s3, s3_job.prefix)
    local_of = {f"{source}{path.name}": path for path in images.iterdir()}
    assert set(rows) == {uri for uri in local_of if not uri.endswith(".txt")}
    assert_rows_match_predict(rows, local_of, weights)
    bad = {uri: row for uri, row in rows.items() if row["error"] is not None}
    assert set(bad) == {f"{source}{name}" for name in CORRUPT}
    assert all(row["boxes"] is None and row["width"] is None for row in bad.values())
    assert "empty" in bad[f"{source}empty.png"]["error"] and "not a valid image" in bad[f"{source}broken.jpg"]["error"]
    assert {(row["model"], row["version"]) for row in rows.values()} == {(s3_job.model, "1")}

    listed = _read(s3, f"{s3_job.prefix}/preds/_bad_images.txt").decode().splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == sorted(bad)
    coco = json.loads(_read(s3, f"{s3_job.prefix}/preds/_predictions_coco.json"))
    assert len(coco) == result.detections == sum(len(row["scores"]) for row in rows.values() if row["scores"])
    assert {entry["category_id"] for entry in coco} == {1}
    assert (result.images, result.bad_images, result.parts, result.parts_written) == (14, 2, 3, 3)
    assert result.version == "1" and result.run_id


@pytest.mark.slow
@pytest.mark.integration
def test_a_rerun_of_a_finished_job_writes_nothing(s3_job: S3Job) -> None:
    before = _listing(s3_job.s3, f"{s3_job.prefix}/preds/")
    again = run_batch_predict(s3_job.config)
    assert _listing(s3_job.s3, f"{s3_job.prefix}/preds/") == before
    assert (again.parts_written, again.run_id, again.images) == (0, None, 14)
    assert again.detections == s3_job.result.detections


@pytest.mark.slow
@pytest.mark.integration
def test_the_job_is_found_from_the_model_version(s3_job: S3Job, mlflow_server) -> None:
    from pipelines.registry import mlflow_client

    config, result, name = s3_job.config, s3_job.result, s3_job.model
    client = mlflow_client(mlflow_server.url)
    (found,) = batch_runs_for_version(client, name, 1)
    assert (found.run_id, found.status, found.output) == (result.run_id, "FINISHED", result.output)
    assert (found.input_source, found.input_digest) == (config.source, result.input_digest)
    assert (found.metrics["images"], found.metrics["bad_images"]) == (14, 2)
    run = client.get_run(found.run_id)
    assert run.data.params["imgsz"] == str(IMGSZ) and run.data.tags["yolov12.consumer.kind"] == "batch_predict"
    assert [i.model_id for i in run.inputs.model_inputs] == [client.get_model_version(name, "1").tags["model_id"]]
    assert batch_runs_for_version(client, name, 2) == []
    chain = lineage(f"models:/{name}@champion", tracking_uri=mlflow_server.url)  # what `yolov12 lineage` prints
    assert [run.run_id for run in chain.batch_runs] == [result.run_id]
    assert f"  batch      {result.run_id} " in chain.render() and "bad_images=2" in chain.render()


@pytest.mark.slow
@pytest.mark.integration
def test_two_node_job_on_local_folders_rewrites_only_a_missing_part(two_node_cluster, images: Path, weights: Path,
                                                                    tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))  # the actors get it: the ONNX export goes there
    output = tmp_path / "preds"
    config = BatchPredictConfig(model=str(weights), source=str(images), output=str(output), batch_size=2,
                                shard_size=4, concurrency=(1, 2), tracking=False,
                                **SETTINGS | {"backend": "onnxruntime"})
    first = run_batch_predict(config)
    assert (first.images, first.bad_images, first.parts_written) == (14, 2, 4)
    rows = {row["path"]: row for row in pq.read_table(output).to_pylist()}
    assert_rows_match_predict(rows, {str(p): p for p in images.iterdir()}, weights)

    parts = sorted(output.glob("part-*.parquet"))
    stamps = {path.name: path.stat().st_mtime_ns for path in parts}
    parts[1].unlink()
    again = run_batch_predict(config)
    assert again.parts_written == 1 and parts[1].is_file()
    assert {p.name: p.stat().st_mtime_ns for p in parts if p != parts[1]} == \
        {n: s for n, s in stamps.items() if n != parts[1].name}
    assert pq.read_table(output).num_rows == 14


def test_an_output_of_another_job_is_refused(tmp_path: Path) -> None:
    output = OutputFolder(str(tmp_path / "preds"))
    claim_output(output, {"model": "m/0", "imgsz": 640})
    claim_output(output, {"model": "m/1", "imgsz": 640})  # no part written yet: the new job takes the output
    output.write("part-00000-abc.parquet", b"a part of model 1")
    claim_output(output, {"model": "m/1", "imgsz": 640})  # the same job again: fine
    with pytest.raises(BatchPredictError, match=r"model='m/1' \(now 'm/2'\).*choose another output="):
        claim_output(output, {"model": "m/2", "imgsz": 640})
    assert json.loads((tmp_path / "preds" / JOB_FILE).read_text())["model"] == "m/1"

    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "part-00000-abc.parquet").write_bytes(b"someone else's table")
    with pytest.raises(BatchPredictError, match="not written by a batch prediction job; choose an empty output"):
        claim_output(OutputFolder(str(tmp_path / "theirs")), {"model": "m/1"})


def fake_listing(count: int) -> list[InputImage]:
    return [InputImage(f"s3://b/images/{i:03d}.jpg", f"b/images/{i:03d}.jpg", 100 + i, f"etag{i}")
            for i in range(count)]


def predicted_rows(images: list[InputImage], boxes: int = 1) -> pa.Table:
    rows = [{"path": image.uri, "width": 8, "height": 6, "boxes": [[0.0, 0.0, 4.0, 3.0]] * boxes,
             "scores": [0.5] * boxes, "classes": [0] * boxes, "model": "m", "version": "1"} for image in images]
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def test_parts_are_written_when_their_last_image_arrives_in_any_order(tmp_path: Path) -> None:
    images = fake_listing(7)
    plan = plan_shards(images, 3)
    output = OutputFolder(str(tmp_path / "preds"))
    collector = ShardCollector(plan, output, "m", "1")
    collector.add(predicted_rows([images[5], images[0], images[4]]))
    collector.add(predicted_rows([images[2], images[1], images[1]]))  # a retried task sends image 1 twice
    assert collector.written == [plan[0].name]
    collector.add(predicted_rows([images[3]]))
    assert collector.written == [plan[0].name, plan[1].name]
    collector.finish()  # image 6 never came back
    assert collector.written == [shard.name for shard in plan]
    first = pq.read_table(tmp_path / "preds" / plan[0].name)
    assert first.column("path").to_pylist() == [image.uri for image in images[:3]]
    (last,) = pq.read_table(tmp_path / "preds" / plan[2].name).to_pylist()
    assert last["path"] == images[6].uri and last["boxes"] is None and "could not be read" in last["error"]
    with pytest.raises(RuntimeError, match="no open shard lists"):
        collector.add(predicted_rows([images[0]]))


def test_finishing_counts_every_part_and_removes_parts_of_images_no_longer_listed(tmp_path: Path) -> None:
    images = fake_listing(5)
    output = OutputFolder(str(tmp_path / "preds"))
    old_plan = plan_shards(images[:4], 2)
    for shard in old_plan:
        output.write(shard.name, parquet_bytes(predicted_rows(list(shard.images))))
    plan = plan_shards(images, 2)  # image 4 was added: the last shard is new, the first two are the same
    assert [s.name for s in plan[:2]] == [s.name for s in old_plan] and plan[2].name not in output.names()
    bad = pa.Table.from_pylist([{"path": images[4].uri, "model": "m", "version": "1", "error": "corrupt"}],
                               schema=OUTPUT_SCHEMA)
    output.write(plan[2].name, parquet_bytes(bad))
    output.write(old_plan[1].name.replace("00001", "00007"), b"a part of an older listing")
    assert not output_is_current(output, plan, "digest")

    totals = finish_output(output, plan, coco_json=True, facts={"input_digest": "digest"})
    assert (totals.images, totals.bad_images, totals.detections, totals.parts) == (5, 1, 4, 3)
    assert {n for n in output.names() if n.startswith("part-")} == {s.name for s in plan}
    assert (tmp_path / "preds" / "_bad_images.txt").read_text() == f"{images[4].uri}\tcorrupt\n"
    coco = json.loads((tmp_path / "preds" / "_predictions_coco.json").read_text())
    assert [entry["image_id"] for entry in coco] == [0, 1, 2, 3]  # numeric file names become COCO ids
    assert coco[0]["bbox"] == [0.0, 0.0, 4.0, 3.0] and coco[0]["category_id"] == 1
    assert output_is_current(output, plan, "digest") and not output_is_current(output, plan, "other listing")


def test_corrupt_bytes_decode_to_a_row_with_its_reason() -> None:
    good = cv2.imencode(".png", np.full((5, 7, 3), 9, np.uint8))[1].tobytes()
    batch = {"bytes": np.array([good, b"garbage"], dtype=object), "path": np.array(["b/a.png", "b/c.jpg"])}
    decoded = decode_batch(batch, prefix="s3://")
    assert list(decoded["path"]) == ["s3://b/a.png", "s3://b/c.jpg"]
    assert decoded["image"][0].shape == (5, 7, 3) and decoded["image"][1].size == 0
    assert decoded["error"][0] == "" and decoded["error"][1].startswith("cannot decode image s3://b/c.jpg")


@pytest.mark.parametrize(("arguments", "error", "message"), [
    (["model=m.safetensors", "source=a", "output=b", "batch=4"], CommandLineError, "did you mean 'batch_size'"),
    (["model=m.safetensors", "source=a"], CommandLineError, "missing output="),
    (["model=m.safetensors", "source=a", "output=b", "concurrency=3,1"], ConfigError, "1 <= min <= max"),
    (["model=m.safetensors", "source=s3://b/x/", "output=s3://b/x"], ConfigError, "this is the source"),
    (["model=m.safetensors", "source=gs://b/x", "output=b"], ConfigError, "s3://bucket/prefix"),
    (["model=m.safetensors", "source=a", "output=b", "backend=tensorrt"], ConfigError, "'openvino'"),
])
def test_bad_arguments_are_refused_with_the_fix(arguments: list[str], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        parse_config(arguments)


def test_arguments_parse_into_the_typed_config() -> None:
    config = parse_config(["m.safetensors", "--source", "s3://b/images/", "output=out", "concurrency=1,4",
                           "coco_json=true", "imgsz=320", "num_cpus=2", "threads=3"])
    assert (config.model, config.concurrency, config.coco_json, config.imgsz) == ("m.safetensors", (1, 4), True, 320)
    assert (config.num_cpus, config.threads, config.backend, config.shard_size) == (2.0, 3, "auto", 1000)
    assert parse_config(["model=m", "source=a", "output=b", "concurrency=3"]).concurrency == (3, 3)


def test_a_missing_model_fails_in_one_line_before_ray_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    attempts = forbid_ray_start(monkeypatch)
    code = main(["model=missing.safetensors", f"source={tmp_path}", f"output={tmp_path / 'out'}", "tracking=false"],
                prog="yolov12 predict-ray")
    err = capsys.readouterr().err.strip()
    assert code == 2 and attempts == [] and "\n" not in err
    assert err.startswith("yolov12 predict-ray: error: model=missing.safetensors does not exist")


def test_predict_ray_is_registered_as_a_command() -> None:
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["yolov12.commands"]
    module, _, name = entry["predict-ray"].partition(":")
    command = getattr(import_module(module), name)
    assert command.name == "predict-ray" and "source=" in command.summary


def _read(s3, key: str) -> bytes:
    return s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def _listing(s3, prefix: str) -> list[tuple[str, str, str]]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return sorted((o["Key"], o["ETag"], str(o["LastModified"])) for page in pages for o in page.get("Contents", []))

