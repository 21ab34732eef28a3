"""Fixtures of the serving tests (helpers live in serve_support.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import ServeNode, confident_checkpoint, serve_instance


@pytest.fixture(scope="session")
def confident_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return confident_checkpoint(tmp_path_factory.mktemp("serve-weights") / "confident.safetensors")


@pytest.fixture(scope="session")
def sample_jpegs() -> list[bytes]:
    from yolov12.infer.samples import sample_images

    return [Path(path).read_bytes() for path in sample_images()]


class ServeInstances:
    """This test process's Ray + Serve instance, started on first use and again after another module (Ray Train,
    Tune) shut Ray down: a module's tests all see one instance, and never a dead one.

    Under pytest-xdist a worker runs whole files in any order, and a ``scope="package"`` fixture in a folder without
    ``__init__.py`` lives for the whole session: a cached port of a Ray that another module stopped made every later
    app wait for a proxy that no longer listened, and ``serve.run`` then started a Ray of its own (Serve's default
    port, and ``ray.init()``'s search for a running cluster could attach it to another worker's ``ray start``)."""

    def __init__(self) -> None:
        self._context: contextlib.AbstractContextManager[ServeNode] | None = None
        self._node: ServeNode | None = None
        self._address: str | None = None

    def current(self, metrics: bool = False) -> ServeNode:
        """The running instance, started anew when Ray is down or is another instance than the one started here,
        or (``metrics``) when it does not export Ray's metrics."""
        if self._node is not None and metrics and not self._node.metrics:
            self.close()
        if self._node is None or not self._alive():
            self._context, self._node = None, None  # its Ray is gone: nothing of it is left to stop
            context = serve_instance(metrics)
            node = context.__enter__()
            self._context, self._node, self._address = context, node, _gcs_address()
        return self._node

    def close(self) -> None:
        """Stop the instance if it is still the one running."""
        if self._context is not None and self._alive():
            self._context.__exit__(None, None, None)
        self._context = self._node = None

    def _alive(self) -> bool:
        import ray

        return ray.is_initialized() and _gcs_address() == self._address


def _gcs_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address


@pytest.fixture(scope="session")
def serve_instances() -> Iterator[ServeInstances]:
    instances = ServeInstances()
    try:
        yield instances
    finally:
        instances.close()


@pytest.fixture(scope="module")
def serve_node(serve_instances: ServeInstances) -> ServeNode:
    """Ray + Serve for this module's tests (each module runs and deletes its own application)."""
    return serve_instances.current()


@pytest.fixture(scope="module")
def serve_port(serve_node: ServeNode) -> int:
    """The HTTP port of Serve's proxy on :func:`serve_node`."""
    return serve_node.http_port
