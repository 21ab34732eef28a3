"""``data.loader=ray_data``: the epoch order, the mixing buffer, the local and S3 listings, decode + augment and
collation without Ray, and 2-worker Ray Train runs streaming an ``s3://`` dataset (moto server on 127.0.0.1) on a
2-node cluster whose second node only decodes: mAP parity with the local loader, and resume after a killed worker."""

from __future__ import annotations

import csv
import json
import math
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import ray.cloudpickle
from support import fault_callbacks
from support.fault_callbacks import AttemptRecorder, KillRank1InEpoch2
from support.ray_nodes import pinned_head

from pipelines import ray_data_ingest
from pipelines.config import load_pipeline_config
from pipelines.ray_data_ingest import (
    DecodeAugment,
    batches_per_epoch,
    check_stream_epoch,
    collate_stream_batch,
    decode_augment_batch,
    epoch_order,
    subset,
    train_listing,
)
from yolov12.config.base import ConfigError
from yolov12.config.train import AugmentSection
from yolov12.data import builtin, remote
from yolov12.data.detection_dataset import build_datasets
from yolov12.engine.callbacks import Callback

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get the callbacks below by value
ray.cloudpickle.register_pickle_by_value(fault_callbacks)


def listing_rows(records: list[str], epoch: int = 0, total_epochs: int = 3) -> dict[str, np.ndarray]:
    """A numpy batch of listing rows, as Ray Data hands it to ``map_batches``."""
    count = len(records)
    return {"record": np.array(records, dtype=object), "position": np.arange(count),
            "epoch": np.full(count, epoch), "total_epochs": np.full(count, total_epochs)}


def test_epoch_order_is_a_seeded_permutation_per_epoch_padded_for_the_ranks() -> None:
    first, again, second = epoch_order(10, 0, 0, 1), epoch_order(10, 0, 0, 1), epoch_order(10, 0, 1, 1)
    assert sorted(first) == list(range(10)) and list(first) == list(again)
    assert list(first) != list(second), "each epoch has its own shuffle"
    assert list(epoch_order(10, 1, 0, 1)) != list(first), "the run's seed changes the order"
    padded = epoch_order(10, 0, 0, 4)
    assert len(padded) == 12 and list(padded[:10]) == list(first) and list(padded[10:]) == list(first[:2])
    assert batches_per_epoch(10, 4, 2) == 2 and batches_per_epoch(96, 2, 4) == 12 and batches_per_epoch(9, 2, 4) == 2


def upload_sample(client, bucket: str, prefix: str) -> str:
    """The built-in ``sample`` dataset's images and labels uploaded under ``prefix``; its data.yaml's URI."""
    root = builtin.build("sample").parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".jpg", ".txt")):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
    names = "".join(f"  {i}: '{i}'\n" for i in range(10))
    client.put_object(Bucket=bucket, Key=f"{prefix}/data.yaml", Body=f"train: images/train\nval: images/val\n"
                      f"names:\n{names}".encode())
    return f"s3://{bucket}/{prefix}/data.yaml"


def mirrored_files() -> list[Path]:
    """Every file under the library's mirror cache (``$YOLOV12_CACHE/s3``)."""
    mirror = remote.cache_root() / "s3"
    return [p for p in mirror.rglob("*") if p.is_file()] if mirror.exists() else []


