"""Ray Train on a real 2-node cluster: DDP over gloo with per-rank shards, and recovery from a killed worker."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import ray.cloudpickle
import ray.train
import torch
from safetensors.torch import load_file
from support import fault_callbacks
from support.fault_callbacks import AttemptRecorder, KillRank1InEpoch2

from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12.engine.callbacks import Callback
from yolov12.engine.checkpoint import load_resume_state
from yolov12.engine.ema import unwrap
from yolov12.engine.event_callbacks import UltralyticsEventCallbacks

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get the callbacks below by value
ray.cloudpickle.register_pickle_by_value(fault_callbacks)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parameters_digest(model: torch.nn.Module) -> str:
    """Hash of the trainable parameters (BatchNorm running statistics are per rank between DDP broadcasts)."""
    digest = hashlib.sha256()
    for key, value in sorted(model.named_parameters()):
        digest.update(key.encode() + value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class RankRecorder(Callback):
    """Writes, per rank: its node, its shard of epoch 1, the accumulation plan, its final model and saved weights."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def _write(self, state, name: str, value) -> None:
        path = Path(self.folder) / f"rank{state.rank}-{name}.json"
        path.write_text(json.dumps(value))

    def on_train_data(self, state, data) -> None:
        import ray

        data.sampler.set_epoch(0)
        records = data.train_loader.dataset.records
        self._write(state, "shard", {"node": ray.get_runtime_context().get_node_id(), "world_size": state.world_size,
                                     "accumulate": state.accumulate, "images": len(records),
                                     "rank_batch": data.train_loader.batch_size,
                                     "paths": [str(records[i].path) for i in data.sampler]})

    def on_checkpoint(self, state, paths) -> None:
        self._write(state, f"saved-epoch{state.epoch + 1}", {k: sha256(v) for k, v in paths.items() if k != "state"})

    def on_fit_end(self, state, metrics) -> None:
        self._write(state, "final-model", parameters_digest(unwrap(state.model)))


def pipeline(tmp_path: Path, tiny_train: dict, name: str, **overrides):
    values = {**tiny_train, "scaling.num_workers": 2, "scaling.resources_per_worker": {"CPU": 1},
              "scaling.placement_strategy": "SPREAD", "storage.storage_path": str(tmp_path / "ray"),
              "storage.output": str(tmp_path / "out"), "storage.name": name, "tracking.enabled": False,
              **overrides}
    return load_pipeline_config(None, values)


def result_epochs(run_dir: Path) -> list[int]:
    rows = (run_dir / "results.csv").read_text().strip().splitlines()[1:]
    return [int(row.split(",")[0]) for row in rows]


def test_two_nodes_train_ddp_on_disjoint_shards(two_node_cluster, tmp_path: Path, tiny_train: dict) -> None:
    record = tmp_path / "record"
    record.mkdir()
    config = pipeline(tmp_path, tiny_train, "ddp", epochs=2)
    result = run_pipeline(config, callbacks=[RankRecorder(record)])

    shards = [json.loads((record / f"rank{r}-shard.json").read_text()) for r in (0, 1)]
    assert shards[0]["node"] != shards[1]["node"], "the two workers must run on the two nodes"
    first, second = set(shards[0]["paths"]), set(shards[1]["paths"])
    assert first and second and not first & second, "ranks must train on different images"
    assert len(first | second) == shards[0]["images"]  # together they cover the (fraction of the) split
    nbs, batch = config.train.optim.nbs, config.train.data.batch
    # batch is global (Ultralytics' meaning): each of the 2 ranks loads half of it, and steps are planned for all of it
    assert all(s["world_size"] == 2 and s["rank_batch"] == batch // 2 and s["accumulate"] == max(round(nbs / batch), 1)
               for s in shards)

    finals = [json.loads((record / f"rank{r}-final-model.json").read_text()) for r in (0, 1)]
    assert finals[0] == finals[1], "DDP must leave both ranks with the same weights"
    saved = json.loads((record / "rank0-saved-epoch2.json").read_text())
    assert not list(record.glob("rank1-saved-*")), "only rank 0 writes checkpoints"
    assert sha256(result.last) == saved["last"]
    best_epoch = max(int(p.stem.split("epoch")[1]) for p in record.glob("rank0-saved-epoch*.json")
                     if "best" in json.loads(p.read_text()))
    assert sha256(result.best) == json.loads((record / f"rank0-saved-epoch{best_epoch}.json").read_text())["best"]
    assert result_epochs(result.run_dir) == [1, 2]
    assert result.metrics["epoch"] == 2 and "mAP50-95" in result.metrics and not result.resumed


