"""Can a Ray Train job's workers be placed on a cluster? Read from a KubeRay manifest or a Ray cluster launcher config.

A worker needs all of its resources (``scaling.resources_per_worker``, Ray's defaults filled in) on one node, so the
check packs workers per node: a node of 8 CPUs and 2 GPUs holds two ``{CPU: 4, GPU: 1}`` workers, never a third,
whatever the rest of the cluster has. A node's Ray resources are read the way Ray reads them:

- KubeRay (``RayCluster``, or a ``RayJob``'s own ``rayClusterSpec``): the group's ``resources`` field, else
  ``rayStartParams`` (``num-cpus``, ``num-gpus``, ``memory``, ``resources``), else the Ray container's limits, else
  its requests (``nvidia.com/gpu`` counts as GPUs); the head counts as one node (with ``num-cpus: "0"`` it holds no
  worker). A group has ``maxReplicas`` pods when the cluster autoscales, ``replicas`` otherwise.
- the launcher (``available_node_types``): each type's ``resources`` (written out: on AWS they are otherwise filled
  from EC2 at ``ray up``), at most its ``max_workers`` nodes and the global ``max_workers`` over all types.

An elastic job (``scaling.num_workers: [min, max]``) fits when ``min`` workers do. Placement strategies:
``STRICT_PACK`` needs every worker on one node, ``STRICT_SPREAD`` one worker per node; ``PACK``/``SPREAD`` are
preferences and may use any node.

Usage::

    python -m pipelines.cluster_fit configs/coco-4x8.yaml infra/kuberay/raycluster.yaml [key=value ...]
    python -m pipelines.cluster_fit infra/kuberay/rayjob-train.yaml      # the config its entrypoint runs
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import PipelineConfig, ScalingSection, load_pipeline_config
from yolov12.config.base import ConfigError

QUANTITY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": Decimal("1e-9"),
                     "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                     "P": 10**15, "E": 10**18}


class ClusterFitError(ConfigError):
    """A cluster description cannot be read, or a job does not fit it (one line naming both sides)."""


@dataclass(frozen=True)
class NodeGroup:
    """Nodes (pods) of one shape: ``count`` of them at most, each with Ray ``resources`` (memory in bytes).

    ``head``: the head node, which a launcher's global ``max_workers`` does not count.
    """

    name: str
    count: int
    resources: dict[str, float]
    head: bool = False


@dataclass(frozen=True)
class Cluster:
    """The node groups of a cluster; ``max_nodes`` caps the worker nodes over all groups (the launcher's
    ``max_workers``; the head is not counted)."""

    source: str
    groups: tuple[NodeGroup, ...]
    max_nodes: int | None = None


@dataclass(frozen=True)
class Fit:
    """How many workers of one shape a cluster holds, and on which groups (most workers per node first)."""

    need: int
    capacity: int
    by_group: dict[str, tuple[int, int]]  # group -> (nodes used, workers per node)

    @property
    def fits(self) -> bool:
        return self.capacity >= self.need


def worker_resources(scaling: ScalingSection) -> dict[str, float]:
    """What Ray reserves per worker: ``resources_per_worker`` without zeros (default ``{CPU: 1}``, or ``{GPU: 1}``
    with GPUs), plus ``GPU: 1`` when ``use_gpu`` and no GPU count is given (``ray.train.ScalingConfig``'s rule)."""
    if scaling.resources_per_worker is None:
        resources = {"GPU": 1.0} if scaling.use_gpu else {"CPU": 1.0}
    else:
        resources = {key: float(value) for key, value in scaling.resources_per_worker.items() if value != 0}
    if scaling.use_gpu:
        resources.setdefault("GPU", 1.0)
    return resources


def workers_per_node(node: dict[str, float], worker: dict[str, float]) -> int:
    """Workers of shape ``worker`` one node holds (each needs all its resources on that node)."""
    counts = [math.floor(node.get(key, 0.0) / amount + 1e-9) for key, amount in worker.items() if amount > 0]
    return min(counts) if counts else 0


def fit_workers(cluster: Cluster, worker: dict[str, float], need: int, strategy: str = "PACK") -> Fit:
    """Place ``need`` workers of one shape: the cluster's capacity for them and the groups they would use."""
    per_node = sorted(((workers_per_node(group.resources, worker), group) for group in cluster.groups
                       if group.count > 0), key=lambda item: -item[0])
    per_node = [(workers, group) for workers, group in per_node if workers > 0]
    if strategy == "STRICT_PACK":
        per_node = [(workers, NodeGroup(group.name, 1, group.resources, group.head)) for workers, group in per_node[:1]]
    elif strategy == "STRICT_SPREAD":
        per_node = [(1, group) for _, group in per_node]
    nodes_left = cluster.max_nodes if cluster.max_nodes is not None else sum(g.count for _, g in per_node)
    capacity, placed, by_group = 0, 0, {}
    for workers, group in per_node:
        nodes = group.count if group.head else min(group.count, nodes_left)
        nodes_left -= 0 if group.head else nodes
        capacity += workers * nodes
        used = min(nodes, -(-max(need - placed, 0) // workers))
        if used:
            by_group[group.name] = (used, workers)
            placed += used * workers
    return Fit(need, capacity, by_group)


def check_fit(config: PipelineConfig, cluster: Cluster, job: str = "the job") -> str:
    """One line saying where ``config``'s workers go on ``cluster``; :class:`ClusterFitError` when they cannot."""
    scaling = config.scaling
    if scaling.max_workers == 0:
        return f"{job} trains in the driver's process (scaling.num_workers=0): nothing to place on {cluster.source}"
    worker = worker_resources(scaling)
    fit = fit_workers(cluster, worker, scaling.min_workers, scaling.placement_strategy)
    wanted = (f"{scaling.min_workers}-{scaling.max_workers}" if scaling.elastic else str(scaling.min_workers))
    shape = f"{wanted} workers x {_resources_text(worker)} ({scaling.placement_strategy})"
    if not fit.fits:
        raise ClusterFitError(f"{job} needs {shape}; {cluster.source} can hold at most {fit.capacity} of them "
                              f"({_groups_text(cluster, worker)}): add nodes that hold a whole worker, or ask for "
                              "fewer or smaller workers")
    where = ", ".join(f"{name}: {nodes} node(s) x {workers}" for name, (nodes, workers) in fit.by_group.items())
    elastic = ""
    if scaling.elastic:
        elastic = f"; grows to {min(fit.capacity, scaling.max_workers)} of at most {scaling.max_workers}"
    return f"{job} fits {cluster.source}: {shape} on {where}{elastic}"


def _groups_text(cluster: Cluster, worker: dict[str, float]) -> str:
    parts = [f"{group.name}: {group.count} x {workers_per_node(group.resources, worker)}" for group in cluster.groups]
    cap = f"; at most {cluster.max_nodes} worker nodes" if cluster.max_nodes is not None else ""
    return "nodes x workers each: " + ", ".join(parts) + cap


def _resources_text(resources: dict[str, float]) -> str:
    def number(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else f"{value:g}"

    return "{" + ", ".join(f"{key}: {number(value)}" for key, value in resources.items()) + "}"


def parse_quantity(value: Any, where: str) -> Decimal:
    """A Kubernetes quantity (``8``, ``500m``, ``48Gi``, ``1e3``) as a number; ``where`` names it in errors."""
    text = str(value).strip()
    suffix = next((s for s in sorted(QUANTITY_SUFFIXES, key=len, reverse=True) if text.endswith(s)), "")
    number = text[: len(text) - len(suffix)] if suffix else text
    try:
        return Decimal(number) * Decimal(QUANTITY_SUFFIXES.get(suffix, 1))
    except InvalidOperation:
        raise ClusterFitError(f"{where}={value!r} is not a Kubernetes quantity (e.g. 8, 500m, 48Gi)") from None


def _rounded_up(value: Any, where: str) -> int:
    return int(parse_quantity(value, where).to_integral_value(rounding="ROUND_UP"))


def kuberay_node_resources(group: dict[str, Any], where: str) -> dict[str, float]:
    """Ray resources of one pod of a KubeRay group (or the head): see the module docstring for the order."""
    group_resources = group.get("resources") or {}  # KubeRay's group-level field wins over everything else
    explicit = {key: _rounded_up(value, f"{where}.resources.{key}") for key, value in group_resources.items()}
    params = group.get("rayStartParams") or {}
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise ClusterFitError(f"{where}: the pod template has no containers (the Ray container comes first)")
    k8s = containers[0].get("resources") or {}
    limits, requests = k8s.get("limits") or {}, k8s.get("requests") or {}
    resources: dict[str, float] = {}
    for ray_key, param, k8s_key in (("CPU", "num-cpus", "cpu"), ("GPU", "num-gpus", "gpu"),
                                    ("memory", "memory", "memory")):
        if ray_key in explicit:
            resources[ray_key] = explicit[ray_key]
        elif param in params:
            resources[ray_key] = _rounded_up(params[param], f"{where}.rayStartParams.{param}")
        else:
            amount = _container_amount(limits, requests, k8s_key, f"{where}.template.containers[0].resources")
            if amount:
                resources[ray_key] = amount
    if "CPU" not in resources:
        raise ClusterFitError(f"{where}: no CPU count (set rayStartParams num-cpus or the Ray container's cpu limit)")
    resources.update({key: value for key, value in explicit.items() if key not in ("CPU", "GPU", "memory")})
    resources.update(_custom_resources(params.get("resources"), f"{where}.rayStartParams.resources")
                     if not explicit else {})
    return {key: float(value) for key, value in resources.items()}


def _container_amount(limits: dict[str, Any], requests: dict[str, Any], key: str, where: str) -> int:
    """The limit, else the request, of ``cpu``/``memory``; for ``gpu`` the first ``*gpu`` key (``nvidia.com/gpu``)
    with a positive amount, as Ray's KubeRay autoscaler reads it."""
    for kind, table in (("limits", limits), ("requests", requests)):
        for name, value in table.items():
            if name == key or (key == "gpu" and name.endswith("gpu")):
                amount = _rounded_up(value, f"{where}.{kind}.{name}")
                if amount > 0 or key != "gpu":
                    return amount
    return 0


def _custom_resources(text: Any, where: str) -> dict[str, float]:
    if not text:
        return {}
    try:  # KubeRay's spelling is a quoted JSON object: '"{\"Custom\": 1}"'
        value = json.loads(str(text).strip().strip("'").strip('"').replace('\\"', '"'))
    except json.JSONDecodeError:
        raise ClusterFitError(f"{where}={text!r} is not a JSON object such as '\"{{\\\"custom\\\": 1}}\"'") from None
    if not isinstance(value, dict):
        raise ClusterFitError(f"{where}={text!r} is not a JSON object of resource amounts")
    return {str(key): float(amount) for key, amount in value.items()}


def kuberay_cluster(spec: dict[str, Any], source: str) -> Cluster:
    """The node groups of a ``RayCluster`` spec (also a ``RayJob``'s ``rayClusterSpec``)."""
    autoscaling = bool(spec.get("enableInTreeAutoscaling"))
    head = spec.get("headGroupSpec") or {}
    groups = [NodeGroup("head", 1, kuberay_node_resources(head, f"{source}: headGroupSpec"), head=True)]
    for index, group in enumerate(spec.get("workerGroupSpecs") or []):
        where = f"{source}: workerGroupSpecs[{index}]"
        low, high = int(group.get("minReplicas", 0)), int(group.get("maxReplicas", 2**31 - 1))
        replicas = high if autoscaling else min(max(int(group.get("replicas", low)), low), high)
        count = 0 if group.get("suspend") else replicas * int(group.get("numOfHosts", 1))
        groups.append(NodeGroup(str(group.get("groupName", f"group{index}")), count,
                                kuberay_node_resources(group, where)))
    return Cluster(source, tuple(groups))


def launcher_cluster(config: dict[str, Any], source: str) -> Cluster:
    """The node types of a Ray cluster launcher config (``available_node_types``, resources written out)."""
    head_type = config.get("head_node_type")
    groups = []
    for name, node_type in (config.get("available_node_types") or {}).items():
        resources = node_type.get("resources") or {}
        if "CPU" not in resources:
            raise ClusterFitError(f"{source}: available_node_types.{name}.resources has no CPU: write the "
                                  "instance's CPU/GPU counts (Ray fills them from the cloud only at `ray up`)")
        count = 1 if name == head_type else int(node_type.get("max_workers", 0))
        groups.append(NodeGroup(name, count, {key: float(value) for key, value in resources.items()},
                                head=name == head_type))
    max_nodes = config.get("max_workers")
    return Cluster(source, tuple(groups), None if max_nodes is None else int(max_nodes))


def load_cluster(path: str | Path, documents: list[dict[str, Any]] | None = None) -> Cluster:
    """The cluster a manifest or launcher config describes (a ``RayJob`` with ``clusterSelector`` has none)."""
    source = str(path)
    if documents is None:
        documents = _read_documents(Path(path))
    for document in documents:
        kind = document.get("kind")
        if kind == "RayCluster":
            return kuberay_cluster(document.get("spec") or {}, source)
        if kind == "RayJob":
            spec = document.get("spec") or {}
            if "rayClusterSpec" in spec:
                return kuberay_cluster(spec["rayClusterSpec"], source)
            raise ClusterFitError(f"{source}: the RayJob runs on the RayCluster selected by clusterSelector "
                                  f"{spec.get('clusterSelector')}: pass that RayCluster's manifest instead")
        if "available_node_types" in document:
            return launcher_cluster(document, source)
    raise ClusterFitError(f"{source} holds no RayCluster, RayJob with rayClusterSpec, or launcher config "
                          "(available_node_types)")


def _read_documents(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ClusterFitError(f"cluster description {path} does not exist (see infra/kuberay/ and infra/cluster/)")
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(doc, dict)]
    except yaml.YAMLError as exc:
        raise ClusterFitError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def rayjob_entrypoint_config(path: str | Path) -> tuple[str, list[str]]:
    """(config path, overrides) of a RayJob whose entrypoint is ``python -m pipelines.train --config PATH k=v``."""
    jobs = [doc for doc in _read_documents(Path(path)) if doc.get("kind") == "RayJob"]
    words = shlex.split(str((jobs[0].get("spec") or {}).get("entrypoint", "")) if jobs else "", comments=True)
    if "pipelines.train" not in words:
        raise ClusterFitError(f"{path}: no RayJob entrypoint runs pipelines.train: pass the pipeline config too "
                              "(python -m pipelines.cluster_fit CONFIG CLUSTER)")
    words = words[words.index("pipelines.train") + 1:]
    config, overrides, items = None, [], iter(words)
    for word in items:
        if word in ("--config", "-c"):
            config = next(items, None)
        elif word.startswith(("config=", "--config=")):
            config = word.split("=", 1)[1]
        elif "=" in word:
            overrides.append(word)
    if config is None:
        raise ClusterFitError(f"{path}: the RayJob entrypoint names no --config; pass the pipeline config too")
    return config, overrides


def main(argv: list[str] | None = None, prog: str = "pipelines.cluster_fit") -> int:
    """``[CONFIG] CLUSTER [key=value ...]``: print where the job's workers go (0), or one line why not (2)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    paths = [item for item in arguments if "=" not in item]
    overrides = [item for item in arguments if "=" in item]
    if not 1 <= len(paths) <= 2 or any(item in ("-h", "--help") for item in arguments):
        print(f"usage: {prog} [CONFIG] CLUSTER [key=value ...]  (CLUSTER: a KubeRay manifest or launcher config; "
              "without CONFIG, a RayJob's entrypoint names it)", file=sys.stderr)
        return 0 if any(item in ("-h", "--help") for item in arguments) else 2
    try:
        if len(paths) == 1:
            config_path, job_overrides = rayjob_entrypoint_config(paths[0])
            overrides = job_overrides + overrides
        else:
            config_path = paths[0]
        config = load_pipeline_config(config_path, overrides)
        print(check_fit(config, load_cluster(paths[-1]), job=config_path))
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
