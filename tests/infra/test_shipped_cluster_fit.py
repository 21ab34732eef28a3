"""Every shipped job fits the cluster it is shipped with, and the multi-node GPU pods are shaped for NCCL.

The fit is :mod:`pipelines.cluster_fit` (per-node packing of the job's workers); the pod checks are what a
4 x 8-GPU run needs of a pod: memory that includes its RAM-backed ``/dev/shm``, one zone for the whole group, and
process-group settings from the job's config rather than from the pod.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_schema import REPO_ROOT, load_manifests, pod_templates

from pipelines.cluster_fit import Cluster, check_fit, fit_workers, load_cluster, main, parse_quantity, worker_resources
from pipelines.config import load_pipeline_config

KUBERAY = REPO_ROOT / "infra" / "kuberay"
RAYCLUSTER = KUBERAY / "raycluster.yaml"
TRAIN_JOB = KUBERAY / "rayjob-train.yaml"
SWEEP_JOB = KUBERAY / "rayjob-sweep.yaml"
LAUNCHER = REPO_ROOT / "infra" / "cluster" / "aws.yaml"
COCO, COCO_4X8 = REPO_ROOT / "configs" / "coco.yaml", REPO_ROOT / "configs" / "coco-4x8.yaml"
ZONE = "topology.kubernetes.io/zone"


def _entrypoint(job: Path) -> tuple[Path, list[str]]:
    (doc,) = [doc for doc in load_manifests(job) if doc["kind"] == "RayJob"]
    words = shlex.split(doc["spec"]["entrypoint"], comments=True)
    return REPO_ROOT / words[words.index("--config") + 1], [word for word in words if "=" in word]


@pytest.mark.parametrize(("config", "cluster"), [
    (COCO, RAYCLUSTER), (COCO_4X8, RAYCLUSTER), (COCO, LAUNCHER), (COCO_4X8, LAUNCHER),
], ids=lambda path: path.name)
def test_shipped_configs_fit_the_shipped_clusters(config: Path, cluster: Path) -> None:
    line = check_fit(load_pipeline_config(config), load_cluster(cluster), job=config.name)
    assert line.startswith(f"{config.name} fits")


def test_the_train_job_fits_the_cluster_it_creates_with_no_gpu_left_idle(capsys: pytest.CaptureFixture) -> None:
    assert main([str(TRAIN_JOB)]) == 0, capsys.readouterr().err
    config_path, overrides = _entrypoint(TRAIN_JOB)
    config = load_pipeline_config(config_path, overrides)
    cluster = load_cluster(TRAIN_JOB)
    fit = fit_workers(cluster, worker_resources(config.scaling), config.scaling.max_workers)
    gpus = sum(group.count * group.resources.get("GPU", 0) for group in cluster.groups)
    assert fit.fits and gpus == config.scaling.max_workers, "the job's fixed cluster has exactly its GPUs"
    assert fit.by_group == {"gpu-8x": (4, 8)}, "4 pods x 8 workers: each pod is one whole 8-GPU node"


@pytest.mark.parametrize("cluster", [RAYCLUSTER, LAUNCHER], ids=lambda path: path.name)
def test_multi_gpu_jobs_only_fit_the_8_gpu_nodes(cluster: Path) -> None:
    """A worker of the COCO jobs needs more CPUs than a 1-GPU node has, so Ray never places (or the autoscaler
    never starts) a small node for them: the ranks share NVLink within a node and the nodes' fast network."""
    nodes = load_cluster(cluster)
    for config in (COCO, COCO_4X8):
        worker = worker_resources(load_pipeline_config(config).scaling)
        holding = [group for group in nodes.groups if fit_workers(Cluster("one", (group,)), worker, 1).fits]
        assert holding and all(group.resources.get("GPU") == 8 for group in holding), (config.name, holding)


def test_the_sweeps_trials_fit_the_shared_cluster() -> None:
    from tune.config import load_sweep_config  # noqa: PLC0415
    from tune.sweep import trial_pipeline  # noqa: PLC0415

    config_path, overrides = _entrypoint(SWEEP_JOB)
    sweep = load_sweep_config(config_path, overrides)
    cluster = load_cluster(RAYCLUSTER)
    trials = sweep.search.max_concurrent
    if sweep.resources.num_workers == 0:  # in-process trials: each reserves its own cpu/gpu
        trial = {"CPU": sweep.resources.cpu, "GPU": sweep.resources.gpu}
        assert fit_workers(cluster, {k: v for k, v in trial.items() if v}, trials).fits
    else:  # Train-in-Tune: every trial is a Ray Train job of the trials' pipeline config
        check_fit(trial_pipeline(sweep.resolve()), cluster)


