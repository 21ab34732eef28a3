"""What a replica reports about the engine it serves, and the engine record it writes on the model version.

Real engines (PyTorch and an ONNX export at 64 px), a real embedded MLflow registry; the registry failures are real
ones too (no server at the URI, a store without the model), and serving must go on through them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from serve_support import asgi_client, in_process_ingress

from pipelines.engine_records import registered_engines
from pipelines.local_stack import free_port
from pipelines.registry import mlflow_client, register_weights
from pipelines.tracking import ensure_experiment
from serve.engine_registry import register_engine
from serve.runtime import InferenceRequest, ModelSource, Prediction, load_serving_model
from yolov12.data.digest import file_sha256
from yolov12.weights.metadata import package_version

IMAGE = np.zeros((48, 64, 3), np.uint8)


def registry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "serve.engine_registry" and r.levelno == logging.WARNING]


def test_torch_engine_is_described_by_its_weights_file(confident_weights: Path) -> None:
    served = load_serving_model(str(confident_weights), backend="torch", device="cpu", imgsz=64, threads=1)
    engine = served.describe()["engine"]
    assert engine == {"format": "safetensors", "precision": "fp32", "sha256": file_sha256(confident_weights),
                      "device": "cpu", "gpu": None, "builder": {"torch": torch.__version__}}
    assert served.engine_record.weights_sha256 == engine["sha256"] and served.engine_record.imgsz == 64
    assert served.registration is None  # a file, not a registry version: nothing to record against
    (prediction,) = served.predict([InferenceRequest(IMAGE)])
    assert isinstance(prediction, Prediction) and prediction.engine == engine


def test_onnx_engine_record_names_the_export_its_builders_and_the_weights(confident_weights: Path,
                                                                         tmp_path: Path) -> None:
    served = load_serving_model(str(confident_weights), backend="onnxruntime", device="cpu", imgsz=64, max_batch=2,
                                threads=1, cache_dir=str(tmp_path))
    record = served.engine_record
    artifact = Path(served.engine.info.artifact)
    assert artifact.suffix == ".onnx" and artifact.is_relative_to(tmp_path)
    assert (record.backend, record.format, record.precision, record.device) == ("onnxruntime", "onnx", "fp32", "cpu")
    assert record.sha256 == file_sha256(artifact) and record.weights_sha256 == file_sha256(confident_weights)
    assert record.builder == {"onnxruntime": onnxruntime.__version__, "yolov12": package_version()}
    assert (record.imgsz, record.batch, record.artifact) == (64, 2, artifact.name)
    assert record.tag_key == f"yolov12.engine.onnxruntime.{record.sha256[:12]}"


def test_a_registry_that_refuses_the_record_costs_one_warning_and_the_replica_serves(
        confident_weights: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="serve.engine_registry")
    source = ModelSource("models:/ghost@champion", confident_weights, "ghost", "1")
    store = f"sqlite:///{tmp_path / 'registry.db'}"  # a real store that has no model 'ghost'
    served = load_serving_model(source, backend="torch", device="cpu", imgsz=64, threads=1, tracking_uri=store)
    assert served.registration is not None
    served.registration.join(timeout=60)
    assert not served.registration.is_alive()
    (warning,) = registry_warnings(caplog)
    assert "could not record the torch engine of ghost version 1" in warning and "serving goes on" in warning
    assert "\n" not in warning
    (prediction,) = served.predict([InferenceRequest(IMAGE)])
    assert isinstance(prediction, Prediction) and prediction.version == "1"


def test_an_unreachable_registry_is_a_warning_not_an_error(confident_weights: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="serve.engine_registry")
    served = load_serving_model(str(confident_weights), backend="torch", device="cpu", imgsz=64, threads=1)
    source = ModelSource("models:/m/3", confident_weights, "m", "3")
    assert register_engine(source, served.engine_record, f"http://127.0.0.1:{free_port()}") is False
    (warning,) = registry_warnings(caplog)
    assert "TrackingServerError" in warning and "no MLflow server answers" in warning
    assert register_engine(served.source, served.engine_record) is False  # a file source is never recorded
    assert len(registry_warnings(caplog)) == 1


def test_an_engine_served_from_the_registry_is_recorded_on_its_version(confident_weights: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = mlflow_client(store)
    run = client.create_run(ensure_experiment(client, "engines"))
    version = register_weights(client, name="served", run_id=run.info.run_id, weights=confident_weights)
    served = load_serving_model("models:/served@candidate", backend="torch", device="cpu", imgsz=64, threads=1,
                                cache_dir=str(tmp_path / "cache"), tracking_uri=store)
    served.registration.join(timeout=60)
    tags = client.get_model_version("served", version.version).tags
    (record,) = registered_engines(tags)
    assert record == served.engine_record
    assert tags[record.tag_key] == record.tag_value()


def test_kserve_metadata_and_v1_responses_show_the_engine(tmp_path: Path, sample_jpegs: list[bytes]) -> None:
    ingress = in_process_ingress(tmp_path)
    with asgi_client(ingress) as client:
        metadata = client.get("/v2/models/yolov12n-random")
        assert metadata.status_code == 200, metadata.text
        parameters = metadata.json()["parameters"]
        detected = client.post("/v1/detect", content=sample_jpegs[0], headers={"Content-Type": "image/jpeg"})
    assert detected.status_code == 200, detected.text
    engine = parameters["engine"]
    assert engine["sha256"] == file_sha256(parameters["source"]) and engine["format"] == "safetensors"
    assert (engine["device"], engine["precision"], engine["builder"]) == ("cpu", "fp32", {"torch": torch.__version__})
    assert detected.json()["model"]["engine"] == engine
