"""The README's first command: the platform end to end on embedded defaults (``bash scripts/dev.sh main``).

1. build the offline sample dataset (and its digest);
2. train a small teacher (plain ``model.train``);
3. train yolov12n with GKD from that teacher on a local Ray cluster through the Ray Train pipeline (2 workers, DDP);
   the pipeline logs the run to MLflow (sqlite in ``./mlruns``) and registers the weights (alias ``candidate``);
4. promote that version to ``champion``; export ONNX and OpenVINO;
5. deploy ``models:/NAME@champion`` on Ray Serve at http://127.0.0.1:8000, send real HTTP requests, print detections;
6. print where to look: MLflow UI, Ray dashboard, the endpoint, the lineage of the deployed model.

A second invocation reuses what exists (dataset, teacher, the finished run and its registered version, exports):
``state.json`` in the output folder records each finished step. ``--fresh`` starts over. Everything runs on this
machine: local Ray, local sqlite MLflow, local folders instead of S3 (set ``MLFLOW_TRACKING_URI`` /
``storage_path=s3://...`` to use real services; see the README).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUTPUT = Path("runs/main")  # relative to the working folder (where ./mlruns is too); --output changes it
CONFIG = Path(__file__).resolve().parent / "configs" / "sample.yaml"
MODEL_NAME = "yolov12n-sample"
RUN_NAME = "main-yolov12n-gkd"
TEACHER_MODEL = "yolov12s.yaml"
# The recipe both models train with (yolov12s: mAP50 0.92 after 6 epochs, 0.97 after 8, on the 32 validation scenes):
# - data "sample-large": 480 training scenes (5x "sample", the same validation scenes): more distinct digits, not more
#   epochs, is what lifts mAP on this data;
# - fliplr=0: a mirrored 2, 3, 5 or 7 is not that digit; mosaic=0 and scale=0.25: at 160 px a mosaic tile or a 0.5x
#   scale shrinks the smallest digits (24 px in the 320 px scenes, 12 px at 160) below what the 8x8 sources can show;
# - one optimiser step per batch (nbs = batch): 60 steps an epoch for the teacher, 30 for the student on Ray.
RECIPE = dict(data="sample-large", imgsz=160, workers=0, optimizer="AdamW", lr0=0.004, warmup_epochs=1, amp=False,
              seed=0, mosaic=0.0, close_mosaic=0, fliplr=0.0, scale=0.25)
TEACHER_SETTINGS = dict(RECIPE, batch=8, nbs=8)
STUDENT_SETTINGS = dict(RECIPE, batch=16, nbs=16)  # global batch: 8 per worker on 2 workers
SERVE_CONF = 0.25


class Steps:
    """Runs named steps once: a finished step's result is kept in ``state.json`` and reused by later invocations."""

    def __init__(self, folder: Path, fresh: bool) -> None:
        self.path = folder / "state.json"
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.state: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.started = time.perf_counter()

    def run(self, name: str, title: str, action: Callable[[], Any], still_valid: Callable[[Any], bool] = bool) -> Any:
        elapsed = time.perf_counter() - self.started
        if name in self.state and still_valid(self.state[name]):
            print(f"==> [{elapsed:6.1f} s] {title}: reusing {self.state[name]}", flush=True)
            return self.state[name]
        print(f"==> [{elapsed:6.1f} s] {title}", flush=True)
        self.state[name] = action()
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, indent=2, default=str))
        os.replace(temporary, self.path)
        return self.state[name]


def build_dataset(name: str) -> dict[str, str]:
    from yolov12.data.builtin import build  # noqa: PLC0415
    from yolov12.data.dataset_config import load_dataset_config  # noqa: PLC0415
    from yolov12.data.digest import dataset_digest  # noqa: PLC0415
    from yolov12.data.labels import load_labels  # noqa: PLC0415

    data_yaml = build(name)
    records, _ = load_labels(load_dataset_config(data_yaml), "train")
    digest = dataset_digest(records)
    print(f"    {data_yaml} ({len(records)} training images, digest {digest[:12]})")
    return {"data": str(data_yaml), "digest": digest}


