"""Sweep overhead: wall time of a Ray Tune sweep vs the sum of its trials' training time.

Runs one sweep through the real driver (``tune.sweep.run_sweep``: local Ray, ``--num-cpus`` CPUs, the trials'
concurrency from the sweep config) and reads what every trial reported each epoch:

- ``epoch_seconds``: training + validation of that epoch inside the engine (the useful work);
- ``setup_seconds``: trial start -> first epoch (process start, imports, dataset and model build).

Overhead ratio = sweep wall time / (sum of all trials' epoch seconds / concurrency); 1.0 would mean Ray, Tune,
checkpoint uploads and trial start-up cost nothing. MLflow tracking is off unless ``--tracking``.

    PYTHONPATH=. .venv/bin/python benchmarks/tune_overhead.py --config configs/sweeps/sample-asha.yaml --num-cpus 2 \
        search.num_samples=6 epochs=3 objective.metric=loss
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path

from tune.config import load_sweep_config
from tune.sweep import run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/sweeps/sample-asha.yaml")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--tracking", action="store_true", help="log to MLflow as a normal sweep would")
    parser.add_argument("overrides", nargs="*")
    arguments = parser.parse_args(argv)
    storage = tempfile.mkdtemp(prefix="tune-overhead-")
    overrides = [f"storage_path={storage}", "name=overhead", *arguments.overrides]
    if not arguments.tracking:
        overrides.append("tracking.enabled=false")
    sweep = load_sweep_config(arguments.config, overrides)
    result = run_sweep(sweep, ray_address="local", num_cpus=arguments.num_cpus)
    stats = json.loads((result.summary_dir / "summary.json").read_text())
    concurrency = min(sweep.search.max_concurrent, arguments.num_cpus)
    training = stats["trial_epoch_seconds"]
    report = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {arguments.num_cpus} CPUs for Ray",
        "trials": stats["trials"], "epochs_trained": stats["epochs_trained"],
        "stopped_early": stats["stopped_early"], "concurrency": concurrency,
        "sweep_wall_s": round(stats["sweep_seconds"], 1), "sum_trial_training_s": round(training, 1),
        "sum_trial_setup_s": round(stats["trial_setup_seconds"], 1),
        "overhead_ratio": round(stats["sweep_seconds"] / max(training / concurrency, 1e-9), 2),
        "setup_share_of_trial_time": round(stats["trial_setup_seconds"]
                                           / max(stats["trial_setup_seconds"] + training, 1e-9), 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
