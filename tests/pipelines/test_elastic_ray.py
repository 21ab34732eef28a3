"""An elastic Ray Train job on a real 2-node cluster: the group size comes from the cluster, the engine splits the
global batch by that size, and ``scaling.env`` reaches every worker process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import ray.cloudpickle

from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12.engine.callbacks import Callback

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get the callback below by value

PROCESS_GROUP_ENV = {"GLOO_SOCKET_IFNAME": "lo", "NCCL_DEBUG": "INFO", "TORCH_NCCL_BLOCKING_WAIT": "0"}


class WorldRecorder(Callback):
    """Writes, per rank, the world size and per-rank batch the engine trains with and the worker's variables."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def on_train_data(self, state, data) -> None:
        record = {"world_size": state.world_size, "rank_batch": data.train_loader.batch_size,
                  "env": {name: os.environ.get(name) for name in PROCESS_GROUP_ENV}}
        (Path(self.folder) / f"rank{state.rank}.json").write_text(json.dumps(record))


def test_an_elastic_range_trains_at_the_size_the_cluster_holds(two_node_cluster, tmp_path: Path,
                                                                tiny_train: dict) -> None:
    record = tmp_path / "record"
    record.mkdir()
    config = load_pipeline_config(None, {
        **tiny_train, "epochs": 1, "batch": 6, "val": False, "checkpoint.score_attribute": "fitness",
        "scaling.num_workers": [1, 3], "scaling.resources_per_worker": {"CPU": 1},
        "scaling.env": PROCESS_GROUP_ENV, "scaling.timeout_s": 300,
        "storage.storage_path": str(tmp_path / "ray"), "storage.output": str(tmp_path / "out"),
        "storage.name": "elastic", "tracking.enabled": False})
    result = run_pipeline(config, callbacks=[WorldRecorder(record)])

    ranks = sorted(record.glob("rank*.json"))
    assert len(ranks) == 2, "two 1-CPU nodes hold 2 of the at most 3 workers"
    for path in ranks:
        seen = json.loads(path.read_text())
        assert seen["world_size"] == 2 and seen["rank_batch"] == 3, seen  # the global 6 over the real 2 ranks
        assert seen["env"] == PROCESS_GROUP_ENV, seen
    assert result.metrics["epoch"] == 1 and result.last is not None
