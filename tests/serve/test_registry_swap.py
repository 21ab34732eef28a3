"""Serving ``models:/NAME@champion`` from a real MLflow server: moving the alias and reconfiguring under load
switches responses to the new version with no failed request (the Detector replica is updated in place)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from serve_support import IMGSZ, confident_checkpoint, running_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "yolov12-registry"


@pytest.fixture(scope="module")
def registered(mlflow_server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A registered model with versions 1 and 2 (different weights), ``champion`` -> 1."""
    from pipelines.registry import mlflow_client, promote, register_weights

    name = f"serve-{uuid.uuid4().hex[:8]}"
    client = mlflow_client(mlflow_server.url)
    experiment = client.create_experiment(name)
    folder = tmp_path_factory.mktemp("registered")
    for version in (1, 2):
        run = client.create_run(experiment, run_name=f"train-{version}")
        weights = confident_checkpoint(folder / f"v{version}" / "best.safetensors")
        register_weights(client, name=name, run_id=run.info.run_id, weights=weights, alias=None)
        client.set_terminated(run.info.run_id)
    promote(name, 1, tracking_uri=mlflow_server.url)
    return name, mlflow_server.url


def test_moving_champion_and_reconfiguring_under_load_switches_versions_without_errors(
        serve_port: int, registered: tuple[str, str], sample_jpegs: list[bytes], tmp_path: Path) -> None:
    from ray import serve

    from pipelines.registry import promote
    from serve.app import build_app

    name, tracking_uri = registered
    args = {"model": f"models:/{name}@champion", "tracking_uri": tracking_uri, "backend": "torch", "imgsz": IMGSZ,
            "max_batch_size": 4, "num_cpus": 1, "threads": 1, "cache_dir": str(tmp_path / "cache")}
    with running_app(serve_port, args, name=APP) as url:
        log: list[tuple[float, float, int, str]] = []  # (start, end, status, version)
        stop = threading.Event()

        def client() -> None:
            session = requests.Session()
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = session.post(f"{url}/v1/detect", data=sample_jpegs[0], timeout=120,
                                            headers={"Content-Type": "image/jpeg"})
                    version = (response.json()["model"]["version"] if response.status_code == 200
                               else f"answer: {response.text[:300]}")  # the reason, should the check below fail
                    log.append((started, time.monotonic(), response.status_code, version))
                except requests.RequestException as exc:
                    log.append((started, time.monotonic(), -1, repr(exc)))

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(3)
            promote(name, 2, tracking_uri=tracking_uri)
            serve.run(build_app({**args, "revision": "champion-2"}), name=APP, route_prefix="/")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not any(entry[3] == "2" for entry in log):
                time.sleep(0.5)
            time.sleep(3)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=150)
    statuses = [entry[2] for entry in log]
    assert statuses and set(statuses) == {200}, ({s: statuses.count(s) for s in set(statuses)},
                                                 [entry[3] for entry in log if entry[2] != 200][:3])
    versions = [entry[3] for entry in log]
    assert versions[0] == "1" and "2" in versions
    first_new = min(end for _, end, _, version in log if version == "2")
    assert all(version == "2" for started, _, _, version in log if started > first_new)  # no flip-flopping back
