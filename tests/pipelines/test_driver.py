"""``pipelines.driver``: the ``TorchTrainer`` of a pipeline config, and ``init_ray`` as the one ``ray.init`` call.

The trainer is built, not run (no Ray cluster is needed to build one); ``init_ray`` is checked against a recording
stand-in for ``ray.init``.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from pipelines.config import load_pipeline_config
from pipelines.driver import build_trainer, init_ray, resolve_address
from pipelines.storage import resolve_storage, worker_environment
from pipelines.worker import train_loop_per_worker
from yolov12.config.base import ConfigError
from yolov12.engine.callbacks import Callback

REPO = Path(__file__).resolve().parents[2]
NON_DEFAULT = {  # every scaling/failure/checkpoint key away from its default
    "scaling.num_workers": 3, "scaling.resources_per_worker": {"CPU": 2, "memory": 1e9},
    "scaling.placement_strategy": "STRICT_SPREAD", "scaling.sync_bn": True, "failure.max_failures": 5,
    "checkpoint.num_to_keep": 4, "checkpoint.score_attribute": "mAP50", "checkpoint.score_order": "min",
    "scaling.timeout_s": 300, "scaling.env": {"NCCL_DEBUG": "WARN", "GLOO_SOCKET_IFNAME": "lo"},
}


class Marker(Callback):
    pass


def test_build_trainer_maps_every_setting_of_the_config(tmp_path) -> None:
    config = load_pipeline_config(REPO / "configs" / "sample.yaml",
                                  {**NON_DEFAULT, "tracking.enabled": False, "batch": 18})  # global: 6 per worker
    storage = resolve_storage(str(tmp_path / "ray"))
    marker = Marker()
    trainer = build_trainer(config, name="run-7", storage=storage, run_id="abc", engine_callbacks=[marker])

    scaling = trainer.scaling_config
    assert (scaling.num_workers, scaling.use_gpu, scaling.placement_strategy) == (3, False, "STRICT_SPREAD")
    assert scaling.resources_per_worker == {"CPU": 2, "memory": 1e9}
    assert (trainer.backend_config.backend, trainer.backend_config.timeout_s) == ("gloo", 300)
    run = trainer.run_config
    assert run.worker_runtime_env["env_vars"] == {**worker_environment(), "NCCL_DEBUG": "WARN",
                                                  "GLOO_SOCKET_IFNAME": "lo"}
    assert (run.name, run.storage_path, run.storage_filesystem) == ("run-7", storage.storage_path, None)
    assert run.failure_config.max_failures == 5
    checkpoint = run.checkpoint_config
    assert (checkpoint.num_to_keep, checkpoint.checkpoint_score_attribute, checkpoint.checkpoint_score_order) == \
        (4, "mAP50", "min")
    assert run.callbacks == []
    assert trainer.train_loop_per_worker is train_loop_per_worker
    loop = trainer.train_loop_config  # the workers get the very config the trainer was built from
    assert loop["pipeline"] == config.model_dump(mode="json") and loop["pipeline"]["scaling"]["sync_bn"] is True
    assert loop["run_id"] == "abc" and loop["callbacks"] == [marker]


@pytest.mark.parametrize(("use_gpu", "backend"), [(True, "nccl"), (False, "gloo")])
def test_use_gpu_has_one_source(tmp_path, use_gpu: bool, backend: str) -> None:
    config = load_pipeline_config(None, {"scaling.use_gpu": use_gpu})
    trainer = build_trainer(config, name="r", storage=resolve_storage(str(tmp_path)))
    assert trainer.backend_config.backend == backend
    assert trainer.scaling_config.use_gpu is use_gpu
    assert trainer.train_loop_config["pipeline"]["scaling"]["use_gpu"] is use_gpu  # what the workers read


def test_an_elastic_range_becomes_rays_min_max_tuple(tmp_path) -> None:
    config = load_pipeline_config(None, ["scaling.num_workers=[2,4]", "batch=12", "tracking.enabled=false"])
    trainer = build_trainer(config, name="r", storage=resolve_storage(str(tmp_path)))
    scaling = trainer.scaling_config
    assert scaling.num_workers == (2, 4) and scaling.elasticity_enabled
    assert (scaling.min_workers, scaling.max_workers) == (2, 4)
    assert trainer.train_loop_config["pipeline"]["scaling"]["num_workers"] == [2, 4]


def test_process_group_variables_do_not_replace_the_storage_ones(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    config = load_pipeline_config(None, {"scaling.env": {"NCCL_SOCKET_IFNAME": "eth0"}})
    env = build_trainer(config, name="r", storage=resolve_storage(str(tmp_path))).run_config.worker_runtime_env
    assert env["env_vars"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert env["env_vars"]["NCCL_SOCKET_IFNAME"] == "eth0"


def test_ranking_checkpoints_by_a_validation_metric_needs_validation(tmp_path) -> None:
    config = load_pipeline_config(None, {"val": False, "checkpoint.score_attribute": "mAP50-95"})
    with pytest.raises(ConfigError, match="set val=true or checkpoint.score_attribute=fitness"):
        build_trainer(config, name="r", storage=resolve_storage(str(tmp_path)))


def test_address_resolution(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address() == "local" and resolve_address(join_running=True) is None
    assert resolve_address("ray://head:10001") == "ray://head:10001"
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    assert resolve_address() == "http://head:8265" == resolve_address(join_running=True)
    assert resolve_address("local") == "local"  # an explicit address wins over RAY_ADDRESS


class FakeRay:
    """Records ``ray.init`` calls; ``failures`` are raised by the first calls."""

    def __init__(self, initialized: bool = False, failures: list[Exception] | None = None) -> None:
        self.initialized, self.failures, self.calls, self.shutdowns = initialized, list(failures or []), [], 0

    def install(self, monkeypatch) -> FakeRay:
        import ray

        monkeypatch.setattr(ray, "is_initialized", lambda: self.initialized)
        monkeypatch.setattr(ray, "init", self.init)
        monkeypatch.setattr(ray, "shutdown", self.shutdown)
        return self

    def init(self, **kwargs) -> None:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        self.initialized = True

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_init_ray_starts_a_private_local_instance(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = FakeRay().install(monkeypatch)
    assert init_ray(num_cpus=3, include_dashboard=False) is True
    (call,) = fake.calls
    assert isinstance(call.pop("dashboard_port"), int)  # an API port of its own (test_driver_dashboard.py)
    assert call == {"address": "local", "num_cpus": 3, "include_dashboard": False,
                    "logging_level": logging.WARNING, "log_to_driver": True}
    assert init_ray() is False and len(fake.calls) == 1  # already initialised: nothing happens


def test_init_ray_joins_without_local_only_options(monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    fake = FakeRay().install(monkeypatch)
    assert init_ray(num_cpus=3, include_dashboard=False, logging_level=logging.INFO) is True
    assert fake.calls == [{"address": "127.0.0.1:6379", "logging_level": logging.INFO, "log_to_driver": True}]


def test_init_ray_leaves_the_choice_to_ray_when_joining_a_running_cluster_is_wanted(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = FakeRay().install(monkeypatch)
    init_ray(None, join_running=True)
    assert fake.calls[0]["address"] is None


def test_init_ray_retries_a_local_start_that_timed_out(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    timeout = Exception("The current node timed out during startup.")
    fake = FakeRay(failures=[timeout, timeout]).install(monkeypatch)
    assert init_ray("local") is True
    assert len(fake.calls) == 3 and fake.shutdowns == 2
    hopeless = FakeRay(failures=[timeout] * 3).install(monkeypatch)
    with pytest.raises(Exception, match="timed out during startup"):
        init_ray("local")
    assert len(hopeless.calls) == 3
    other = FakeRay(failures=[RuntimeError("no space left")]).install(monkeypatch)
    with pytest.raises(RuntimeError, match="no space left"):
        init_ray("local")
    assert len(other.calls) == 1


def _ray_init_calls(path: Path) -> list[int]:
    """Lines of ``ray.init(...)`` / ``init(...)`` imported from ray, read with ``ast`` (docstrings do not count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "ray" for alias in node.names if alias.name == "init"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "init" and isinstance(func.value, ast.Name)
                and func.value.id == "ray") or (isinstance(func, ast.Name) and func.id in imported):
            lines.append(node.lineno)
    return lines


def test_init_ray_is_the_only_ray_init_call() -> None:
    files = [REPO / "main_job.py", *(path for package in ("pipelines", "tune", "serve")
                                      for path in sorted((REPO / package).rglob("*.py")))]
    calls = {str(path.relative_to(REPO)): lines for path in files if (lines := _ray_init_calls(path))}
    assert list(calls) == ["pipelines/driver.py"], calls


def test_no_trainer_is_built_outside_the_driver() -> None:
    builders = [str(path.relative_to(REPO)) for package in ("pipelines", "tune")
                for path in sorted((REPO / package).rglob("*.py")) if "TorchTrainer(" in path.read_text()]
    assert builders == ["pipelines/driver.py"], builders
