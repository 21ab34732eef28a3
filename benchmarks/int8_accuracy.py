"""Accuracy of the int8 OpenVINO export against the fp32 one, on the validation split of the sample dataset.

    .venv/bin/python benchmarks/int8_accuracy.py --weights runs/train/exp/weights/best.safetensors --imgsz 320
    .venv/bin/python benchmarks/int8_accuracy.py --epochs 35 --imgsz 160 --variants   # trains yolov12n first

Without ``--weights`` it first trains ``--model`` on ``--data`` (the recipe of benchmarks/train_compare.py). Then it
exports the checkpoint to OpenVINO fp32 and int8 (``export(format="openvino", int8=True, data=--data)``: NNCF
calibrated on the train split) at ``--imgsz``, and scores the torch model and both IRs with the project's
evaluator (``yolov12.engine.evaluate.evaluate_detection``, pycocotools) on the same letterboxed validation batches,
each IR through its OpenVINO engine. ``--variants`` adds the int8 settings the export does not use, quantised from
the same fp32 IR: the detection post-processing quantised too, and NNCF's transformer model type flipped.

Prints a Markdown table (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import openvino as ov
import torch

from yolov12 import YOLO
from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.evaluate import MAP50_KEY, MAP_KEY, evaluate_detection
from yolov12.engines import load_engine
from yolov12.export.api import head_scope
from yolov12.export.calibration import CalibrationImages
from yolov12.export.openvino import find_ir, read_openvino_metadata, write_metadata
from yolov12.export.openvino_int8 import TRANSFORMER_DEFAULT, quantize_openvino


class EngineModule(torch.nn.Module):
    """An engine behind the ``model(images) -> tensor`` interface the evaluator calls (eval/train switch nothing)."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.engine(images))


def train(args: argparse.Namespace, work: Path) -> Path:
    torch.manual_seed(0)
    model = YOLO(f"{args.model}.yaml")
    model.train(data=args.data, epochs=args.epochs, imgsz=args.imgsz, batch=16, workers=0, optimizer="AdamW",
                lr0=0.004, warmup_epochs=1, close_mosaic=5, seed=0, amp=False, project=str(work), name="train",
                verbose=False, plots=False)
    return Path(model.trainer_result.best)


def variant(fp32_folder: Path, args: argparse.Namespace, out: Path, **settings) -> Path:
    """Quantise the fp32 IR with other settings; the folder loads like an exported one."""
    metadata = read_openvino_metadata(fp32_folder)
    images = CalibrationImages.from_data(args.data, metadata.imgsz, metadata.task, metadata.stride)
    quantized = quantize_openvino(ov.Core().read_model(str(find_ir(fp32_folder))), images, **settings)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / f"{out.name}.xml"))
    write_metadata(out, metadata.replace(int8=True))
    return out


def score(model: torch.nn.Module, names: dict[int, str], args: argparse.Namespace) -> dict[str, float]:
    loader = build_val_loader(args.data, "detect", args.imgsz, args.batch, 0, split="val")
    metrics = evaluate_detection(model, loader, names, torch.device("cpu"))
    return {"mAP50-95": round(metrics[MAP_KEY], 4), "mAP50": round(metrics[MAP50_KEY], 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="a trained .safetensors (default: train one first)")
    parser.add_argument("--model", default="yolov12n", help="architecture trained when --weights is not given")
    parser.add_argument("--data", default="sample", help="dataset: calibration on train, scores on val")
    parser.add_argument("--epochs", type=int, default=35)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8, help="validation batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", action="store_true", help="also score the int8 settings the export does not use")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scratch = tempfile.TemporaryDirectory(prefix="int8-accuracy-")
    work = Path(args.workdir or scratch.name)
    work.mkdir(parents=True, exist_ok=True)
    weights = Path(args.weights) if args.weights else train(args, work)
    yolo = YOLO(str(weights))
    report: dict = {"weights": str(weights), "data": args.data, "imgsz": args.imgsz, "rows": {}, "export_seconds": {}}

    started = time.perf_counter()
    fp32 = yolo.export(format="openvino", imgsz=args.imgsz, output=str(work / "fp32"))
    report["export_seconds"]["fp32"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    int8 = yolo.export(format="openvino", imgsz=args.imgsz, int8=True, data=args.data, output=str(work / "int8"))
    report["export_seconds"]["int8"] = round(time.perf_counter() - started, 1)
    folders = {"openvino fp32": fp32, f"openvino int8 (export default, transformer={TRANSFORMER_DEFAULT})": int8}
    if args.variants:
        scope = head_scope(yolo.model)
        folders["openvino int8, post-processing quantised too"] = variant(
            fp32, args, work / "int8_all", head_scope=None)
        folders[f"openvino int8, transformer={not TRANSFORMER_DEFAULT}"] = variant(
            fp32, args, work / "int8_model_type", head_scope=scope, transformer=not TRANSFORMER_DEFAULT)

    report["rows"]["torch fp32"] = score(yolo.model.eval(), yolo.names, args)
    for name, folder in folders.items():
        report["rows"][name] = score(EngineModule(load_engine(folder, threads=args.threads)), yolo.names, args)
    scratch.cleanup()
    print(json.dumps(report, indent=1) if args.json else markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = [f"{report['weights']} on {report['data']} val at {report['imgsz']} px; export seconds "
             f"{report['export_seconds']}", "", "| model | mAP50-95 | mAP50 |", "|---|---:|---:|"]
    lines += [f"| {name} | {row['mAP50-95']:.4f} | {row['mAP50']:.4f} |" for name, row in report["rows"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
