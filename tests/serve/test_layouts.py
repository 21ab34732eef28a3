"""The two layouts of the serving application on a real Serve instance: the split one (an Ingress deployment calling a
Detector deployment) behind Serve's proxy, and the default one (the Detector is the HTTP ingress), started through
``yolov12 serve ... haproxy=true``, behind Ray's HAProxy ingress, with a multiplexed model."""

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
from serve_support import IMGSZ, as_array, confident_checkpoint, detect, free_port, load, running_app, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "split"


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


@pytest.fixture(scope="module")
def second_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return confident_checkpoint(tmp_path_factory.mktemp("second") / "second.safetensors", bias=3.0, name="other")


def multiplexed(url: str, jpeg: bytes, model_id: str, header: str = "serve_multiplexed_model_id") -> requests.Response:
    return requests.post(f"{url}/v1/detect", data=jpeg, timeout=180,
                         headers={header: model_id, "Content-Type": "image/jpeg"})


def assert_multiplexing(url: str, jpeg: bytes, header: str = "serve_multiplexed_model_id") -> None:
    """The header picks the second model; an unknown id is a 404 that names it."""
    second = multiplexed(url, jpeg, "second", header)
    assert second.status_code == 200, second.text
    assert second.json()["model"]["name"] == "second"
    assert {d["class_name"] for d in second.json()["detections"]} <= {"other"}
    assert detect(url, jpeg).json()["model"]["name"] == "confident"
    unknown = multiplexed(url, jpeg, "nope", header)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_split_layout_serves_detections_multiplexing_and_model_updates(serve_port: int, confident_weights: Path,
                                                                       second_weights: Path,
                                                                       sample_jpegs: list[bytes]) -> None:
    from ray import serve

    from serve.app import build_app

    args = {"model": str(confident_weights), "backend": "torch", "imgsz": IMGSZ, "max_batch_size": 4,
            "batch_wait_timeout_s": 0.0, "num_cpus": 1, "threads": 1, "single_deployment": False,
            "ingress_num_cpus": 0, "models": {"second": str(second_weights)}}
    with running_app(serve_port, args, name=APP) as url:
        assert set(serve.status().applications[APP].deployments) == {"Ingress", "Detector"}
        assert_same_detections(url, sample_jpegs, in_process(confident_weights, 0.3), conf=0.3)
        metadata = requests.get(f"{url}/v2/models/confident", timeout=30).json()
        assert metadata["platform"] == "yolov12_torch"
        assert_multiplexing(url, sample_jpegs[0])
        statuses, _, _ = load(url, sample_jpegs, total=40, clients=4)
        assert statuses.count(200) == 40

        # a new request default (the Detector's user_config: reconfigured in place, the Ingress untouched) under load
        outcome: dict[str, list[int]] = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("s", load(url, sample_jpegs, 60, 2)[0]))
        worker.start()
        serve.run(build_app({**args, "conf": 0.9}), name=APP, route_prefix="/")
        worker.join(timeout=300)
        assert outcome["s"].count(200) == 60, outcome
        assert_same_detections(url, sample_jpegs, in_process(confident_weights, 0.9))


@contextlib.contextmanager
def cli_server(weights: Path, second: Path, port: int, log: Path):
    """``yolov12 serve ... haproxy=true`` (the default, single-deployment layout, with a second, multiplexed model) in
    its own process and its own local Ray."""
    command = [sys.executable, "-m", "yolov12.cli.main", "serve", f"model={weights}", f"port={port}", "address=local",
               "haproxy=true", f"models={{second: {second}}}", "backend=torch", f"imgsz={IMGSZ}", "threads=1",
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
                                                        second_weights: Path, sample_jpegs: list[bytes]) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with cli_server(confident_weights, second_weights, port, log) as process:
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
        # HAProxy passes the model header on to the replica, which loads the model it names (either spelling)
        assert_multiplexing(url, sample_jpegs[0])
        assert_multiplexing(url, sample_jpegs[0], header="serve-multiplexed-model-id")
