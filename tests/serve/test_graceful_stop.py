"""``yolov12 serve`` stopped by SIGTERM (what Kubernetes, systemd and ``docker stop`` send): the request in flight
completes, Serve and the local Ray shut down, and the command exits 0 with one line, no native stack dump."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from serve_support import free_port, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_IMGSZ = 1280  # one forward of yolov12n at this size takes seconds on one CPU thread: long enough to be in flight
DUMP_MARKERS = ("Fatal Python error", "*** SIGTERM received", "Stack trace", "Traceback (most recent call last)")


@contextlib.contextmanager
def serve_process(tmp_path: Path, port: int):
    """``yolov12 serve`` of a random-weights yolov12n in its own process group and its own local Ray."""
    command = [sys.executable, "-m", "yolov12.cli.main", "serve", "model=yolov12n.yaml", "random_weights=true",
               f"port={port}", "address=local", "single_deployment=true", "backend=torch", "imgsz=64", "threads=1",
               f"max_request_imgsz={SLOW_IMGSZ}", f"cache_dir={tmp_path / 'cache'}"]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_SERVE_ENABLE_HA_PROXY")}
    with (tmp_path / "stdout.log").open("w") as out, (tmp_path / "stderr.log").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its session (Ray's processes)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_sigterm_drains_the_request_in_flight_and_exits_0(tmp_path: Path, sample_jpegs: list[bytes]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_process(tmp_path, port) as process:
        try:
            wait_until_ready(url, 300)
        except BaseException:
            print((tmp_path / "stderr.log").read_text()[-4000:])
            raise
        answers: list[requests.Response] = []
        started = time.monotonic()
        client = threading.Thread(target=lambda: answers.append(requests.post(
            f"{url}/v1/detect", data=sample_jpegs[0], params={"imgsz": SLOW_IMGSZ},
            headers={"Content-Type": "image/jpeg"}, timeout=180)))
        client.start()
        time.sleep(1.0)  # the request has reached the replica and its forward is running
        assert client.is_alive(), "the request finished before the signal: it cannot show the drain"
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=180)
        client.join(timeout=60)
        stopped_after = time.monotonic() - started
    stderr = (tmp_path / "stderr.log").read_text()
    assert exit_code == 0, f"exit code {exit_code}:\n{stderr[-3000:]}"
    assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
    assert answers[0].json()["imgsz"] == SLOW_IMGSZ
    assert not [marker for marker in DUMP_MARKERS if marker in stderr], stderr[-3000:]
    stops = [line for line in stderr.splitlines() if line.startswith("stopped serving on SIGTERM")]
    assert len(stops) == 1, stderr[-3000:]
    print(f"\nSIGTERM: drained and stopped {stopped_after:.1f} s after the request was sent")