@pytest.fixture
def s3_sample(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample dataset on the moto server (a fresh prefix); the mirror cache in tmp_path."""
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))
    return upload_sample(s3.client(), s3.bucket, f"stream-{uuid.uuid4().hex[:8]}")


def test_listing_keeps_the_local_fraction_rule_and_refuses_what_it_cannot_stream() -> None:
    records = [json.loads(r)["path"] for r in train_listing("sample", 0.25, 0)]
    dataset, _ = build_datasets("sample", "train")
    assert records == [r.path for r in subset(dataset.records, 0.25, 0)] and len(records) == 24
    with pytest.raises(ConfigError, match="classification dataset: use data.loader=local"):
        train_listing("sample-cls", 1.0, 0)


@pytest.mark.integration
def test_s3_listing_reads_only_labels_and_matches_the_local_listing(s3_sample: str) -> None:
    streamed = [json.loads(r) for r in train_listing(s3_sample, 0.25, 0)]
    local = [json.loads(r) for r in train_listing("sample", 0.25, 0)]
    prefix = s3_sample.rsplit("/", 1)[0]
    assert [r["path"] for r in streamed] == [f"{prefix}/images/train/{Path(r['path']).name}" for r in local], \
        "the same images in the same order: the fraction rule runs over the same sorted split"
    assert all(r["classes"] == expected["classes"] and np.allclose(r["boxes"], expected["boxes"])
               for r, expected in zip(streamed, local)), "label rows read from S3 equal the verified local rows"
    assert mirrored_files() == [], "listing an s3:// split mirrors nothing (no image is downloaded)"


@pytest.mark.integration
def test_s3_records_decode_from_s3_into_the_same_training_arrays(s3_sample: str) -> None:
    augment = AugmentSection(mosaic=1.0, close_mosaic=0).model_dump()
    streamed = DecodeAugment(augment, 64, buffer_size=4, seed=0)(listing_rows(train_listing(s3_sample, 0.1, 0)[:5]))
    local = DecodeAugment(augment, 64, buffer_size=4, seed=0)(listing_rows(train_listing("sample", 0.1, 0)[:5]))
    assert np.array_equal(streamed["image"], local["image"]) and list(streamed["labels"]) == list(local["labels"])
    assert all(str(path).startswith("s3://") for path in streamed["path"])
    assert mirrored_files() == [], "images are decoded in memory, never written to the mirror"


@pytest.mark.integration
def test_s3_dataset_that_cannot_stream_is_refused_in_one_line(s3, tmp_path: Path) -> None:
    prefix = f"stream-{uuid.uuid4().hex[:8]}"
    s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/data.yaml", Body=b"train: train.txt\nnames: [a]\n")
    with pytest.raises(ConfigError, match=r"^data.loader=ray_data cannot stream s3://.*\.txt list of images"):
        train_listing(f"s3://{s3.bucket}/{prefix}/data.yaml", 1.0, 0)


def test_decode_augment_is_seeded_per_image_and_collates_into_the_loop_batch() -> None:
    records = train_listing("sample", 0.1, 0)[:6]
    augment = AugmentSection(mosaic=1.0, close_mosaic=0).model_dump()
    out = DecodeAugment(augment, 64, buffer_size=4, seed=0)(listing_rows(records))
    again = DecodeAugment(augment, 64, buffer_size=4, seed=0)(listing_rows(records))
    other_epoch = DecodeAugment(augment, 64, buffer_size=4, seed=0)(listing_rows(records, epoch=1))
    assert out["image"].shape == (6, 3, 64, 64) and out["image"].dtype == np.uint8
    assert np.array_equal(out["image"], again["image"]) and list(out["labels"]) == list(again["labels"])
    assert not np.array_equal(out["image"], other_epoch["image"])

    batch = collate_stream_batch(out)
    counts = [len(labels) // 20 for labels in out["labels"]]  # 5 float32 per box
    assert batch["images"].shape == (6, 3, 64, 64) and batch["paths"] == [json.loads(r)["path"] for r in records]
    assert batch["boxes"].shape == (sum(counts), 4) and batch["classes"].shape == (sum(counts),)
    assert batch["batch_index"].tolist() == [i for i, n in enumerate(counts) for _ in range(n)]
    assert float(batch["boxes"].min()) >= 0.0 and float(batch["boxes"].max()) <= 1.0


def test_a_task_process_keeps_its_decoder_and_mixing_buffer_per_stream_across_epochs(monkeypatch) -> None:
    monkeypatch.setattr(ray_data_ingest, "_process_decoders", type(ray_data_ingest._process_decoders)())
    records = train_listing("sample", 0.1, 0)[:4]
    augment = AugmentSection(mosaic=1.0, close_mosaic=0).model_dump()
    options = {"augment": augment, "imgsz": 64, "buffer_size": 6, "seed": 0}
    decode_augment_batch(listing_rows(records[:3]), stream="run-a", **options)
    decoder = ray_data_ingest._process_decoders["run-a"]
    decode_augment_batch(listing_rows(records[3:], epoch=1), stream="run-a", **options)
    assert ray_data_ingest._process_decoders["run-a"] is decoder and len(decoder.buffer) == 4, \
        "the next batch (the next epoch's too) draws from the same buffer"
    decode_augment_batch(listing_rows(records[:1]), stream="run-b", **options)
    assert len(ray_data_ingest._process_decoders["run-b"].buffer) == 1, "another run never sees run-a's images"
    decode_augment_batch(listing_rows(records[:1]), stream="run-a", **options)
    decode_augment_batch(listing_rows(records[:1]), stream="run-c", **options)
    assert list(ray_data_ingest._process_decoders) == ["run-a", "run-c"], "the least recently used stream left"


def test_rows_of_another_epoch_than_the_one_training_are_refused() -> None:
    check_stream_epoch(np.array([1, 1, 1]), 1)
    with pytest.raises(RuntimeError, match=r"training epoch 2 received rows listed for epoch\(s\) 1, 3;"):
        check_stream_epoch(np.array([0, 1, 2, 0]), 1)
    with pytest.raises(RuntimeError, match="before set_epoch"):
        check_stream_epoch(np.array([0]), None)


def test_loader_key_is_typed_and_routed_beside_the_training_data_section() -> None:
    config = load_pipeline_config(None, ["data.loader=ray_data", "data.imgsz=64", "data.decode_tasks=3"])
    assert config.data.loader == "ray_data" and config.data.decode_tasks == 3 and config.train.data.imgsz == 64
    config = load_pipeline_config(None, ["data=coco8", "data.loader=ray_data"])
    assert config.train.data.data == "coco8", "a flat data= is still the dataset"
    assert load_pipeline_config(None, []).data.loader == "local"
    with pytest.raises(ConfigError, match=r"^data: loader='ray': Input should be 'local' or 'ray_data'$"):
        load_pipeline_config(None, ["data.loader=ray"])
    with pytest.raises(ConfigError, match="cache=ram .* remove cache"):
        load_pipeline_config(None, ["data.loader=ray_data", "cache=ram"])
    with pytest.raises(ConfigError, match=r"^'data.decode_actors' is now 'data.decode_tasks' \(.*\): rename it$"):
        load_pipeline_config(None, ["data.decode_actors=2"])
    with pytest.raises(ConfigError, match=r"^unknown key 'data.decode_task'; did you mean 'data.decode_tasks'\?; "
                                          r"keys of data: batch, .*decode_tasks"):
        load_pipeline_config(None, ["data.decode_task=2"])


class SeenImages(Callback):
    """Writes, per rank, its node and the image paths of every batch it trained on in each epoch."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)
        self.paths: list[str] = []

    def on_train_data(self, state, data) -> None:
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        source, seen = data.train_loader.source, self.paths

        class Recording:
            def __iter__(self):
                for batch in source:
                    seen.extend(batch["paths"])
                    yield batch

            def __len__(self):
                return len(source)

            def set_epoch(self, epoch, total_epochs):
                source.set_epoch(epoch, total_epochs)

        data.train_loader.source = Recording()

    def on_epoch_end(self, state, metrics) -> None:
        path = Path(self.folder) / f"rank{state.rank}-epoch{state.epoch + 1}.json"
        path.write_text(json.dumps({"node": self.node, "paths": self.paths, "loss": metrics["train/box_loss"]}))
        self.paths.clear()


@pytest.fixture(scope="module")
def decode_node_cluster(s3_server, tmp_path_factory: pytest.TempPathFactory):
    """Two nodes: the head runs the training workers (resource ``trainer``), the second only has ``decode``.

    Every node (and this driver) has the moto server's AWS environment and a mirror cache of its own
    (``YOLOV12_CACHE``), set before the nodes start so that their worker processes inherit them.
    """
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**s3_server.env, "YOLOV12_CACHE": str(tmp_path_factory.mktemp("node-cache"))}.items():
            patch.setenv(key, value)
        cluster = Cluster()
        try:
            with pinned_head() as head_options:  # Ray Train's cleaner must ask this cluster (support/ray_nodes.py)
                head = cluster.add_node(num_cpus=3, resources={"trainer": 2}, **head_options)
                decoder = cluster.add_node(num_cpus=1, resources={"decode": 1})
            cluster.wait_for_nodes()
            ray.init(address=cluster.address)
            yield head.node_id, decoder.node_id
        finally:
            ray.shutdown()
            cluster.shutdown()