def test_killed_worker_restarts_from_the_epoch_1_checkpoint(two_node_cluster, tmp_path: Path,
                                                            tiny_train: dict) -> None:
    marker, attempts = tmp_path / "killed", tmp_path / "attempts.txt"
    config = pipeline(tmp_path, tiny_train, "fault", epochs=3,
                      **{"failure.max_failures": 1, "checkpoint.num_to_keep": None})
    result = run_pipeline(config, callbacks=[KillRank1InEpoch2(marker), AttemptRecorder(attempts)])

    assert marker.exists(), "rank 1 was never killed"
    starts = sorted(attempts.read_text().split("\n")[:-1])
    assert starts == ["0 0", "0 1", "1 0", "1 1"], starts  # both ranks: fresh start, then resume at epoch 2
    assert result_epochs(result.run_dir) == [1, 2, 3]
    assert result.metrics["epoch"] == 3

    checkpoints = sorted((p for p in (tmp_path / "ray/fault").iterdir() if p.is_dir() and "epoch_" in p.name),
                         key=lambda p: p.name.replace("final_", ""))
    epochs = [int(p.name.split("epoch_")[1][:4]) for p in checkpoints]
    assert sorted(epochs) == [1, 2, 3, 3], [p.name for p in checkpoints]  # every epoch and the final one
    for folder in checkpoints:  # intact: every file loads, each resume state is at the epoch its name says
        saved = load_resume_state(folder)
        assert saved["epoch"] == int(folder.name.split("epoch_")[1][:4])
        assert load_file(folder / "weights/last.safetensors")
        assert not list(folder.rglob("*.tmp")), "no temporary file may be left in a checkpoint"
    assert sha256(result.last) == sha256(checkpoints[-1] / "weights/last.safetensors")


PLACEMENT_GROUP_REMOVED = "placement group was removed"


class EventFile:
    """An Ultralytics-style ``fn(trainer)``: appends ``event world_size has_val_metrics`` to ``rank<r>.txt``."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def __call__(self, trainer) -> None:
        with open(Path(self.folder) / f"rank{trainer.rank}.txt", "a") as handle:
            handle.write(f"{trainer.event} {trainer.world_size} {int(bool(trainer.metrics))}\n")


def test_event_callbacks_fire_on_every_rank(two_node_cluster, tmp_path: Path, tiny_train: dict) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    events = ["on_train_start", "on_train_epoch_end", "on_fit_epoch_end", "on_model_save", "on_train_end"]
    callbacks = UltralyticsEventCallbacks({event: [EventFile(folder)] for event in events})
    for attempt in (1, 2):
        config = pipeline(tmp_path / f"attempt{attempt}", {**tiny_train, "fraction": 0.17}, "events", epochs=1)
        try:
            run_pipeline(config, callbacks=[callbacks])
            break
        except ray.train.TrainingFailedError as exc:
            # Ray Train's placement-group cleaner asks the State API (address "auto") whether the controller lives;
            # with another Ray instance on the machine (a second pytest-xdist worker) it has answered "dead" for a
            # live run and removed its placement group. Not this test's subject: run it once more from scratch.
            if attempt == 2 or PLACEMENT_GROUP_REMOVED not in str(exc):
                raise
            for written in folder.iterdir():
                written.unlink()

    fired = {rank: (folder / f"rank{rank}.txt").read_text().splitlines() for rank in (0, 1)}
    # every event on both ranks (Ultralytics drops callbacks under DDP); validation metrics reach rank 1 too
    expected = ["on_train_start 2 0", "on_train_epoch_end 2 1", "on_fit_epoch_end 2 1", "on_train_end 2 1"]
    assert fired[1] == expected
    assert fired[0] == [*expected[:3], "on_model_save 2 1", expected[3]]  # only the rank writing checkpoints saves