def train_teacher(output: Path, epochs: int, data: str) -> str:
    from pipelines.worker import EpochLog  # noqa: PLC0415 - the line per epoch the Ray workers print too
    from yolov12 import YOLO  # noqa: PLC0415

    logging.getLogger("pipelines.progress").setLevel(logging.INFO)
    teacher = YOLO(TEACHER_MODEL)
    metrics = teacher.train(epochs=epochs, project=str(output), name="teacher", exist_ok=True, verbose=False,
                            callbacks=[EpochLog(world_size=1)], **{**TEACHER_SETTINGS, "data": data})
    best = teacher.trainer_result.best or teacher.trainer_result.last
    print(f"    teacher {TEACHER_MODEL}: mAP50 {metrics.get('metrics/mAP50(B)', 0):.3f} -> {best}")
    return str(Path(best).resolve())  # absolute: Ray workers run in another folder


def train_student(output: Path, teacher: str, epochs: int, workers: int, data: str) -> dict[str, Any]:
    from pipelines.config import load_pipeline_config  # noqa: PLC0415
    from pipelines.train import run_pipeline, summary  # noqa: PLC0415

    batch = max(STUDENT_SETTINGS["batch"] // max(workers, 1), 1) * max(workers, 1)  # splits evenly over workers
    config = load_pipeline_config(CONFIG, {
        **STUDENT_SETTINGS, "data": data, "batch": batch, "nbs": batch,
        "epochs": epochs, "scaling.num_workers": workers, "storage.name": RUN_NAME,
        "storage.storage_path": str((output / "ray").resolve()), "storage.output": str(output / "train-ray"),
        "tracking.registered_model": MODEL_NAME, "distill.teachers": [str(Path(teacher).resolve())],
    })
    result = run_pipeline(config)
    print(summary(result))
    return {"run_dir": str(result.run_dir), "best": str(result.best), "run_id": result.run_id,
            "version": result.model_version, "metrics": {k: v for k, v in result.metrics.items()
                                                         if k.startswith("metrics/")}}


def promote(version: str) -> str:
    from pipelines.registry import promote as move_alias  # noqa: PLC0415

    move_alias(MODEL_NAME, version, "champion")
    uri = f"models:/{MODEL_NAME}@champion"
    print(f"    {uri} -> version {version}")
    return uri


def export(weights: str) -> dict[str, str]:
    from yolov12 import YOLO  # noqa: PLC0415

    model = YOLO(weights)
    exported = {fmt: str(model.export(format=fmt, imgsz=RECIPE["imgsz"])) for fmt in ("onnx", "openvino")}
    for fmt, path in exported.items():
        print(f"    {fmt}: {path}")
    return exported


def score_exports(exported: dict[str, str], data: str) -> dict[str, float]:
    """mAP of each export on the validation scenes, through the engine that serves it (the library's evaluation)."""
    from yolov12.engines import load_engine  # noqa: PLC0415
    from yolov12.engines.evaluate import evaluate_engine  # noqa: PLC0415
    from yolov12.eval.metric_names import MAP50, MAP50_95  # noqa: PLC0415

    scores = {}
    for fmt, path in exported.items():
        metrics = evaluate_engine(load_engine(path), data)
        scores[fmt] = metrics[MAP50.engine]
        print(f"    {fmt}: mAP50 {metrics[MAP50.engine]:.3f}, mAP50-95 {metrics[MAP50_95.engine]:.3f} on the "
              "validation scenes")
    return scores


def serve_and_query(output: Path, model_uri: str, port: int, keep_serving: bool) -> None:
    from ray import serve  # noqa: PLC0415

    from pipelines.driver import init_ray  # noqa: PLC0415
    from serve.app import build_app  # noqa: PLC0415
    from serve.client import RemoteModel  # noqa: PLC0415
    from yolov12.infer.image_io import read_image  # noqa: PLC0415

    init_ray()  # RAY_ADDRESS, else a local Ray (usually already started by the training step)
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build_app({"model": model_uri, "imgsz": RECIPE["imgsz"], "num_cpus": 1, "conf": SERVE_CONF}),
              name="yolov12", route_prefix="/", logging_config={"log_level": "WARNING"})  # no per-request lines
    url = f"http://127.0.0.1:{port}"
    client = RemoteModel(url)
    print(f"    serving {client.description} at {url}")
    images = sorted(Path(json.loads((output / "state.json").read_text())["dataset"]["data"]).parent
                    .glob("images/val/*"))[:4]
    for image in images:
        result = client.predict(read_image(image))[0]
        found = ", ".join(f"{row['name']} {row['confidence']:.2f}" for row in result.summary(decimals=2)) or "nothing"
        truth = image.parent.parent.parent / "labels" / "val" / f"{image.stem}.txt"
        digits = sorted(line.split()[0] for line in truth.read_text().splitlines()) if truth.is_file() else []
        print(f"    POST {url}/v1/detect {image.name}: {found}  (true digits: {' '.join(digits) or 'none'})")
    if keep_serving:
        print(f"    serving until Ctrl-C: curl -F file=@{images[0]} {url}/v1/detect")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    serve.shutdown()