def test_the_old_four_one_gpu_pods_cluster_is_refused_for_coco(tmp_path: Path) -> None:
    """The autoscaling cluster used to allow at most 4 one-GPU pods while configs/coco.yaml asks for 8 workers."""
    docs = load_manifests(RAYCLUSTER)
    (cluster,) = docs
    old_gpu = {"groupName": "gpu", "minReplicas": 0, "maxReplicas": 4, "rayStartParams": {}, "template": {"spec": {
        "containers": [{"name": "ray-worker", "resources": {"limits": {"cpu": "8", "memory": "48Gi",
                                                                        "nvidia.com/gpu": "1"}}}]}}}
    cluster["spec"]["workerGroupSpecs"] = [group for group in cluster["spec"]["workerGroupSpecs"]
                                           if group["groupName"] == "cpu"] + [old_gpu]
    path = tmp_path / "old-raycluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    assert main([str(COCO), str(path)]) == 2


def _gpu_containers(path: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(where, pod spec, Ray container, rayStartParams) of every GPU pod template of a manifest."""
    found = []
    for doc in load_manifests(path):
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        for group in spec.get("workerGroupSpecs", []):
            container = group["template"]["spec"]["containers"][0]
            if int(container["resources"].get("limits", {}).get("nvidia.com/gpu", 0)):
                found.append((f"{path.name}:{group['groupName']}", group["template"], container,
                              group.get("rayStartParams", {})))
    return found


GPU_PODS = _gpu_containers(RAYCLUSTER) + _gpu_containers(TRAIN_JOB)


@pytest.mark.parametrize(("where", "template", "container", "params"), GPU_PODS, ids=[p[0] for p in GPU_PODS])
def test_gpu_pod_memory_includes_its_shared_memory(where: str, template: dict, container: dict, params: dict
                                                   ) -> None:
    resources = container["resources"]
    assert resources["requests"] == resources["limits"], f"{where}: a GPU pod gets what it asks (Guaranteed QoS)"
    memory = parse_quantity(resources["limits"]["memory"], where)
    (shm,) = [volume for volume in template["spec"]["volumes"] if volume["name"] == "dshm"]
    assert shm["emptyDir"]["medium"] == "Memory"
    shm_size = parse_quantity(shm["emptyDir"]["sizeLimit"], where)
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm"
    gpus = int(resources["limits"]["nvidia.com/gpu"])
    # /dev/shm pages count against the pod's memory limit: the rest must still hold the training processes.
    assert memory - shm_size >= gpus * 16 * 2**30, f"{where}: {memory - shm_size} bytes left besides /dev/shm"
    # Ray's object store would take 95% of /dev/shm by default; a quarter at least stays for the DataLoader
    # workers' batches and NCCL's shared-memory buffers.
    assert int(params["object-store-memory"]) <= shm_size * 3 // 4, where


def _eight_gpu(pods: list) -> list:
    return [pod for pod in pods if int(pod[2]["resources"]["limits"]["nvidia.com/gpu"]) == 8]


@pytest.mark.parametrize(("where", "template", "container", "params"), _eight_gpu(GPU_PODS),
                         ids=[p[0] for p in _eight_gpu(GPU_PODS)])
def test_8_gpu_pods_share_one_zone(where: str, template: dict, container: dict, params: dict) -> None:
    affinity = template["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = affinity
    assert term["topologyKey"] == ZONE
    selector = term["labelSelector"]["matchLabels"]
    assert selector.get("ray.io/group") == where.split(":")[1]
    own = {**template["metadata"].get("labels", {})}
    if "ray.io/cluster" in selector:  # KubeRay's own label, set on a RayCluster of fixed name
        own["ray.io/cluster"] = selector["ray.io/cluster"]
    own["ray.io/group"] = where.split(":")[1]
    assert selector.items() <= own.items(), f"{where}: the pod must match its own affinity (the first one lands)"


@pytest.mark.parametrize("path", [RAYCLUSTER, TRAIN_JOB], ids=lambda path: path.name)
def test_process_group_settings_come_from_the_job_config_not_the_pod(path: Path) -> None:
    for doc in load_manifests(path):
        for where, template in pod_templates(doc):
            for container in template["spec"]["containers"]:
                names = [env["name"] for env in container.get("env", [])]
                assert not [n for n in names if n.startswith(("NCCL_", "FI_", "TORCH_NCCL_"))], where
    config_path, overrides = _entrypoint(TRAIN_JOB)
    config = load_pipeline_config(config_path, overrides)
    assert config.scaling.use_gpu and config.scaling.env and config.scaling.timeout_s > 0


def test_launcher_gpu_nodes_live_in_one_zone() -> None:
    raw = yaml.safe_load(LAUNCHER.read_text())
    assert "," not in raw["provider"]["availability_zone"], "NCCL traffic between GPU nodes stays in one zone"
    types = raw["available_node_types"]
    eight = [name for name, node in types.items() if node["resources"].get("GPU") == 8]
    assert eight and all(types[name]["node_config"]["InstanceType"].startswith(("p4d.", "p5.")) for name in eight)
    for config in (COCO, COCO_4X8):
        assert load_pipeline_config(config).scaling.max_workers <= sum(
            types[name]["max_workers"] * 8 for name in eight)