# The parity runs: 2 workers, 16 epochs at 128 px, global batch 16, mosaic on (closed for the last 5 epochs). What
# the same runs gave here (docs/benchmarks.md, "Streaming training ingest"; benchmarks/stream_parity.py), val mAP50:
# the local loader 0.096-0.156 over 4 seeds and mosaic settings (it repeats a seed exactly), the stream 0.040-0.184
# over 9 runs (it does not: which rank gets which image varies, and at 16 epochs on 96 images that moves mAP50 by
# several points); the stream's final-epoch training losses 0-9% below the local loader's, never above. So one run
# each can only show that the stream trains as well as the local loader up to that spread, not to a point: both
# checks are one-sided ("not worse than"), the mAP one with room for about two standard deviations of the run-to-run
# difference (0.054), the losses with 10%.
PARITY_TRAIN = {"imgsz": 128, "batch": 16, "nbs": 16, "workers": 0, "optimizer": "AdamW", "lr0": 0.01,
                "warmup_epochs": 1, "close_mosaic": 5, "mosaic": 1.0, "amp": False, "seed": 0, "plots": False,
                "epochs": 16, "val": False}
PARITY_LEARNED = 0.02  # mAP50: an untrained model scores 0.0; both runs must clear this
PARITY_MAP_BELOW = 0.12  # mAP50(stream) >= mAP50(local) - this
PARITY_LOSS_ABOVE = 0.10  # final-epoch train loss (stream) <= (local) * (1 + this), for box, cls and dfl


