"""The AWS cluster launcher config passes the checks `ray up --no-config-cache` makes before it calls AWS.

`ray up` runs `_bootstrap_config`: `prepare_config` (merge with the AWS defaults, fill node types) and
`validate_config` (Ray's own `ray/autoscaler/ray-schema.json`, plus its cross-field rules), then the provider's
AWS calls (IAM, key pair, subnets, security groups), which need an AWS account and are not made here.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest
import ray
import tomllib
import yaml
from k8s_schema import REPO_ROOT
from ray.autoscaler._private.util import prepare_config, validate_config

LAUNCHER = REPO_ROOT / "infra" / "cluster" / "aws.yaml"
# A key id, or a credential-named variable given a literal value (placeholders such as <...> or $VAR are fine).
CREDENTIAL = re.compile(r"(AKIA[0-9A-Z]{16}|(ACCESS_KEY|SECRET|PASSWORD|TOKEN)[A-Z_]*\s*[:=]\s*(?![<$]|\.\.\.)\S)")


def _raw() -> dict[str, Any]:
    return yaml.safe_load(LAUNCHER.read_text())


def _as_ray_up_would(config: dict[str, Any]) -> dict[str, Any]:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_launcher_config_is_accepted_by_rays_own_schema():
    prepared = _as_ray_up_would(_raw())
    assert prepared["provider"]["type"] == "aws"


@pytest.mark.parametrize(("path", "key", "value"), [
    ((), "idle_timeout_minute", 10),                      # misspelt top-level key
    (("docker",), "worker_imag", "x"),                    # misspelt docker key
    (("available_node_types", "gpu_worker_spot"), "min_worker", 0),
    (("available_node_types", "head"), "resources", {"CPU": "0"}),  # resources must be integers
])
def test_a_misspelt_or_mistyped_key_is_rejected(path, key, value):
    config = _raw()
    node = config
    for part in path:
        node = node[part]
    node[key] = value
    with pytest.raises(jsonschema.ValidationError):
        _as_ray_up_would(config)


def test_global_max_workers_must_cover_the_minimums():
    config = _raw()
    config["available_node_types"]["cpu_worker"]["min_workers"] = config["max_workers"] + 1
    with pytest.raises(ValueError, match="max_workers"):
        _as_ray_up_would(config)


def test_head_cpu_workers_and_gpu_spot_workers():
    prepared = _as_ray_up_would(_raw())
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head does no training or serving work"
    spot = [t for t in types.values() if t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"]
    (gpu,) = spot
    assert re.match(r"^(g|p)\d", gpu["node_config"]["InstanceType"]), "spot workers must be GPU instances"
    assert gpu["docker"]["worker_image"].endswith("-gpu")
    cpu = [name for name, t in types.items() if t is not head and t is not gpu]
    assert cpu and all(types[name]["max_workers"] >= 1 for name in cpu)
    assert prepared["max_workers"] >= sum(t.get("max_workers", 0) for t in types.values() if t is not head)
    assert 0 < prepared["idle_timeout_minutes"] <= 60


def test_images_match_the_project_version_and_the_kuberay_manifests():
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    prepared = _as_ray_up_would(_raw())
    assert prepared["docker"]["image"] == f"registry.example.com/yolov12-platform:{version}-cpu"
    assert prepared["docker"]["pull_before_run"] is True
    types = prepared["available_node_types"].values()
    workers = [t["docker"]["worker_image"] for t in types if "docker" in t]
    gpu_types = [t for t in types if t["resources"].get("GPU")]
    assert len(workers) == len(gpu_types) >= 2, "the 1-GPU and the 8-GPU node types run the GPU image"
    assert set(workers) == {f"registry.example.com/yolov12-platform:{version}-gpu"}
    assert "latest" not in LAUNCHER.read_text()


def test_setup_replaces_the_defaults_and_checks_the_image():
    prepared = _as_ray_up_would(_raw())
    keys = ("setup_commands", "head_setup_commands", "worker_setup_commands")
    commands = " ".join(command for key in keys for command in prepared[key])
    # Ray's AWS defaults would pip-install a nightly Ray wheel and boto3: the image already has the pinned ones.
    assert "ray-wheels" not in commands and "pip install" not in commands
    assert f"ray.__version__ == '{ray.__version__}'" in commands


def test_secrets_come_from_a_file_mount_and_reach_ray_start():
    raw = _raw()
    assert not CREDENTIAL.search(LAUNCHER.read_text()), "the launcher config must not hold credentials"
    (target, source), = raw["file_mounts"].items()
    assert source.startswith("~/") and not source.startswith(("~/work", "./")), "the env file lives outside the repo"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = raw[key][-1]
        assert start.index(f". {target}") < start.index("ray start"), f"{key} must export the env file first"
        assert "set -a" in start
