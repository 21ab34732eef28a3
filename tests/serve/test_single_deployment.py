"""The single-deployment layout (the Detector is the HTTP ingress) on a real Serve instance, behind Serve's proxy
and, started through ``yolov12 serve ... haproxy=true``, behind Ray's HAProxy ingress."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from serve_support import IMGSZ, as_array, detect, free_port, load, running_app, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "single"


def in_process(weights: Path, conf: float) -> list[np.ndarray]:
    """What ``YOLO(weights).predict`` finds on each sample photo at the serving image size."""
    from yolov12 import YOLO
    from yolov12.infer.image_io import read_image
    from yolov12.infer.samples import sample_images

    model = YOLO(weights)
    return [model.predict(read_image(path), imgsz=IMGSZ, conf=conf, verbose=False)[0].boxes.data.numpy()
            for path in sample_images()]


def assert_same_detections(url: str, jpegs: list[bytes], expected: list[np.ndarray], **params) -> None:
    for jpeg, reference in zip(jpegs, expected):
        response = detect(url, jpeg, **params)
        assert response.status_code == 200, response.text
        got = as_array(response.json()["detections"])
        assert len(reference) > 0 and got.shape == reference.shape
        np.testing.assert_allclose(got[:, :4], reference[:, :4], atol=0.02)  # JSON rounds boxes to 0.01 px
        np.testing.assert_allclose(got[:, 4], reference[:, 4], atol=2e-5)


def test_one_deployment_serves_detections_health_and_model_updates(serve_port: int, confident_weights: Path,
                                                                   sample_jpegs: list[bytes]) -> None:
    from ray import serve

    from serve.app import build_app

    args = {"model": str(confident_weights), "backend": "torch", "imgsz": IMGSZ, "max_batch_size": 4,
            "batch_wait_timeout_s": 0.0, "num_cpus": 1, "threads": 1, "single_deployment": True}
    with running_app(serve_port, args, name=APP) as url:
        assert set(serve.status().applications[APP].deployments) == {"Detector"}  # no separate Ingress
        assert_same_detections(url, sample_jpegs, in_process(confident_weights, 0.3), conf=0.3)
        metadata = requests.get(f"{url}/v2/models/confident", timeout=30).json()
        assert metadata["platform"] == "yolov12_torch"
        unknown = requests.post(f"{url}/v1/detect", data=sample_jpegs[0], timeout=60,
                                headers={"serve_multiplexed_model_id": "second", "Content-Type": "image/jpeg"})
        assert unknown.status_code == 404 and "single_deployment" in unknown.json()["error"]
        statuses, _, _ = load(url, sample_jpegs, total=40, clients=4)
        assert statuses.count(200) == 40

        # a new request default (user_config, applied by the in-process Detector's reconfigure) under load
        outcome: dict[str, list[int]] = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("s", load(url, sample_jpegs, 60, 2)[0]))
        worker.start()
        serve.run(build_app({**args, "conf": 0.9}), name=APP, route_prefix="/")
        worker.join(timeout=300)
        assert outcome["s"].count(200) == 60, outcome
        assert_same_detections(url, sample_jpegs, in_process(confident_weights, 0.9))


@contextlib.contextmanager
def cli_server(weights: Path, port: int, log: Path):
    """``yolov12 serve ... haproxy=true single_deployment=true`` in its own process and its own local Ray."""
    command = [sys.executable, "-m", "yolov12.cli.main", "serve", f"model={weights}", f"port={port}", "address=local",
               "haproxy=true", "single_deployment=true", "backend=torch", f"imgsz={IMGSZ}", "threads=1",
               "batch_wait_timeout_s=0"]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_SERVE_ENABLE_HA_PROXY")}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the command shuts Serve down, and its local Ray at exit
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=90)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its session (Ray, HAProxy)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def listener_name(port: int, attempts: int = 5) -> str:
    """The name of the process listening on ``port`` (HAProxy reloads replace that process now and then: a listener
    that is gone by the time it is looked up is looked for again)."""
    import psutil

    for _ in range(attempts):
        try:
            for connection in psutil.net_connections("tcp"):
                if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                    return psutil.Process(connection.pid).name() if connection.pid else "?"
            return ""
        except psutil.NoSuchProcess:
            time.sleep(0.5)
    return ""


def test_haproxy_forwards_straight_to_the_model_replica(tmp_path: Path, confident_weights: Path,
                                                        sample_jpegs: list[bytes]) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with cli_server(confident_weights, port, log) as process:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, 240)
        except BaseException:
            print(log.read_text()[-4000:])
            raise
        assert process.poll() is None
        assert listener_name(port) == "haproxy"  # HAProxy, not Serve's Python proxy, owns the HTTP port
        assert_same_detections(url, sample_jpegs, in_process(confident_weights, 0.3), conf=0.3)
        statuses, _, _ = load(url, sample_jpegs, total=40, clients=4)
        assert statuses.count(200) == 40
        refused = detect(url, b"not an image")
        assert refused.status_code == 415 and "error" in refused.json()  # checked in the replica, as without HAProxy