def val_map50(weights: Path) -> float:
    from yolov12 import YOLO

    return YOLO(str(weights)).val(data="sample", imgsz=PARITY_TRAIN["imgsz"], batch=16)["metrics/mAP50(B)"]


def last_epoch_losses(run_dir: Path) -> dict[str, float]:
    """The training losses of the last row of a run's results.csv."""
    *_, last = csv.DictReader((run_dir / "results.csv").read_text().splitlines())
    return {key: float(value) for key, value in last.items() if key.startswith("train/") and key.endswith("_loss")}


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)  # two 16-epoch runs: 4-5 min on a quiet 2-core machine, up to 14 min while a test run
# shares the cores; the default 900 s would cut it short on a slow machine
def test_two_workers_streaming_from_s3_train_to_the_local_loaders_map_and_resume(decode_node_cluster, s3_server,
                                                                                 tmp_path: Path) -> None:
    """The same 2-worker run twice: the local loader on the sample folder, and the stream from ``s3://`` with the
    decoding on the other node, whose rank 1 dies after the first batch of epoch 2. Ray Train restarts both workers
    from the epoch-1 checkpoint and the restarted stream gives epoch 2 whole; every image arrives once per epoch, no
    node mirrors the dataset, and the stream trains as well as the local loader within the stated tolerances."""
    from pipelines.train import run_pipeline

    head_node, _ = decode_node_cluster
    prefix = f"stream-{uuid.uuid4().hex[:8]}"
    data = upload_sample(s3_server.client(), s3_server.bucket, prefix)
    record, marker, attempts = tmp_path / "record", tmp_path / "killed", tmp_path / "attempts.txt"
    record.mkdir()
    common = {**PARITY_TRAIN, "scaling.num_workers": 2, "scaling.resources_per_worker": {"CPU": 1, "trainer": 1},
              "storage.storage_path": str(tmp_path / "ray"), "storage.output": str(tmp_path / "out"),
              "tracking.enabled": False}
    local = run_pipeline(load_pipeline_config(None, {**common, "data": "sample", "storage.name": "local"}))
    stream = run_pipeline(load_pipeline_config(None, {
        **common, "data": data, "data.loader": "ray_data", "data.decode_tasks": 1,
        "data.decode_resources": {"decode": 1}, "failure.max_failures": 1, "storage.name": "stream"}),
        callbacks=[SeenImages(record), KillRank1InEpoch2(marker), AttemptRecorder(attempts)])

    assert marker.exists(), "rank 1 was never killed"
    starts = sorted(attempts.read_text().split("\n")[:-1])
    assert starts == ["0 0", "0 1", "1 0", "1 1"], starts  # both ranks: fresh start, then resume at epoch 2
    dataset, _ = build_datasets("sample", "train")
    expected = sorted(f"s3://{s3_server.bucket}/{prefix}/images/train/{Path(r.path).name}" for r in dataset.records)
    for epoch in range(1, PARITY_TRAIN["epochs"] + 1):  # epoch 2 as the restarted workers streamed it
        ranks = [json.loads((record / f"rank{r}-epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert all(rank["node"] == head_node for rank in ranks), "training stays on the head; the other node decodes"
        assert all(math.isfinite(rank["loss"]) and rank["loss"] > 0 for rank in ranks)
        assert len(ranks[0]["paths"]) == len(ranks[1]["paths"]) == len(dataset) // 2
        assert sorted(ranks[0]["paths"] + ranks[1]["paths"]) == expected, f"epoch {epoch}: every image once, from S3"
    assert stream.metrics["epoch"] == local.metrics["epoch"] == PARITY_TRAIN["epochs"]
    assert mirrored_files() == [], \
        "no node mirrored the dataset (the nodes share this machine and this cache folder)"

    local_losses, stream_losses = last_epoch_losses(local.run_dir), last_epoch_losses(stream.run_dir)
    assert sorted(local_losses) == ["train/box_loss", "train/cls_loss", "train/dfl_loss"] == sorted(stream_losses)
    for key, value in local_losses.items():
        assert stream_losses[key] <= value * (1 + PARITY_LOSS_ABOVE), (key, local_losses, stream_losses)
    local_map, stream_map = val_map50(local.last), val_map50(stream.last)
    assert local_map > PARITY_LEARNED and stream_map > PARITY_LEARNED, (local_map, stream_map)
    assert stream_map >= local_map - PARITY_MAP_BELOW, (local_map, stream_map)
