"""Ray nodes started by tests, with their cluster's address in their environment.

Several test processes run Ray clusters on one machine (pytest-xdist). A Ray process that looks its cluster up
with address ``auto`` takes ``RAY_ADDRESS`` first, else the newest cluster it can find on the machine, which may be
another test process's. Ray Train's placement-group cleaner does that: it asked the wrong cluster whether the run's
controller lived, was told no, and removed the placement group of a run in progress ("Destroying worker since its
placement group was removed"). Nodes started inside :func:`pinned_ray_address` pass ``RAY_ADDRESS`` to every process
they start, so ``auto`` is their own cluster.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def pinned_ray_address() -> Iterator[int]:
    """While open, ``RAY_ADDRESS`` names a GCS on a free port of this node's IP; yields that port, for the head
    node's ``gcs_server_port``. Start the cluster's nodes inside; the variable is restored on exit."""
    from ray._private.services import get_node_ip_address  # noqa: PLC0415 - Ray only where a cluster starts

    port = _free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ADDRESS", f"{get_node_ip_address()}:{port}")
        yield port
