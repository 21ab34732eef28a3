"""``init_ray`` from a thread that ends: the local Ray instance it started keeps running.

Ray binds a local instance's processes to the *thread* that started them (Linux ``PR_SET_PDEATHSIG``); started
directly from a short-lived thread, the GCS and raylet die with it and Ray later ends the whole process.
"""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.driver import init_ray

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_ray_started_from_a_finished_thread_still_runs_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            init_ray("local", num_cpus=1, include_dashboard=False, log_to_driver=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(timeout=120)
    assert not errors, errors
    try:
        time.sleep(2)  # long enough for processes killed with the thread to be gone

        @ray.remote
        def answer() -> int:
            return 42

        assert ray.get(answer.remote(), timeout=60) == 42
    finally:
        ray.shutdown()