def where_to_look(output: Path, model_uri: str, port: int) -> None:
    from pipelines.lineage import lineage  # noqa: PLC0415
    from pipelines.tracking import TrackingConfig, resolve_tracking_uri  # noqa: PLC0415

    tracking_uri = resolve_tracking_uri(TrackingConfig())
    print("==> lineage of the deployed model")
    text = lineage(model_uri).render()
    print(text.split("\n  params")[0])  # the chain; the full resolved config follows in `yolov12 lineage`
    print(f"  params     {text.split('  params     ')[1].splitlines()[0]} (all of them: yolov12 lineage {model_uri})")
    print("==> where to look")
    print(f"    MLflow UI:       .venv/bin/mlflow ui --backend-store-uri {tracking_uri}  (then http://127.0.0.1:5000)")
    print("    Ray dashboard:   http://127.0.0.1:8265 while a job runs (ray start --head for a lasting cluster)")
    print(f"    endpoint:        http://127.0.0.1:{port}/v1/detect (bash scripts/dev.sh main --keep-serving)")
    print(f"    lineage:         .venv/bin/yolov12 lineage {model_uri}")
    print(f"    outputs:         {output}/ (teacher, train-ray, exports, state.json)")


# Progress output that buries the job's own lines: gRPC's fork notices in the Serve replica, MLflow's artifact
# download bars when the replica loads models:/... .
QUIET_ENVIRONMENT = {"GRPC_VERBOSITY": "ERROR", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="yolov12-platform end to end on embedded defaults")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10, help="student epochs on Ray")
    parser.add_argument("--workers", type=int, default=2, help="Ray Train workers (DDP)")
    parser.add_argument("--data", default=RECIPE["data"], help="built-in dataset (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--keep-serving", action="store_true", help="keep the endpoint up until Ctrl-C")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="output folder (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete the output folder and start over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name, value in QUIET_ENVIRONMENT.items():  # the local Ray cluster (and every worker) inherits them
        os.environ.setdefault(name, value)
    steps = Steps(args.output, args.fresh)
    steps.run("dataset", f"building the offline sample dataset '{args.data}'", lambda: build_dataset(args.data))
    teacher = steps.run("teacher", f"training the teacher {TEACHER_MODEL} ({args.teacher_epochs} epochs)",
                        lambda: train_teacher(args.output, args.teacher_epochs, args.data),
                        lambda path: Path(path).is_file())
    student = steps.run("student", f"training yolov12n with GKD on Ray ({args.workers} workers, {args.epochs} epochs)",
                        lambda: train_student(args.output, teacher, args.epochs, args.workers, args.data),
                        lambda done: Path(done["best"]).is_file() and bool(done["version"]))
    model_uri = steps.run("champion", "promoting the registered version to champion",
                          lambda: promote(student["version"]))
    exported = steps.run("exports", "exporting ONNX and OpenVINO", lambda: export(student["best"]),
                         lambda done: all(Path(p).exists() for p in done.values()))
    steps.run("scores", "scoring the exports as they will serve (a CPU replica serves the OpenVINO one)",
              lambda: score_exports(exported, args.data))
    print(f"==> [{time.perf_counter() - steps.started:6.1f} s] deploying {model_uri} on Ray Serve", flush=True)
    serve_and_query(args.output, model_uri, args.port, args.keep_serving)
    where_to_look(args.output, model_uri, args.port)
    print(f"==> done in {time.perf_counter() - steps.started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
