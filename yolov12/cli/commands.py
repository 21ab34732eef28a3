"""The core commands (predict, track, info, convert, zoo) and the registry upper packages extend via entry points."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.settings import default_project
from yolov12.utils.extras import MissingExtraError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "yolov12.commands"


@dataclass(frozen=True)
class Command:
    """A CLI command: ``run(arguments)`` returns the process exit code."""

    name: str
    summary: str
    run: Callable[[list[str]], int]


def predict_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415
    from yolov12.config import PredictConfig  # noqa: PLC0415

    keys = ["model", "source", *PredictConfig.model_fields]
    values = parse_key_values(arguments, keys)
    model = YOLO(values.pop("model", "yolov12n.yaml"))
    source = values.pop("source", None)
    count = 0
    for result in model.predict(source, stream=True, **values):
        count += 1
        print(f"{result.path}: {result.verbose() or 'no detections'} "
              f"({result.speed['preprocess']:.1f} ms pre, {result.speed['inference']:.1f} ms inference, "
              f"{result.speed['postprocess']:.1f} ms post)")
    if values.get("save"):
        folder = Path(values.get("project") or default_project("predict")) / values.get("name", "exp")
        print(f"annotated images saved to {folder}")
    print(f"{count} image(s) done")
    return 0


def track_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415
    from yolov12.config import PredictConfig  # noqa: PLC0415
    from yolov12.config.tracker import TrackerConfig  # noqa: PLC0415

    tracker_fields = [key for key in TrackerConfig.model_fields if key != "model"]  # model= is the detector
    values = parse_key_values(arguments, ["model", "source", "tracker", *PredictConfig.model_fields, *tracker_fields])
    tracker_keys = {key: values.pop(key) for key in list(values) if key in tracker_fields}
    tracker = values.pop("tracker", "bytetrack.yaml")
    if tracker_keys:  # key=value tracker settings override the tracker file's
        from yolov12.config.tracker import load_tracker_config  # noqa: PLC0415

        tracker = load_tracker_config(tracker, **tracker_keys)
    model = YOLO(values.pop("model", "yolov12n.yaml"))
    count = 0
    for result in model.track(values.pop("source", None), tracker=tracker, stream=True, **values):
        count += 1
        ids = [] if result.boxes is None or result.boxes.id is None else [int(i) for i in result.boxes.id.tolist()]
        print(f"{result.path}: {len(ids)} tracked, ids {ids} ({result.speed['inference']:.1f} ms inference)")
    print(f"{count} frame(s) done")
    return 0


def train_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415
    from yolov12.config.train import COMMON_MISTAKES, KEY_TO_SECTION, UNSUPPORTED_ULTRALYTICS_KEYS  # noqa: PLC0415

    # Ultralytics keys we do not support pass the parser, so that the training config refuses them with the reason
    values = parse_key_values(arguments, ["model", "cfg", *KEY_TO_SECTION, *UNSUPPORTED_ULTRALYTICS_KEYS],
                              hints=COMMON_MISTAKES)
    model = YOLO(values.pop("model", "yolov12n.yaml"))
    metrics = model.train(**values)
    result = model.trainer_result
    print(f"run folder: {result.run_dir}; best: {result.best}; last: {result.last}")
    print(", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return 0


def val_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415
    from yolov12.config.val import ValConfig  # noqa: PLC0415

    values = parse_key_values(arguments, ["model", *ValConfig.model_fields])
    ValConfig.from_overrides({k: v for k, v in values.items() if k != "model"})  # bad values fail before the load
    model = YOLO(values.pop("model", "yolov12n.yaml"))
    metrics = model.val(**values)
    print(json.dumps(metrics))
    return 0


def export_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415
    from yolov12.export import ExportConfig  # noqa: PLC0415

    values = parse_key_values(arguments, ["model", *ExportConfig.model_fields], positional=("model",))
    if "model" not in values:
        raise CommandLineError("export needs a model: yolov12 export model=weights.safetensors format=onnx imgsz=640")
    model = YOLO(values.pop("model"))
    path = model.export(**values)
    print(f"exported {path}")
    return 0


def info_command(arguments: list[str]) -> int:
    from yolov12 import YOLO  # noqa: PLC0415

    values = parse_key_values(arguments, ["model", "imgsz", "attention", "json"], positional=("model",))
    model = YOLO(values.get("model", "yolov12n.yaml"))
    summary = model.info(verbose=not values.get("json"), imgsz=values.get("imgsz"),
                         include_attention=bool(values.get("attention")))
    if values.get("json"):
        print(json.dumps(summary))
    return 0


def convert_command(arguments: list[str]) -> int:
    from yolov12.weights import convert_checkpoint  # noqa: PLC0415

    values = parse_key_values(arguments, ["model", "output", "overwrite"], positional=("model", "output"))
    if "model" not in values:
        raise CommandLineError(
            "convert needs a checkpoint: yolov12 convert model=weights.pt [output=weights.safetensors]"
        )
    out = convert_checkpoint(str(values["model"]), values.get("output"), overwrite=bool(values.get("overwrite")))
    print(f"wrote {out}")
    return 0


def benchmark_command(arguments: list[str]) -> int:
    from yolov12.benchmark import benchmark_command as run_benchmark  # noqa: PLC0415

    return run_benchmark(arguments)


def zoo_command(arguments: list[str]) -> int:
    from yolov12.models import zoo_names  # noqa: PLC0415

    parse_key_values(arguments, [])
    print("\n".join(zoo_names()))
    return 0


def settings_command(arguments: list[str]) -> int:
    from yolov12.cli import settings_command as settings_cli  # noqa: PLC0415

    return settings_cli.run(arguments)


CORE_COMMANDS: dict[str, Command] = {
    "predict": Command("predict", "run inference: yolov12 predict model=yolov12n.yaml source=img.jpg conf=0.3",
                       predict_command),
    "track": Command("track", "detect and track: yolov12 track model=best.safetensors source=clip.mp4 "
                     "tracker=bytetrack.yaml|botsort.yaml", track_command),
    "train": Command("train", "train: yolov12 train model=yolov12n.yaml data=sample epochs=10 imgsz=320",
                     train_command),
    "val": Command("val", "validate: yolov12 val model=best.safetensors data=data.yaml save_json=true", val_command),
    "export": Command("export", "export: yolov12 export model=best.safetensors format=onnx|openvino|engine imgsz=640",
                      export_command),
    "info": Command("info", "layers, parameters and GFLOPs: yolov12 info model=yolov12n.yaml", info_command),
    "convert": Command("convert", "foreign .pt -> native .safetensors: yolov12 convert model=yolo12n.pt",
                       convert_command),
    "zoo": Command("zoo", "list the model zoo", zoo_command),
    "benchmark": Command("benchmark", "every format here, size/mAP/latency: yolov12 benchmark model=best.safetensors "
                         "data=sample imgsz=320 formats=torch,onnx,openvino", benchmark_command),
    "settings": Command("settings", "show or set settings: yolov12 settings datasets_dir=/data | reset",
                        settings_command),
}


def unavailable_command(name: str, missing: MissingExtraError) -> Command:
    """A command whose package needs an extra that is not installed: running it raises the one-line error."""

    def run(arguments: list[str]) -> int:
        raise missing

    return Command(name, f"(not installed) {missing}", run)


def available_commands() -> dict[str, Command]:
    """Core commands plus those registered by installed packages under the ``yolov12.commands`` entry point.

    A command whose package lacks its extra (``train-ray`` without Ray) stays listed; running it prints the one
    line that names the extra.
    """
    commands = dict(CORE_COMMANDS)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in commands:
            continue
        try:
            commands[entry.name] = entry.load()
        except MissingExtraError as exc:
            commands[entry.name] = unavailable_command(entry.name, exc)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the core CLI
            logger.warning("command '%s' from %s could not be loaded: %s", entry.name, entry.value, exc)
    return commands
