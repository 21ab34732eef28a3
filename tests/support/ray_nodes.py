"""Ray test clusters whose State API questions reach nobody else's cluster.

Several test processes run Ray clusters on one machine (pytest-xdist). Ray Train's placement-group cleaner asks the
State API, every second, whether the run's controller still lives, and removes the run's placement group when told
no ("Destroying worker since its placement group was removed"). Two things pointed that question at another test
process's cluster, which answered "no such actor":

- address ``auto`` resolves to ``RAY_ADDRESS``, else to the newest cluster on the machine;
- a head started with ``include_dashboard=False`` still advertises an API server on ``dashboard_port`` (8265 unless
  set) though nothing of its own listens there, so whoever owns 8265 answers.

Nodes started inside :func:`pinned_head` have ``RAY_ADDRESS`` set to their own GCS (every process they start inherits
it), and the head's advertised API port is a free port of its own: the question then fails, and the cleaner keeps the
group. ``pipelines.driver.init_ray`` does the same for local instances started without a dashboard.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def pinned_head() -> Iterator[dict[str, Any]]:
    """While open, ``RAY_ADDRESS`` names a GCS on a free port of this node's IP; yields the head node's keywords for
    ``Cluster.add_node`` (that GCS port, no dashboard, an API port of its own). Start the cluster's nodes inside; the
    variable is restored on exit."""
    from ray._private.services import get_node_ip_address  # noqa: PLC0415 - Ray only where a cluster starts

    gcs_port = _free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ADDRESS", f"{get_node_ip_address()}:{gcs_port}")
        yield {"gcs_server_port": gcs_port, "include_dashboard": False, "dashboard_port": _free_port()}
