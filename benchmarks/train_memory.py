"""Peak resident memory (RSS) of a training run on CPU, ours against Ultralytics', same data, model and settings.

Both sides train the same architecture (our ``yolov12n-v1.yaml`` = Ultralytics ``yolo12n.yaml``) on the same files
(a temporary copy of the offline sample dataset, ``yolov12.data.sample_dataset.ensure_sample_detection``, so that
neither side's label cache lands in our dataset folder), with the same settings: ``--epochs`` (1), ``--imgsz`` (640),
``--batch`` (16), ``--fraction`` of the train images (the same count on both sides), workers 0, fp32 (amp off), plots
off, ``close_mosaic=0`` (the full mosaic pipeline, as in most epochs of a real run), device cpu, ``--threads`` (2)
torch threads (``torch.set_num_threads`` and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in the environment of both).
Validation is on for both: Ultralytics always validates after the final epoch (``val=False`` does not stop that) and
validates ``best.pt`` again in its ``final_eval``; ours validates once after the epoch; both at batch 2·``--batch``.
Ours goes through the facade, ``YOLO("yolov12n-v1.yaml").train(...)``; theirs through
``benchmarks/reference/ultralytics_train.py`` in the Ultralytics venv.

**How the peak is measured** (one method for both sides): each side runs as the only child of a fresh wrapper
process (``python -c`` with the standard library only, one wrapper per side, so the maximum is per side). After the
child exits, the wrapper reads ``resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss``: the kernel's high-water
mark of the resident set of the largest of its terminated, waited-for descendants (KiB on Linux), i.e. the training
process itself, imports, model, data and validation included. It is the peak of one process, not a sum: with workers
0 there are no loader processes, and short-lived helper processes a side may start are far smaller. The wrapper's own
~10 MB (inherited before ``exec``) is a floor common to both sides. Wall time is the child's, start to exit.

    .venv/bin/python benchmarks/train_memory.py --imgsz 640 --batch 16 --epochs 1 --fraction 1.0 \\
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from bench_common import copy_dataset, machine_line, ultralytics_version

from yolov12 import YOLO

REFERENCE = Path(__file__).parent / "reference" / "ultralytics_train.py"
OUR_MODEL, THEIR_MODEL = "yolov12n-v1.yaml", "yolo12n.yaml"

# Runs one side as its child and reports the child's peak RSS; standard library only, so it stays small.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
lines = done.stdout.strip().splitlines()
print(json.dumps({"returncode": done.returncode, "wall_s": wall, "last_line": lines[-1] if lines else "",
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""




def train_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings both sides train with (Ultralytics names)."""
    sizes = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, fraction=args.fraction)
    return {**sizes, "workers": 0, "amp": False, "plots": False, "val": True, "close_mosaic": 0, "device": "cpu"}


def side_commands(args: argparse.Namespace, data_yaml: Path, project: Path, used: int) -> dict[str, list[str]]:
    """The command of each side: ours re-runs this script as ``--child ours``, theirs the reference trainer."""
    sizes = {"--imgsz": args.imgsz, "--batch": args.batch, "--epochs": args.epochs, "--fraction": args.fraction}
    ours = {"--child": "ours", "--data": data_yaml, "--project": project, "--threads": args.threads, **sizes}
    theirs = {
        "--model": THEIR_MODEL,
        "--data": data_yaml,
        "--project": project,
        "--train-images": used,
        "--threads": args.threads,
    }
    settings = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in train_settings(args).items()]
    return {
        "ours": [sys.executable, str(Path(__file__).resolve()), *_flatten(ours)],
        "ultralytics": [args.ultralytics_python, str(REFERENCE), *_flatten(theirs), *settings, "seed=0"],
    }


def _flatten(options: dict[str, object]) -> list[str]:
    return [str(x) for item in options.items() for x in item]


def train_ours(args: argparse.Namespace) -> None:
    """The measured child for our side: one facade ``train`` call; prints a JSON line."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = YOLO(OUR_MODEL)
    model.train(
        data=args.data, project=args.project, name="ours", exist_ok=True, verbose=False, seed=0, **train_settings(args)
    )
    print(json.dumps({"torch": torch.__version__}), flush=True)


def measure(command: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``command`` under a fresh wrapper; returns its JSON (peak RSS, wall time, the child's last stdout line)."""
    with log.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, *command],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(f"{shlex.join(command)} failed ({result['returncode']}); end of its log:\n{_tail(log)}")
    return result


def _tail(log: Path, lines: int = 40) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])






def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the 96 train images (e.g. 0.2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ultralytics-python", help="the Ultralytics venv's python (required)")
    parser.add_argument("--workdir", type=Path, help="keep the data copy, runs and logs here (default: a temp folder)")
    parser.add_argument("--child", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "ours":
        train_ours(args)
        return 0
    if not args.ultralytics_python:
        parser.error("--ultralytics-python PATH is required (the python of the Ultralytics venv)")
    header = machine_line()
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "YOLO_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="train-memory-") as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        data_yaml, train_images = copy_dataset("sample", work / "data")
        used = max(1, round(train_images * args.fraction))
        commands = side_commands(args, data_yaml, work / "runs", used)
        results = {side: measure(command, env, work / f"{side}.log") for side, command in commands.items()}
        if args.workdir:
            print(f"data copy, runs and logs (ours.log, ultralytics.log) kept in {work}", file=sys.stderr)
    version = ultralytics_version(args.ultralytics_python)
    their_torch = json.loads(results["ultralytics"]["last_line"]).get("torch", "?")
    settings = ", ".join(f"{k}={v}" for k, v in train_settings(args).items())
    print(f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"Machine: {header}\n")
    print(
        f"Data: a copy of the sample dataset, {used} of {train_images} train images per epoch, validation on its "
        f"val split; both sides: {settings}, seed=0, {args.threads} threads\n"
    )
    print(
        f"Peak RSS: getrusage(RUSAGE_CHILDREN).ru_maxrss in a fresh wrapper process per side (ours first); "
        f"Ultralytics {version} with torch {their_torch} in its own venv\n"
    )
    rows = [
        (f"yolov12-platform ({OUR_MODEL})", results["ours"]),
        (f"Ultralytics {version} ({THEIR_MODEL})", results["ultralytics"]),
    ]
    theirs_kib = results["ultralytics"]["maxrss_kib"]
    print("| side | peak RSS MiB | wall s | peak RSS / Ultralytics' |")
    print("| --- | ---: | ---: | ---: |")
    for side, result in rows:
        print(
            f"| {side} | {result['maxrss_kib'] / 1024:.0f} | {result['wall_s']:.1f} | "
            f"{result['maxrss_kib'] / theirs_kib:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
