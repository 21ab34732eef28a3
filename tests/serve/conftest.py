"""Fixtures of the serving tests (helpers live in serve_support.py)."""

from __future__ import annotations

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


@pytest.fixture(scope="package")
def serve_node() -> Iterator[ServeNode]:
    """Ray + Serve started once for the serving tests (each module runs and deletes its own application)."""
    with serve_instance() as node:
        yield node


@pytest.fixture(scope="package")
def serve_port(serve_node: ServeNode) -> int:
    """The HTTP port of Serve's proxy on :func:`serve_node`."""
    return serve_node.http_port
