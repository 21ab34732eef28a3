"""What a finished sweep leaves for people: the trial table, the best config as training YAML, and plots.

Inputs are plain rows (:class:`TrialRow`, built from Tune's ``ResultGrid`` by :func:`trial_rows`), so everything
here is testable without Ray.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import PipelineConfig
from tune.space import POLICY_PREFIX, plain, trial_train_config
from yolov12.config.train import TrainConfig
from yolov12.data.augment.policy import AugmentPolicy

BEST_TRAIN_FILE = "best_train.yaml"
BEST_PIPELINE_FILE = "best_pipeline.yaml"
BEST_POLICY_FILE = "best_policy.yaml"


@dataclass
class TrialRow:
    """One trial: its id, sampled values, per-epoch objective values, and how it ended."""

    trial_id: str
    config: dict[str, Any]
    epochs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the objective metric at each reported epoch
    epoch_seconds: float = 0.0  # training + validation time summed over the trial's epochs
    setup_seconds: float = 0.0  # trial start -> first epoch (process, imports, data, model)
    error: str | None = None

    def best(self, mode: str) -> float | None:
        finite = [v for v in self.values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if mode == "max" else min(finite)

    def status(self, max_epochs: int) -> str:
        if self.error:
            return "ERROR"
        return "STOPPED" if (max(self.epochs, default=0) < max_epochs) else "DONE"


def trial_rows(results: Any, metric: str) -> list[TrialRow]:
    """Rows from a Tune ``ResultGrid`` (per-epoch values from each trial's ``metrics_dataframe``)."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        frame = result.metrics_dataframe
        row = TrialRow(str(metrics.get("trial_id") or Path(str(result.path)).name), dict(result.config or {}),
                       error=str(result.error).strip().splitlines()[0] if result.error else None)
        if frame is not None and not frame.empty and "epoch" in frame and metric in frame:
            frame = frame.drop_duplicates(subset="epoch", keep="last")  # a final report repeats the last epoch
            row.epochs = [int(e) for e in frame["epoch"]]
            row.values = [float(v) for v in frame[metric]]
            if "epoch_seconds" in frame:
                row.epoch_seconds = float(frame["epoch_seconds"].fillna(0).sum())
            if "setup_seconds" in frame:
                row.setup_seconds = float(frame.drop_duplicates(subset="setup_seconds")["setup_seconds"].sum())
        rows.append(row)
    return rows


def sort_rows(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first; trials without a value last."""
    def key(row: TrialRow) -> tuple[int, float]:
        best = row.best(mode)
        return (1, 0.0) if best is None else (0, -best if mode == "max" else best)

    return sorted(rows, key=key)


def _fmt(value: Any) -> str:
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[TrialRow], metric: str, mode: str, max_epochs: int) -> str:
    """A fixed-width table, best first: trial, status, epochs, best metric, then every searched key."""
    keys = sorted({k for row in rows for k in row.config})
    header = ["trial", "status", "epochs", f"{metric} ({mode})", *keys]
    body = [[row.trial_id, row.status(max_epochs), str(max(row.epochs, default=0)),
             "-" if row.best(mode) is None else f"{row.best(mode):.4f}", *(_fmt(row.config.get(k, "")) for k in keys)]
            for row in sort_rows(rows, mode)]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [header, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def write_table_csv(rows: list[TrialRow], metric: str, mode: str, max_epochs: int, path: Path) -> Path:
    keys = sorted({k for row in rows for k in row.config})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial_id", "status", "epochs", metric, "epoch_seconds", "setup_seconds", *keys])
        for row in sort_rows(rows, mode):
            writer.writerow([row.trial_id, row.status(max_epochs), max(row.epochs, default=0), row.best(mode),
                             round(row.epoch_seconds, 3), round(row.setup_seconds, 3),
                             *(plain(row.config.get(k, "")) for k in keys)])
    return path


def write_best_config(values: dict[str, Any], pipeline: PipelineConfig, policy: AugmentPolicy | None,
                      out_dir: Path, sweep_name: str) -> dict[str, Path]:
    """The best trial's config as ready-to-use files.

    - ``best_train.yaml``: flat training keys (``TrainConfig.from_overrides``, ``yolov12 train cfg=...``);
    - ``best_pipeline.yaml``: the base pipeline config with this training config (``python -m pipelines.train``);
    - ``best_policy.yaml``: the tuned AutoAlbument-Lite policy (when policy keys were searched), referenced by path.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    train = trial_train_config(pipeline.train, policy, values, out_dir / BEST_POLICY_FILE)
    train = train.updated(name=f"{sweep_name}-best", resume=False, exist_ok=False)
    flat = {k: plain(v) for k, v in train.to_flat().items()}
    header = (f"# Best configuration of sweep '{sweep_name}' (searched: {', '.join(sorted(values))}).\n"
              "# yolov12 train cfg=best_train.yaml model=... | TrainConfig.from_overrides(yaml.safe_load(...))\n")
    paths = {"train": out_dir / BEST_TRAIN_FILE, "pipeline": out_dir / BEST_PIPELINE_FILE}
    paths["train"].write_text(header + yaml.safe_dump(flat, sort_keys=False))
    nested = pipeline.model_dump(mode="json")
    nested["train"] = flat
    nested["storage"]["name"] = None  # a new Ray Train run, not a resume of an earlier one
    paths["pipeline"].write_text(header.replace("yolov12 train cfg=best_train.yaml model=...",
                                                "python -m pipelines.train --config best_pipeline.yaml")
                                 + yaml.safe_dump(nested, sort_keys=False))
    if any(k.startswith(POLICY_PREFIX) for k in values):
        paths["policy"] = out_dir / BEST_POLICY_FILE
    TrainConfig.from_overrides(yaml.safe_load(paths["train"].read_text()))  # the file must load as written
    return paths


def plot_metric_vs_epoch(rows: list[TrialRow], metric: str, path: Path) -> Path:
    """One line per trial: the objective metric at each epoch (early-stopped trials end early)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if row.epochs:
            axes.plot(row.epochs, row.values, marker="o", label=row.trial_id)
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per epoch, all trials")
    if len(rows) <= 12:
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_parallel_coordinates(rows: list[TrialRow], metric: str, mode: str, path: Path) -> Path:
    """Parallel coordinates: each searched key scaled to [0, 1] (choices by index), lines coloured by the metric."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    keys = sorted({k for row in rows for k in row.config})
    scored = [row for row in rows if row.best(mode) is not None]
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * (len(keys) + 1)), 4.5))
    columns = {key: _scaled([plain(row.config.get(key)) for row in scored]) for key in keys}
    scores = [row.best(mode) for row in scored]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    colours = plt.get_cmap("viridis")
    for index, score in enumerate(scores):
        shade = 0.5 if high == low else (score - low) / (high - low)
        ys = [columns[key][index] for key in keys] + [shade]
        axes.plot(range(len(keys) + 1), ys, color=colours(shade if mode == "max" else 1 - shade), alpha=0.8)
    axes.set_xticks(range(len(keys) + 1), [*keys, metric], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("scaled value (low -> high)")
    axes.set_title(f"searched values vs {metric} (yellow = better)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _scaled(values: list[Any]) -> list[float]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and values:
        low, high = min(values), max(values)
        return [0.5 if high == low else (v - low) / (high - low) for v in values]
    levels = sorted({str(v) for v in values})
    return [levels.index(str(v)) / max(1, len(levels) - 1) for v in values]
