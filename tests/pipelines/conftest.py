"""Ray clusters for the Ray Train tests: a 2-node ``ray.cluster_utils.Cluster`` and a ``ray start --head`` process.

Both are real Ray on this machine. The head started with ``ray start --block`` runs in its own process group, which
teardown terminates by id (never ``ray stop``: that would also stop other Ray instances on the machine).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ray_nodes import pinned_head

REPO = Path(__file__).resolve().parents[2]
RAY_CLI = Path(sys.executable).with_name("ray")



@pytest.fixture
def tiny_train() -> dict:
    """Small and fast training keys: 64 px, half of the 96 sample images, batch 8, no mosaic, no plots."""
    return {"data": "sample", "imgsz": 64, "batch": 8, "workers": 0, "fraction": 0.5, "optimizer": "SGD",
            "lr0": 0.01, "warmup_epochs": 1, "close_mosaic": 0, "mosaic": 0.0, "amp": False, "seed": 0,
            "plots": False}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_cluster() -> Iterator[object]:
    """A Ray cluster of two nodes (1 CPU each) in this process's session; the test process is its driver."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    for attempt in range(2):  # a raylet has 30 s (fixed in Ray) to register: a busy machine can miss it once
        cluster = Cluster()
        try:
            with pinned_head() as head:  # Ray Train's cleaner must ask this cluster (support/ray_nodes.py)
                cluster.add_node(num_cpus=1, **head)
                cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            break
        except Exception:
            cluster.shutdown()
            if attempt:
                raise
    ray.init(address=cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@dataclass(frozen=True)
class RayHead:
    dashboard: str  # http://127.0.0.1:PORT, the address of `ray job submit`
    env: dict[str, str]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """``ray start --head --block`` on 127.0.0.1 with free ports, 2 CPUs, token auth on with its own token.

    The token goes to the head and to every client through ``RAY_AUTH_TOKEN``, as on a real cluster: with
    ``RAY_AUTH_MODE=token`` set, ``ray start`` does not create ``~/.ray/auth_token`` on a fresh machine.
    """
    port, dashboard_port = free_port(), free_port()
    # Every port a Ray node listens on, free: Ray's defaults are fixed numbers (the dashboard agent's HTTP port
    # 52365, the client server's 10001), and a Ray instance of another test process on this machine (pytest-xdist)
    # may hold them already; a head whose job agent could not bind answers every `ray job submit` with "No available
    # agent to submit job".
    agent_ports = ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                   "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
                   "--ray-client-server-port", str(free_port())]
    temp_dir = tempfile.mkdtemp(prefix="rayh-", dir="/tmp")  # short: Ray's unix socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "PATH": f"{RAY_CLI.parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(RAY_CLI), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
               "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port), "--num-cpus", "2",
               "--temp-dir", temp_dir, "--disable-usage-stats", "--include-dashboard", "true", *agent_ports]
    log = open(Path(temp_dir) / "ray-start.log", "w")  # noqa: SIM115 - closed in teardown
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_jobs_api(url, env, head, Path(temp_dir) / "ray-start.log")
        yield RayHead(url, env)
    finally:
        _terminate_group(head)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_jobs_api(url: str, env: dict[str, str], head: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(f"ray start exited with {head.returncode}: {log.read_text()[-2000:]}", pytrace=False)
        listed = subprocess.run([str(RAY_CLI), "job", "list", "--address", url], env=env, capture_output=True,
                                text=True, timeout=60)
        if listed.returncode == 0:
            return
        time.sleep(2)
    pytest.fail(f"the Ray head's job API at {url} did not answer within {timeout:.0f} s: {log.read_text()[-2000:]}",
                pytrace=False)


def _terminate_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the head's process group (``ray start --block`` then stops its GCS, raylet, dashboard, workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
