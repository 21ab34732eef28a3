"""A tripwire for "fails before Ray starts": every way our commands start or join Ray records the attempt and raises.

``ray.is_initialized()`` cannot tell: a module- or session-scoped cluster of other tests may already hold Ray in
this process, and ``init_ray`` then returns without calling ``ray.init``. So ``init_ray`` itself is the tripwire,
in every module that imported it by name, and ``ray.init`` too.
"""

from __future__ import annotations

import importlib

import pytest

MODULES_WITH_INIT_RAY = ("pipelines.driver", "pipelines.train", "tune.sweep")


def forbid_ray_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch the tripwires for this test; returns the list of attempts, which a passing check leaves empty."""
    import ray  # noqa: PLC0415

    attempts: list[str] = []

    def tripwire(name: str):
        def started(*args, **kwargs):
            attempts.append(name)
            raise AssertionError(f"{name} was called before the command's checks refused the input")

        return started

    monkeypatch.setattr(ray, "init", tripwire("ray.init"))
    for module_name in MODULES_WITH_INIT_RAY:
        module = importlib.import_module(module_name)
        monkeypatch.setattr(module, "init_ray", tripwire(f"{module_name}.init_ray"))
    return attempts
