"""Serving test helpers: a checkpoint that always detects, and a real Serve application on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
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
    metrics: bool = False  # whether Ray exports metrics there (tests/conftest.py turns the export off by default)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


# Ray exports metrics every 10 s by default; 2 s keeps the metrics test short and costs little.
METRICS_REPORT_INTERVAL_MS = 2000
METRICS_VARIABLE = "RAY_enable_metrics_collection"


@contextlib.contextmanager
def serve_instance(metrics: bool = False) -> Iterator[ServeNode]:
    """A fresh local Ray node (never a shared cluster): Serve's HTTP proxy on a free loopback port, the metrics
    agent's Prometheus endpoint on another free port; with ``metrics``, Ray's metrics export on (the Ray processes
    inherit the variable when they start) and reported every ``METRICS_REPORT_INTERVAL_MS``."""
    import ray
    from ray import serve

    if ray.is_initialized():
        ray.shutdown()
    metrics_port = free_port()
    previous = os.environ.get(METRICS_VARIABLE)
    os.environ[METRICS_VARIABLE] = "1" if metrics else "0"
    try:
        ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False,
                 _metrics_export_port=metrics_port,
                 _system_config={"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS})
    finally:
        if previous is None:
            os.environ.pop(METRICS_VARIABLE, None)
        else:
            os.environ[METRICS_VARIABLE] = previous
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield ServeNode(http_port=port, metrics_port=metrics_port, metrics=metrics)
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


def png_claiming(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A small PNG file whose header claims ``width`` x ``height`` (the first rows of zeros follow); colour type 2 is
    RGB, 6 RGBA, 0 grayscale."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
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


def in_process_ingress(cache_dir: Path, **settings: Any) -> Any:
    """The ``Ingress`` class of serve/http_api.py instantiated here, holding its own Detector (the
    ``single_deployment`` layout) for ``yolov12n.yaml`` with random weights on torch at 64 px: the real request
    code with no Ray. ``settings`` override :class:`serve.config.ServeAppConfig` keys (``model`` included)."""
    from serve.app import detector_init_config
    from serve.config import IngressSettings, ServeAppConfig
    from serve.http_api import Ingress

    config = ServeAppConfig(**{"model": "yolov12n.yaml", "backend": "torch", "imgsz": 64, "threads": 1,
                               "random_weights": True, "cache_dir": str(cache_dir), **settings})
    model_config = detector_init_config(config)
    ingress_class = Ingress.func_or_class.__bases__[0]  # the class itself, under Serve's ASGI wrapper
    assert ingress_class.__module__ == "serve.http_api" and ingress_class.__name__ == "Ingress"
    return ingress_class(None, IngressSettings.from_app(config).model_dump(), model_config)


@contextlib.contextmanager
def asgi_client(ingress: Any) -> Iterator[Any]:
    """A ``starlette`` test client of the Ingress's FastAPI app in this process, answered by ``ingress`` (see
    :func:`answered_by`). One client (one event loop) per ingress: its Detector's batcher lives on the loop of its
    first request."""
    from starlette.testclient import TestClient

    from serve.http_api import api

    with answered_by(ingress), TestClient(api, raise_server_exceptions=False) as client:
        yield client


@contextlib.contextmanager
def answered_by(ingress: Any) -> Iterator[None]:
    """While open, the module-level FastAPI app of serve/http_api.py runs its routes on ``ingress``: Serve finds the
    instance through one FastAPI dependency (the replica's servable object), overridden here through FastAPI's own
    ``dependency_overrides``. These nest (a test's own inside a module's): on exit the outer one answers again."""
    from serve.http_api import api

    servable = servable_dependency(api)
    previous = api.dependency_overrides.get(servable)
    api.dependency_overrides[servable] = lambda: ingress
    try:
        yield
    finally:
        if previous is None:
            api.dependency_overrides.pop(servable, None)
        else:
            api.dependency_overrides[servable] = previous


def servable_dependency(app: Any) -> Any:
    """The dependency through which Serve's class-based routes get their instance (one for all the routes)."""
    import inspect

    from ray.serve._private.http_util import _walk_fastapi_routes  # how Serve itself finds the class's routes

    found = {inspect.signature(route.endpoint).parameters["self"].default.dependency
             for route, _, _ in _walk_fastapi_routes(app) if "self" in inspect.signature(route.endpoint).parameters}
    assert len(found) == 1, f"expected one servable dependency on the Ingress routes, found {len(found)}"
    return found.pop()
