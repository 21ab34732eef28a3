"""Serving test helpers: a checkpoint that always detects, and a real Serve application on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

IMGSZ = 96  # small and fast; a multiple of the stride 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def confident_checkpoint(path: Path, bias: float = 6.0, name: str = "thing") -> Path:
    """A one-class yolov12n whose class bias says 'object' everywhere (non-empty, image-dependent detections)."""
    from yolov12.models import build_model, load_architecture
    from yolov12.weights import save_checkpoint

    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=1), names={0: name})
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[:] = bias
    return save_checkpoint(model, path)


@dataclass(frozen=True)
class ServeNode:
    """Where the test Ray node listens: Serve's HTTP proxy and the Prometheus endpoint of its metrics agent."""

    http_port: int
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


# Ray exports metrics every 10 s by default; 2 s keeps the metrics test short and costs little.
METRICS_REPORT_INTERVAL_MS = 2000


@contextlib.contextmanager
def serve_instance() -> Iterator[ServeNode]:
    """A fresh local Ray node (never a shared cluster): Serve's HTTP proxy on a free loopback port, the metrics
    agent's Prometheus endpoint on another free port, metrics reported every ``METRICS_REPORT_INTERVAL_MS``."""
    import ray
    from ray import serve

    if ray.is_initialized():
        ray.shutdown()
    metrics_port = free_port()
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False,
             _metrics_export_port=metrics_port,
             _system_config={"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS})
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield ServeNode(http_port=port, metrics_port=metrics_port)
    finally:
        serve.shutdown()
        ray.shutdown()


@contextlib.contextmanager
def running_app(port: int, args: dict[str, Any], name: str, timeout_s: float = 240) -> Iterator[str]:
    """``build_app(args)`` running as application ``name`` on the Serve instance; yields the base URL."""
    from ray import serve

    from serve.app import build_app

    serve.run(build_app(args), name=name, route_prefix="/")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout_s)
        yield url
    finally:
        serve.delete(name)


def wait_until_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"the Serve app at {url} did not become ready within {timeout_s:.0f}s")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG file whose header claims ``width`` x ``height`` (the first rows of zeros follow)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(bytes(4096))) + png_chunk(b"IEND", b"")


def detect(url: str, data: bytes, **params) -> requests.Response:
    """POST one JPEG to ``/v1/detect`` with ``params`` in the query string."""
    return requests.post(f"{url}/v1/detect", data=data, params=params, timeout=120,
                         headers={"Content-Type": "image/jpeg"})


def as_array(detections: list[dict]) -> np.ndarray:
    """``/v1/detect`` JSON detections -> (n, 6) x1, y1, x2, y2, score, class."""
    return np.array([[*d["box"], d["score"], d["class_id"]] for d in detections], dtype=np.float64).reshape(-1, 6)


def load(url: str, images: list[bytes], total: int, clients: int) -> tuple[list[int], list[float], float]:
    """``total`` POSTs from ``clients`` threads: (statuses, latencies in s, wall time in s)."""
    sessions = threading.local()

    def one(index: int) -> tuple[int, float]:
        session = getattr(sessions, "session", None) or requests.Session()
        sessions.session = session
        started = time.perf_counter()
        try:
            status = session.post(f"{url}/v1/detect", data=images[index % len(images)], timeout=120,
                                  headers={"Content-Type": "image/jpeg"}).status_code
        except requests.RequestException:
            status = -1
        return status, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(total)))
    return [s for s, _ in results], [t for _, t in results], time.perf_counter() - started
