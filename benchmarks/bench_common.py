"""What several benchmark scripts share: the machine line printed with every table, a clean dataset copy for the
Ultralytics side, and the Ultralytics version of the reference venv.

Scripts run as ``python benchmarks/<script>.py``, so this folder is on ``sys.path`` and they ``import bench_common``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch
import yaml

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def add_engine_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every engine-timing script shares: model, image size, threads, timed and warm-up runs."""
    parser.add_argument("--model", default="yolov12n")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)


def machine_line() -> str:
    """CPU model and the SIMD features that matter here, cores, RAM, load average now, Python and torch versions."""
    cpu, flags, memory = platform.processor() or platform.machine(), set(), ""
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if meminfo.exists():
        total = next(line for line in meminfo.read_text().splitlines() if line.startswith("MemTotal"))
        memory = f", {int(total.split()[1]) / 2**20:.0f} GiB RAM"
    features = "/".join(f for f in CPU_FEATURES if f in flags) or "no AVX2"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu} ({features}), {os.cpu_count()} logical cores{memory} (load average {load} at start), "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def resolve_data_yaml(data: str) -> Path:
    """A built-in dataset name (``sample``, ``sample-photo``) or a data.yaml path -> the local data.yaml."""
    from yolov12.data.builtin import BUILTIN_DATASETS, build  # noqa: PLC0415 - only scripts that need it pay

    return Path(build(data)) if data in BUILTIN_DATASETS else Path(data)


def copy_dataset(data: str, destination: Path) -> tuple[Path, int]:
    """Images and labels of ``data`` (no cache files) copied under ``destination``; returns the copy's data.yaml and
    its number of train images. Ultralytics writes ``labels/*.cache`` beside the labels: it gets the copy."""
    data_yaml = resolve_data_yaml(data)
    config = yaml.safe_load(data_yaml.read_text())
    root = Path(config.get("path") or data_yaml.parent)
    copy = destination / root.name
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.cache", "*.cache.json", ".complete"))
    config["path"] = str(copy)
    (copy / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    train_images = sum(1 for f in (copy / config["train"]).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    return copy / "data.yaml", train_images


def ultralytics_version(python: str) -> str:
    """The ``ultralytics`` version installed for interpreter ``python`` (the separate reference venv)."""
    code = "import importlib.metadata as m; print(m.version('ultralytics'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
