"""Batch inference on Ray Data vs the same engine in-process: images/s over the same images on one node.

The in-process row reads each file, decodes it with the library's safe decoder and runs
``Predictor.predict_batch`` in batches of ``--batch-size`` on one engine with ``--threads`` threads (the ONNX or
OpenVINO export is built first and shared by both rows); its clock starts after the engine is loaded and warmed up.
The Ray Data row is one whole ``pipelines.batch_predict`` job on a local Ray of ``--ray-cpus`` CPUs (started before
the clock; ``--nodes 2``: a 2-node ``ray.cluster_utils.Cluster`` sharing them): listing, reading and decoding
tasks, ``--concurrency`` actors of ``--num-cpus`` CPUs that each load the model, Parquet parts and summaries; so
it includes the actors' start-up, which longer jobs spread over more images. MLflow tracking is off.

    PYTHONPATH=. .venv/bin/python benchmarks/batch_predict.py --images 192 --imgsz 320 --ray-cpus 2 \\
        --concurrency 1 2 --num-cpus 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from bench_common import machine_line

from pipelines.batch_predict import BatchPredictConfig, engine_spec, resolve_model, run_batch_predict
from pipelines.batch_predict_worker import build_engine
from yolov12.config import PredictConfig
from yolov12.infer import Predictor
from yolov12.infer.image_io import decode_image_bytes
from yolov12.infer.samples import sample_images
from yolov12.models import build_model, load_architecture
from yolov12.weights import save_checkpoint


def confident_weights(folder: Path) -> Path:
    """yolov12n (1 class) whose class bias makes it detect everywhere: realistic NMS/postprocess work."""
    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=1), names={0: "thing"})
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[:] = 2.0
    return save_checkpoint(model, folder / "bench.safetensors")


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of 480-800 px: random crops and sizes of the bundled photos."""
    folder.mkdir(parents=True)
    photos = [cv2.imread(str(p)) for p in sample_images()]
    generator = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        top, left = (int(generator.integers(0, side // 4)) for side in (height, width))
        size = (int(generator.integers(480, 800)), int(generator.integers(480, 800)))
        paths.append(folder / f"image-{index:05d}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.resize(photo[top:, left:], size))
    return paths


def in_process(config: BatchPredictConfig, paths: list[Path], threads: int) -> float:
    """Images/s of read + decode + predict_batch on one engine, after loading and one warm-up batch."""
    model, load = resolve_model(config, None)
    spec = replace(engine_spec(config, model, load, None), threads=threads)
    predictor = Predictor(build_engine(spec), PredictConfig(imgsz=config.imgsz, conf=config.conf, iou=config.iou,
                                                            max_det=config.max_det, device="cpu"))
    batches = [paths[i:i + config.batch_size] for i in range(0, len(paths), config.batch_size)]

    def run(batch: list[Path]) -> None:
        images = [decode_image_bytes(path.read_bytes(), str(path)) for path in batch]
        predictor.predict_batch([str(path) for path in batch], images)

    run(batches[0])
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    return len(paths) / (time.perf_counter() - started)


def ray_job(config: BatchPredictConfig, ray_cpus: int, nodes: int = 1) -> tuple[float, int]:
    """(wall seconds, images) of one whole job on a local Ray of ``ray_cpus`` CPUs started beforehand: one node,
    or ``nodes`` nodes of a ``ray.cluster_utils.Cluster`` sharing the CPUs evenly (all on this machine)."""
    import ray  # noqa: PLC0415
    from ray.cluster_utils import Cluster  # noqa: PLC0415

    cluster = None
    if nodes > 1:
        if ray_cpus % nodes:
            raise SystemExit(f"--ray-cpus {ray_cpus} does not split evenly over --nodes {nodes}")
        cluster = Cluster()
        for _ in range(nodes):
            cluster.add_node(num_cpus=ray_cpus // nodes, include_dashboard=False)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
    else:
        ray.init(num_cpus=ray_cpus, include_dashboard=False, logging_level="WARNING")
    try:
        started = time.perf_counter()
        result = run_batch_predict(config)
        return time.perf_counter() - started, result.images
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "openvino"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--ray-cpus", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=1, help="Ray nodes sharing --ray-cpus (a local Cluster)")
    parser.add_argument("--concurrency", type=int, nargs=2, default=[1, 2], metavar=("MIN", "MAX"))
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs each actor reserves")
    parser.add_argument("--actor-threads", type=int, default=None, help="engine threads per actor (default: CPUs)")
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="engine threads of the in-process row")
    arguments = parser.parse_args(argv)
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as scratch:
        os.environ["YOLOV12_CACHE"] = str(Path(scratch) / "cache")  # the export is built once, for both rows
        root = Path(scratch)
        paths = make_images(root / "images", arguments.images)
        config = BatchPredictConfig(
            model=str(confident_weights(root)), source=str(root / "images"), output=str(root / "preds"),
            backend=arguments.backend, imgsz=arguments.imgsz, batch_size=arguments.batch_size,
            concurrency=tuple(arguments.concurrency), num_cpus=arguments.num_cpus, threads=arguments.actor_threads,
            shard_size=arguments.shard_size, tracking=False)
        local = in_process(config, paths, arguments.threads)
        seconds, images = ray_job(config, arguments.ray_cpus, arguments.nodes)
    report = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "images": images, "imgsz": arguments.imgsz, "backend": arguments.backend,
        "in_process_images_per_s": round(local, 1), "in_process_threads": arguments.threads,
        "ray_job_wall_s": round(seconds, 1), "ray_job_images_per_s": round(images / seconds, 1),
        "ray": f"{arguments.nodes} node(s), {arguments.ray_cpus} CPUs, actors {arguments.concurrency[0]}-"
               f"{arguments.concurrency[1]} x {arguments.num_cpus} CPU, "
               f"{arguments.actor_threads or int(arguments.num_cpus)} engine thread(s)",
        "ray_over_in_process": round(images / seconds / local, 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
