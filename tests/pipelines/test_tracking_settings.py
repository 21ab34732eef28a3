"""The pipelines track to the ``mlflow_uri`` setting when neither the job config nor the environment names a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.tracking import TrackingConfig, resolve_tracking_uri
from yolov12.settings import save_settings


def test_mlflow_uri_setting_sits_between_the_environment_and_the_embedded_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLOV12_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(TrackingConfig()) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    save_settings({"mlflow_uri": "http://127.0.0.1:5005"})
    assert resolve_tracking_uri(TrackingConfig()) == "http://127.0.0.1:5005"
    assert TrackingConfig().resolved().tracking_uri == "http://127.0.0.1:5005"  # fixed before shipping to workers
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert resolve_tracking_uri(TrackingConfig()) == "http://127.0.0.1:1"
    assert resolve_tracking_uri(TrackingConfig(tracking_uri="http://other:5000")) == "http://other:5000"
