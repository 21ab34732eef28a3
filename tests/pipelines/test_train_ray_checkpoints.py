"""What a 2-worker Ray Train job uploads: each epoch the resume unit of the run folder, at the end the whole folder.

The run folder grows with ``save_period`` (one ``epochN.safetensors`` per epoch here) and with plots; every epoch's
checkpoint is read back by every rank on a restart, so it must hold only what a resume needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.checkpoint_transfer import RESUME_UNIT
from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12.engine.checkpoint import load_resume_state

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_epoch_checkpoints_hold_the_resume_unit_and_the_final_one_the_run(two_node_cluster, tmp_path: Path,
                                                                          tiny_train: dict) -> None:
    values = {**tiny_train, "epochs": 2, "save_period": 1, "scaling.num_workers": 2,
              "scaling.resources_per_worker": {"CPU": 1}, "scaling.placement_strategy": "SPREAD",
              "storage.storage_path": str(tmp_path / "ray"), "storage.output": str(tmp_path / "out"),
              "storage.name": "unit", "tracking.enabled": False, "checkpoint.num_to_keep": None}
    run_pipeline(load_pipeline_config(None, values))
    folders = {p.name.split("_2")[0]: p for p in (tmp_path / "ray/unit").iterdir() if p.is_dir() and "epoch_" in p.name}
    assert set(folders) == {"checkpoint_epoch_0001", "checkpoint_epoch_0002", "checkpoint_final_epoch_0002"}, folders
    for epoch in (1, 2):
        folder = folders[f"checkpoint_epoch_{epoch:04d}"]
        assert _files(folder) == {*RESUME_UNIT, f"weights/epoch{epoch}.safetensors"}, folder
        assert load_resume_state(folder)["epoch"] == epoch  # the manifest and the state agree
    assert {"weights/epoch1.safetensors", "weights/epoch2.safetensors", *RESUME_UNIT} <= _files(
        folders["checkpoint_final_epoch_0002"])
