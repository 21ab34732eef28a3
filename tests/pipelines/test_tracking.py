"""Tracking a training job in MLflow: a real ``mlflow server`` with artifacts on moto S3, and the embedded default."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from support.training_runs import DATASET_SOURCE, SYSTEM, TEACHERS, digest_for, tracked_run, training_params

from pipelines.registry import ModelNotFoundError, promote, resolve_model_uri
from pipelines.tracking import (
    TRUNCATED,
    TrackingConfig,
    code_version,
    finish_training_run,
    flatten_params,
    metric_key,
    resolve_tracking_uri,
    start_training_run,
)
from yolov12.weights import load_weights


def test_metric_keys_and_params_follow_mlflow_limits() -> None:
    assert metric_key("metrics/mAP50-95(B)") == "metrics/mAP50-95_B"
    assert metric_key("train/box_loss") == "train/box_loss"
    flat = flatten_params({"train": {"optim": {"lr0": 0.01}, "names": ["a", "b"]}, "long": "x" * 7000,
                           "empty": {}, "none": None})
    assert flat["train.optim.lr0"] == "0.01"
    assert json.loads(flat["train.names"]) == ["a", "b"]
    assert flat["empty"] == "{}" and flat["none"] == "None"
    assert len(flat["long"]) == 6000 and flat["long"].endswith(TRUNCATED)


def test_code_version_outside_git_and_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOLOV12_GIT_SHA", raising=False)
    assert code_version(tmp_path) == {"commit": "unknown"}  # an uploaded job folder has no .git
    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert code_version(repo)["commit"] == head
    monkeypatch.setenv("YOLOV12_GIT_SHA", "abc123")
    assert code_version(tmp_path)["commit"] == "abc123"


def test_tracking_uri_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(TrackingConfig()) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert resolve_tracking_uri(TrackingConfig(tracking_uri="sqlite:///rel/x.db")) == \
        f"sqlite:///{tmp_path.resolve()}/rel/x.db"  # absolute, so Ray workers elsewhere hit the same file
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert TrackingConfig().resolved().tracking_uri == "http://127.0.0.1:1"
    assert resolve_tracking_uri(TrackingConfig(tracking_uri="http://other:5000")) == "http://other:5000"


@pytest.mark.integration
def test_run_on_server_logs_everything_and_artifacts_land_in_s3(mlflow_tracking, tmp_path: Path) -> None:
    name = f"track-{uuid.uuid4().hex[:8]}"
    tracking = TrackingConfig(experiment=name, registered_model=name).resolved()
    digest = digest_for(name)
    run = tracked_run(tmp_path, tracking, run_name="job-1", digest=digest)
    client = MlflowClient(mlflow_tracking.url)
    logged = client.get_run(run.run_id)

    assert logged.info.status == "FINISHED"
    assert logged.data.params == flatten_params(training_params())
    assert logged.data.params["train.data.imgsz"] == "64"
    history = client.get_metric_history(run.run_id, "metrics/mAP50-95_B")
    assert [(m.step, round(m.value, 6)) for m in history] == [(1, 0.01), (2, 0.02)]
    [dataset] = logged.inputs.dataset_inputs
    assert dataset.dataset.digest == digest[:36] and json.loads(dataset.dataset.source)["uri"] == DATASET_SOURCE
    assert {t.key: t.value for t in dataset.tags}["digest_sha256"] == digest
    tags = logged.data.tags
    assert json.loads(tags["yolov12.teachers"]) == [{"spec": teacher} for teacher in TEACHERS]  # s3: no local file
    assert tags["system.world_size"] == "2" and json.loads(tags["system.devices"]) == SYSTEM["devices"]
    assert tags["yolov12.code_version"] == code_version()["commit"]

    keys = mlflow_tracking.s3.keys(f"{mlflow_tracking.artifact_prefix}/")
    run_keys = {k.split(f"/{run.run_id}/artifacts/", 1)[1] for k in keys if f"/{run.run_id}/artifacts/" in k}
    assert {"weights/best.safetensors", "weights/last.safetensors", "results.csv", "plots/results.png",
            "export/best.onnx", "config/params.json"} <= run_keys
    version = client.get_model_version(name, run.version)
    assert version.run_id == run.run_id and version.aliases == ["candidate"]
    assert version.tags["dataset_digest"] == digest and version.tags["dataset_source"] == DATASET_SOURCE
    model_id = version.tags["model_id"]
    assert any(k.endswith(f"/models/{model_id}/artifacts/best.safetensors") for k in keys)  # the registered file


@pytest.mark.integration
def test_resubmitted_job_resumes_its_unfinished_run(mlflow_tracking, tmp_path: Path) -> None:
    tracking = TrackingConfig(experiment=f"resume-{uuid.uuid4().hex[:8]}", registered_model=None).resolved()
    arguments = dict(params=training_params(), dataset_digest=digest_for("resume"), dataset_source=DATASET_SOURCE,
                     teachers=[], system={"world_size": 1})
    first = start_training_run(tracking, run_name="job", **arguments)
    again = start_training_run(tracking, run_name="job", **{**arguments, "system": {"world_size": 2}})
    assert again == first  # the job died before finishing: same run, second attempt
    client = MlflowClient(tracking.tracking_uri)
    tags = client.get_run(first).data.tags
    assert tags["yolov12.attempts"] == "2" and tags["system.world_size"] == "2"
    assert len(client.get_run(first).inputs.dataset_inputs) == 1  # the dataset input is not logged twice

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "best.safetensors").write_bytes(b"x")
    assert finish_training_run(tracking, first, run_dir=tmp_path, best_weights=tmp_path / "weights" /
                               "best.safetensors", onnx=None) is None  # registered_model=None: no registration
    assert client.get_run(first).info.status == "FINISHED"
    assert start_training_run(tracking, run_name="job", **arguments) != first  # a finished run is not reused


def test_embedded_sqlite_default_works_without_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking = TrackingConfig(registered_model="embedded-model").resolved()
    run = tracked_run(tmp_path / "run", tracking, run_name="local", digest=digest_for("embedded"))
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    stored = list((tmp_path / "mlruns" / "artifacts").rglob("best.safetensors"))
    assert len(stored) == 2  # the run's weights/ artifact and the registered LoggedModel's file
    path = resolve_model_uri(f"models:/embedded-model/{run.version}", cache_dir=tmp_path / "cache")
    model, meta = load_weights(path)
    assert meta.task == "detect" and path.read_bytes() == (run.run_dir / "weights" / "best.safetensors").read_bytes()
    assert not (tmp_path / "mlflow.db").exists()  # nothing leaks into MLflow's own cwd default
    with pytest.raises(ModelNotFoundError, match=r"has no version '5'; versions: 1$"):  # sqlite returns int versions
        promote("embedded-model", 5)


def test_an_unreachable_server_fails_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import lineage_command
    from pipelines.local_stack import free_port
    from pipelines.registry import TrackingServerError

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    with pytest.raises(TrackingServerError, match=f"no MLflow server answers at {url}.*start-stack.sh"):
        start_training_run(TrackingConfig(), run_name="x", params={}, dataset_digest="0" * 64, dataset_source="s",
                           teachers=[], system={})
    with pytest.raises(RuntimeError, match="no MLflow server answers"):  # the CLI prints this one line
        lineage_command(["models:/any@champion"])
