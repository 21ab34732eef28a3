"""``pipelines.cluster_fit``: per-node packing of a job's workers, and node resources read as Ray reads them."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import _get_ray_resources_from_group_spec

from pipelines.cluster_fit import (
    Cluster,
    ClusterFitError,
    NodeGroup,
    check_fit,
    fit_workers,
    kuberay_node_resources,
    load_cluster,
    main,
    parse_quantity,
    worker_resources,
)
from pipelines.config import load_pipeline_config
from pipelines.driver import scaling_config

REPO = Path(__file__).resolve().parents[2]
GPU_POD = {"CPU": 8.0, "GPU": 1.0, "memory": 48 * 2**30}


def cluster(*groups: tuple[str, int, dict[str, float]], max_nodes: int | None = None, head_cpus: float = 0.0
            ) -> Cluster:
    head = NodeGroup("head", 1, {"CPU": head_cpus, "memory": 8 * 2**30}, head=True)
    return Cluster("test-cluster", (head, *(NodeGroup(*group) for group in groups)), max_nodes)


def job(batch: int = 48, **scaling) -> object:
    overrides = {f"scaling.{key}": value for key, value in scaling.items()}
    return load_pipeline_config(None, {"batch": batch, "tracking.enabled": False, **overrides})


def test_eight_one_gpu_workers_do_not_fit_four_one_gpu_pods() -> None:
    small = cluster(("cpu", 8, {"CPU": 8.0}), ("gpu", 4, GPU_POD))
    config = job(num_workers=8, use_gpu=True, resources_per_worker={"CPU": 8, "GPU": 1})
    with pytest.raises(ClusterFitError) as error:
        check_fit(config, small, job="coco")
    message = str(error.value)
    assert message.startswith("coco needs 8 workers x {CPU: 8, GPU: 1} (PACK); test-cluster can hold at most 4")
    assert "gpu: 4 x 1" in message and "cpu: 8 x 0" in message and "\n" not in message


def test_packing_is_per_node_not_over_the_cluster_total() -> None:
    three_pods = cluster(("gpu-4x", 3, {"CPU": 32.0, "GPU": 4.0}))
    worker = {"GPU": 3.0}  # 12 GPUs asked, 12 in the cluster, but one 3-GPU worker per 4-GPU pod
    assert fit_workers(three_pods, worker, 4).capacity == 3 and not fit_workers(three_pods, worker, 4).fits
    too_few_cpus = cluster(("gpu", 4, GPU_POD))  # a 10-CPU worker needs a pod with 10 CPUs, GPUs or not
    assert fit_workers(too_few_cpus, {"CPU": 10.0, "GPU": 1.0}, 1).capacity == 0
    assert fit_workers(too_few_cpus, {"CPU": 4.0, "GPU": 1.0}, 4).fits


def test_workers_go_to_the_nodes_that_hold_most_of_them_first() -> None:
    mixed = cluster(("gpu", 2, GPU_POD), ("gpu-8x", 4, {"CPU": 88.0, "GPU": 8.0}))
    fit = fit_workers(mixed, {"CPU": 8.0, "GPU": 1.0}, 17)
    assert fit.fits and fit.capacity == 34 and fit.by_group == {"gpu-8x": (3, 8)}
    assert fit_workers(mixed, {"CPU": 8.0, "GPU": 1.0}, 33).by_group == {"gpu-8x": (4, 8), "gpu": (1, 1)}


def test_the_head_with_no_cpus_holds_no_worker() -> None:
    assert fit_workers(cluster(), {"CPU": 1.0}, 1).capacity == 0
    assert fit_workers(cluster(head_cpus=2.0), {"CPU": 1.0}, 2).by_group == {"head": (1, 2)}


def test_strict_strategies() -> None:
    nodes = cluster(("gpu-8x", 2, {"CPU": 96.0, "GPU": 8.0}))
    worker = {"GPU": 1.0}
    assert fit_workers(nodes, worker, 8, "STRICT_PACK").fits
    assert not fit_workers(nodes, worker, 9, "STRICT_PACK").fits and fit_workers(nodes, worker, 9, "PACK").fits
    assert fit_workers(nodes, worker, 2, "STRICT_SPREAD").fits
    assert fit_workers(nodes, worker, 3, "STRICT_SPREAD").capacity == 2


def test_a_launchers_global_cap_limits_the_nodes() -> None:
    capped = cluster(("gpu-8x", 4, {"CPU": 96.0, "GPU": 8.0}), ("gpu", 8, GPU_POD), max_nodes=3)
    assert fit_workers(capped, {"GPU": 1.0}, 24).capacity == 24  # three 8-GPU nodes, the cap reached
    assert not fit_workers(capped, {"GPU": 1.0}, 25).fits


def test_an_elastic_job_fits_when_its_minimum_does() -> None:
    nodes = cluster(("cpu", 1, {"CPU": 6.0}))
    line = check_fit(job(num_workers=[2, 4], resources_per_worker={"CPU": 2}), nodes)
    assert "2-4 workers x {CPU: 2}" in line and "grows to 3 of at most 4" in line
    with pytest.raises(ClusterFitError, match=r"needs 4-6 workers x \{CPU: 2\} .* at most 3 of them"):
        check_fit(job(batch=60, num_workers=[4, 6], resources_per_worker={"CPU": 2}), nodes)


def test_an_in_process_job_needs_no_worker_nodes() -> None:
    assert "nothing to place" in check_fit(job(num_workers=0), cluster())


@pytest.mark.parametrize("scaling", [
    {"use_gpu": False}, {"use_gpu": True}, {"use_gpu": True, "resources_per_worker": {"CPU": 10}},
    {"use_gpu": True, "resources_per_worker": {"CPU": 8, "GPU": 2, "memory": 1e9}},
    {"use_gpu": False, "resources_per_worker": {"CPU": 2, "GPU": 0}},
])
def test_worker_resources_are_what_ray_reserves(scaling: dict) -> None:
    config = job(**scaling)
    assert worker_resources(config.scaling) == scaling_config(config.scaling)._resources_per_worker_not_none


def _group(resources: dict, params: dict | None = None, group_resources: dict | None = None) -> dict:
    group = {"groupName": "g", "minReplicas": 0, "maxReplicas": 2, "rayStartParams": params or {},
             "template": {"spec": {"containers": [{"name": "ray", "resources": resources}]}}}
    if group_resources:
        group["resources"] = group_resources
    return group


def _shipped_groups() -> list[dict]:
    groups = []
    for path in sorted((REPO / "infra" / "kuberay").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = doc.get("spec", {})
            spec = spec.get("rayClusterSpec", spec)
            groups += [group for group in spec.get("workerGroupSpecs", []) if "template" in group]
    return groups


GROUPS = [
    _group({"limits": {"cpu": "8", "memory": "48Gi", "nvidia.com/gpu": "1"}}),
    _group({"requests": {"cpu": "1500m", "memory": "2G"}}),
    _group({"limits": {"cpu": "88", "memory": "1000Gi", "nvidia.com/gpu": "8"}}, {"num-cpus": "80"}),
    _group({"limits": {"cpu": "8", "memory": "32Gi"}}, {"num-gpus": "2", "memory": "1000000000",
                                                         "resources": '"{\\"fast_disk\\": 1}"'}),
    _group({"limits": {"cpu": "8", "memory": "32Gi"}}, group_resources={"CPU": "6", "GPU": "1", "ssd": "2"}),
]


@pytest.mark.parametrize("group", GROUPS + _shipped_groups(), ids=lambda group: str(group.get("groupName")))
def test_node_resources_match_rays_kuberay_autoscaler(group: dict) -> None:
    ours = kuberay_node_resources(copy.deepcopy(group), "test")
    assert ours == {key: float(value) for key, value in _get_ray_resources_from_group_spec(group, False).items()}


def test_quantities() -> None:
    assert parse_quantity("48Gi", "x") == 48 * 2**30 and parse_quantity("500m", "x") == Decimal("0.5")
    assert parse_quantity("1e3", "x") == 1000 and parse_quantity(8, "x") == 8 and parse_quantity("2k", "x") == 2000
    with pytest.raises(ClusterFitError, match=r"spec.cpu='eight' is not a Kubernetes quantity"):
        parse_quantity("eight", "spec.cpu")


def test_a_job_on_a_selected_cluster_points_to_that_cluster(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("kind: RayJob\nspec:\n  clusterSelector: {ray.io/cluster: yolov12}\n")
    with pytest.raises(ClusterFitError, match="pass that RayCluster's manifest instead"):
        load_cluster(path)
    (tmp_path / "other.yaml").write_text("kind: Service\n")
    with pytest.raises(ClusterFitError, match="holds no RayCluster"):
        load_cluster(tmp_path / "other.yaml")
    with pytest.raises(ClusterFitError, match="does not exist"):
        load_cluster(tmp_path / "missing.yaml")


def test_a_launcher_node_type_must_state_its_resources(tmp_path: Path) -> None:
    path = tmp_path / "launcher.yaml"
    path.write_text("max_workers: 2\nhead_node_type: head\navailable_node_types:\n"
                    "  head: {resources: {CPU: 0}, node_config: {}}\n  gpu: {max_workers: 2, resources: {}}\n")
    with pytest.raises(ClusterFitError, match=r"available_node_types.gpu.resources has no CPU"):
        load_cluster(path)


def _manifest(tmp_path: Path, gpu_pods: int, entrypoint: str) -> Path:
    head = _group({"limits": {"cpu": "2", "memory": "8Gi"}}, {"num-cpus": "0"})
    gpu = _group({"limits": {"cpu": "8", "memory": "48Gi", "nvidia.com/gpu": "1"}})
    gpu.update(groupName="gpu", replicas=gpu_pods, minReplicas=gpu_pods, maxReplicas=gpu_pods)
    job = {"kind": "RayJob", "spec": {"entrypoint": entrypoint, "rayClusterSpec": {
        "headGroupSpec": head, "workerGroupSpecs": [gpu]}}}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_command_reads_the_rayjobs_own_entrypoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "job-config.yaml"
    config.write_text("train: {batch: 16}\nscaling: {num_workers: 4, use_gpu: true}\n")
    path = _manifest(tmp_path, 2, f"python -m pipelines.train --config {config} scaling.num_workers=2")
    assert main([str(path)]) == 0
    assert "2 workers x {GPU: 1} (PACK) on gpu: 2 node(s) x 1" in capsys.readouterr().out
    assert main([str(path), "scaling.num_workers=4"]) == 2  # the command line's overrides come last
    err = capsys.readouterr().err
    assert err.startswith("pipelines.cluster_fit: error: ") and "can hold at most 2 of them" in err
    assert err.count("\n") == 1
    assert main([str(config), str(path)]) == 2  # the config alone asks for 4 workers
    assert main([]) == 2 and main(["--help"]) == 0


def test_command_needs_a_config_when_the_entrypoint_names_none(tmp_path: Path, capsys: pytest.CaptureFixture
                                                              ) -> None:
    assert main([str(_manifest(tmp_path, 1, "python -m tune.sweep --config x.yaml"))]) == 2
    assert "no RayJob entrypoint runs pipelines.train" in capsys.readouterr().err
