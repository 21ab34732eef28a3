"""Gain of an AutoAlbument-Lite policy over the default augmentation: same training settings, several seeds.

Both arms train with the training settings of a sweep config (``--sweep-config``: its base pipeline config plus its
``train:`` keys: model, data, epochs, imgsz, batch, fraction, optimiser...), so the policy is measured under the
budget it was searched with; the only difference between the arms is ``augment_policy`` (none, or ``--policy``, a
file or shipped name). Each (arm, seed) is one training run in its own process; its final model is scored by the
engine's evaluator on the validation split. Every result is appended to ``--results`` (JSON lines), and the table
(mean ± sd over seeds, and the paired per-seed gain) is printed from all rows in that file, so the arms may run in
separate invocations (``--arms default`` then ``--arms policy``) with the same settings.

    PYTHONPATH=. .venv/bin/python benchmarks/policy_gain.py --sweep-config configs/sweeps/sample-photo-policy.yaml \
        --policy sample-photo-best --seeds 0 1 2 --jobs 3 --results runs/policy_gain.jsonl
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench_common import machine_line

MAP, MAP50 = "metrics/mAP50-95(B)", "metrics/mAP50(B)"
ARMS = ("default", "policy")


def training_settings(sweep_config: str) -> tuple[str, dict[str, Any]]:
    """(model, flat training keys) of the sweep's trials, before any searched value is applied."""
    from tune.config import load_sweep_config  # noqa: PLC0415

    resolved = load_sweep_config(sweep_config).resolve()
    return resolved.pipeline.model, resolved.train.to_flat()


def train_one(model_name: str, settings: dict[str, Any], arm: str, policy: str | None, seed: int, threads: int,
              work: str) -> dict[str, Any]:
    """Train one arm with one seed and score its final model (runs in a fresh process)."""
    import torch  # noqa: PLC0415

    from yolov12 import YOLO  # noqa: PLC0415

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    keys = {**settings, "seed": seed, "augment_policy": policy if arm == "policy" else None, "project": work,
            "name": f"{arm}-{seed}", "exist_ok": True, "plots": False, "verbose": False, "val": False}
    model = YOLO(model_name)
    start = time.perf_counter()
    model.train(**keys)
    wall = time.perf_counter() - start
    metrics = model.val(data=settings["data"], imgsz=settings["imgsz"], batch=32)
    return {"arm": arm, "seed": seed, "policy": keys["augment_policy"], "mAP50-95": float(metrics[MAP]),
            "mAP50": float(metrics[MAP50]), "wall_s": wall, "epochs": settings["epochs"],
            "imgsz": settings["imgsz"], "fraction": settings["fraction"], "data": settings["data"]}


def spread(values: list[float]) -> str:
    """``mean ± sd`` (sample standard deviation) with 4 decimals."""
    mean = statistics.mean(values)
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{mean:.4f}"


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown table per arm plus the paired gain (policy - default, seeds run by both arms)."""
    lines = ["| arm | policy | seeds | mAP50-95 (mean ± sd) | mAP50 (mean ± sd) | per seed mAP50-95 |",
             "|---|---|---:|---:|---:|---|"]
    by_arm = {arm: sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["seed"]) for arm in ARMS}
    for arm, arm_rows in by_arm.items():
        if arm_rows:
            lines.append(f"| {arm} | {arm_rows[0]['policy'] or '-'} | {len(arm_rows)} | "
                         f"{spread([r['mAP50-95'] for r in arm_rows])} | {spread([r['mAP50'] for r in arm_rows])} | "
                         f"{', '.join(format(r['mAP50-95'], '.4f') for r in arm_rows)} |")
    default = {r["seed"]: r["mAP50-95"] for r in by_arm["default"]}
    gains = [r["mAP50-95"] - default[r["seed"]] for r in by_arm["policy"] if r["seed"] in default]
    if gains:
        noise = max(statistics.stdev([r["mAP50-95"] for r in by_arm[a]]) if len(by_arm[a]) > 1 else 0.0
                    for a in ARMS)
        verdict = ("positive and larger than the seed-to-seed spread" if statistics.mean(gains) > noise
                   else "not above the seed-to-seed spread (within noise)")
        lines.append(f"\nPaired gain (policy - default) over {len(gains)} seeds: {spread(gains)} mAP50-95; "
                     f"largest per-arm sd {noise:.4f}: {verdict}.")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep-config", default="configs/sweeps/sample-photo-policy.yaml")
    parser.add_argument("--policy", default="sample-photo-best", help="policy file or shipped name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--results", type=Path, default=Path("runs/policy_gain.jsonl"))
    parser.add_argument("--report-only", action="store_true", help="print the table of --results and exit")
    args = parser.parse_args()
    if not args.report_only:
        print(f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`\n")
        print(f"Machine: {machine_line()}\n")
        model_name, settings = training_settings(args.sweep_config)
        work = tempfile.mkdtemp(prefix="policy-gain-")
        args.results.parent.mkdir(parents=True, exist_ok=True)
        runs = [(arm, seed) for seed in args.seeds for arm in args.arms]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(train_one, model_name, settings, arm, args.policy, seed, args.threads, work)
                       for arm, seed in runs]
            for future in futures:
                row = future.result()
                print(json.dumps(row), flush=True)
                with args.results.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
    print(report(read_rows(args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
