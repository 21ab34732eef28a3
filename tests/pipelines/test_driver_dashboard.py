"""``init_ray`` without a dashboard: the API-server address the instance advertises reaches no other Ray's dashboard.

Ray advertises ``dashboard_port`` (8265 by default) even when no dashboard runs; Ray Train's placement-group cleaner
asks that address whether a run's controller lives, and removed live runs' groups when another instance's dashboard
owned 8265 and answered "no such actor".
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest

from pipelines.driver import init_ray

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RAY_DEFAULT_DASHBOARD_PORT = 8265


def test_an_instance_without_dashboard_advertises_an_api_port_nobody_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray.dashboard.utils import get_address_for_submission_client
    from ray.util.state import get_actor
    from ray.util.state.exception import ServerUnavailable

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    assert init_ray("local", num_cpus=1, include_dashboard=False, log_to_driver=False) is True
    try:
        gcs = ray.get_runtime_context().gcs_address
        advertised = urlparse(get_address_for_submission_client(gcs))
        assert advertised.port != RAY_DEFAULT_DASHBOARD_PORT
        with socket.socket() as probe:
            assert probe.connect_ex((advertised.hostname, advertised.port)) != 0, "something listens on the API port"
        driver_actor = "ffffffffffffffffffffffff01000000"
        with pytest.raises(ServerUnavailable):  # the cleaner's question fails: it keeps the run's placement group
            get_actor(driver_actor, address=gcs, timeout=5)
    finally:
        ray.shutdown()
