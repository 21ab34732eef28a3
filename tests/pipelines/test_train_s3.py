"""Checkpoints, dataset and MLflow artifacts on S3 (moto server over HTTP); a failed run resubmitted resumes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import ray
import ray.cloudpickle
import yaml
from mlflow import MlflowClient

from pipelines.config import load_pipeline_config
from pipelines.tracking import metric_key
from pipelines.train import run_pipeline
from yolov12.data.sample_dataset import ensure_sample_detection
from yolov12.engine.callbacks import Callback
from yolov12.engine.evaluate import MAP_KEY

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get the callbacks below by value


class FailInEpoch2Once(Callback):
    """Raises on rank 0 at the start of epoch 2 the first time (the marker file remembers)."""

    def __init__(self, marker: Path, starts: Path) -> None:
        self.marker, self.starts = str(marker), str(starts)

    def on_fit_start(self, state) -> None:
        with open(self.starts, "a") as handle:
            handle.write(f"{state.epoch}\n")

    def on_epoch_start(self, state) -> None:
        if state.rank == 0 and state.epoch == 1 and not Path(self.marker).exists():
            Path(self.marker).touch()
            raise RuntimeError("simulated failure in epoch 2")


def upload_sample(s3, prefix: str) -> str:
    """The sample detection dataset under ``s3://bucket/prefix/`` with a data.yaml relative to it."""
    local = ensure_sample_detection().parent
    client = s3.client()
    for path in sorted(p for p in local.rglob("*") if p.is_file() and p.parent.name in ("train", "val")):
        client.upload_file(str(path), s3.bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    names = yaml.safe_load((local / "data.yaml").read_text())["names"]
    description = {"path": ".", "train": "images/train", "val": "images/val", "names": names}
    client.put_object(Bucket=s3.bucket, Key=f"{prefix}/data.yaml", Body=yaml.safe_dump(description).encode())
    return f"s3://{s3.bucket}/{prefix}/data.yaml"


def test_s3_run_fails_then_resumes_with_the_same_name(mlflow_tracking, tmp_path: Path, tiny_train: dict,
                                                      monkeypatch) -> None:
    s3 = mlflow_tracking.s3
    monkeypatch.setenv("YOLOV12_CACHE", str(tmp_path / "cache"))  # workers inherit it: every download is fresh
    data = upload_sample(s3, f"datasets/{tmp_path.name}")
    name, model_name = f"s3-{tmp_path.name}"[:60], f"yolov12n-ray-{tmp_path.name}"[:60]
    config = load_pipeline_config(None, {
        **tiny_train, "data": data, "epochs": 2, "fraction": 0.25, "scaling.num_workers": 1,
        "storage.storage_path": f"s3://{s3.bucket}/ray", "storage.output": str(tmp_path / "out"),
        "storage.name": name, "failure.max_failures": 0, "tracking.experiment": "ray-train-tests",
        "tracking.registered_model": model_name})
    marker, starts = tmp_path / "failed", tmp_path / "starts.txt"
    ray.init(address="local", num_cpus=2)  # after the S3 environment is set: the workers inherit it
    try:
        with pytest.raises(Exception, match="simulated failure in epoch 2"):
            run_pipeline(config, callbacks=[FailInEpoch2Once(marker, starts)])
        stored = s3.keys(f"ray/{name}/")
        assert any("checkpoint_epoch_0001" in k and k.endswith("last.state.pt") for k in stored), stored
        assert not any("checkpoint_epoch_0002" in k for k in stored)

        result = run_pipeline(config, callbacks=[FailInEpoch2Once(marker, starts)])
    finally:
        ray.shutdown()
    assert result.resumed and starts.read_text().split() == ["0", "1"]  # the second submission began at epoch 2
    rows = (result.run_dir / "results.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2]
    stored = s3.keys(f"ray/{name}/")
    assert any("checkpoint_final_epoch_0002" in k and k.endswith("best.safetensors") for k in stored)

    client = MlflowClient(mlflow_tracking.url)  # one MLflow run for both submissions, finished, registered
    experiment = client.get_experiment_by_name("ray-train-tests")
    runs = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED" and runs[0].info.run_id == result.run_id
    assert [m.step for m in client.get_metric_history(result.run_id, metric_key(MAP_KEY))] == [1, 2]
    assert runs[0].data.params["train.data.data"] == data
    version = client.get_model_version_by_alias(model_name, "candidate")
    assert version.version == result.model_version and version.run_id == result.run_id
    assert any(k.startswith(f"{mlflow_tracking.artifact_prefix}/") and k.endswith("best.safetensors")
               for k in s3.keys(mlflow_tracking.artifact_prefix))
