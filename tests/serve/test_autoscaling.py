"""Autoscaling for real: concurrent HTTP load makes Serve start a second Detector replica (every request answered),
and the replica is removed again once the load stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from serve_support import IMGSZ, running_app

pytestmark = [
    pytest.mark.integration, pytest.mark.slow,
    # Ray 2.60 deprecates metrics_interval_s for a future environment variable, but still pushes with it
    pytest.mark.filterwarnings("ignore:The `metrics_interval_s` field:DeprecationWarning"),
]

APP = "yolov12-autoscale"
CLIENTS = 8
# Reacts in seconds: handles report every 0.5 s, averaged over 2 s; with 8 clients and a target of 1 ongoing
# request per replica the policy asks for 8 replicas (capped at 2), and with no load for 0 (floored at 1).
AUTOSCALING = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 1,
               "downscale_delay_s": 2, "look_back_period_s": 2, "metrics_interval_s": 0.5}


@pytest.fixture(scope="module")
def app_url(serve_port: int, confident_weights: Path) -> Iterator[str]:
    args = {"model": str(confident_weights), "backend": "torch", "imgsz": IMGSZ, "max_batch_size": 4,
            "num_cpus": 1, "threads": 1, "autoscaling": AUTOSCALING}
    with running_app(serve_port, args, name=APP) as url:
        yield url


def detector_replicas() -> dict[str, int]:
    """Replica count by state (``RUNNING``, ``STARTING``, ``STOPPING``, ...) of this application's Detector."""
    from ray import serve

    deployment = serve.status().applications[APP].deployments["Detector"]
    return {getattr(state, "value", str(state)): count for state, count in deployment.replica_states.items() if count}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` every 0.25 s; the seconds it took, or a failure naming ``what`` and the last states."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"{what} not seen within {timeout_s:.0f}s; Detector replicas: {detector_replicas()}")


class Load:
    """``CLIENTS`` threads posting images back to back until :meth:`stop`; every status is kept."""

    def __init__(self, url: str, images: list[bytes]) -> None:
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(url, images, index), daemon=True)
                         for index in range(CLIENTS)]

    def _client(self, url: str, images: list[bytes], index: int) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                status = session.post(f"{url}/v1/detect", data=images[index % len(images)], timeout=120,
                                      headers={"Content-Type": "image/jpeg"}).status_code
            except requests.RequestException:
                status = -1
            self.statuses.append(status)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)
        assert not any(thread.is_alive() for thread in self._threads), "a client hangs"


def test_load_adds_a_detector_replica_and_idling_removes_it(app_url: str, sample_jpegs: list[bytes]) -> None:
    from ray import serve

    assert detector_replicas() == {"RUNNING": 1}
    detector = serve.get_deployment_handle("Detector", app_name=APP)
    pids: set[int] = set()

    def both_replicas_answer() -> bool:  # the router sends each probe to the shorter of the two queues
        pids.add(detector.ping.remote().result(timeout_s=60)["pid"])
        return len(pids) == 2

    with Load(app_url, sample_jpegs) as load:
        upscale_s = wait_for(lambda: detector_replicas().get("RUNNING") == 2, 150, "a second RUNNING replica")
        wait_for(both_replicas_answer, 60, "answers from two replica processes")
    assert len(load.statuses) >= CLIENTS
    assert set(load.statuses) == {200}, {status: load.statuses.count(status) for status in set(load.statuses)}
    # Idle: the 2 s window empties, then downscale_delay_s passes and the extra replica drains and stops.
    downscale_s = wait_for(lambda: detector_replicas() == {"RUNNING": 1}, 60, "the scale-down to one replica")
    print(f"\nautoscaling: 2 replicas {upscale_s:.1f}s after the load began ({len(load.statuses)} requests, all 200), "
          f"back to 1 replica {downscale_s:.1f}s after it stopped")
    response = requests.post(f"{app_url}/v1/detect", data=sample_jpegs[0], timeout=120,
                             headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200
