"""KubeRay manifests: strict CRD validation, the operator's own admission rules, and what the platform needs of them.

Strictness follows `kubectl apply --validate=strict` (unknown fields are errors); see `k8s_schema.py`.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import ray
import tomllib
import yaml
from k8s_schema import REPO_ROOT, cluster_specs, load_manifests, operator_errors, pod_templates, schema_errors
from ray.runtime_env import RuntimeEnv

KUBERAY_DIR = REPO_ROOT / "infra" / "kuberay"
MANIFEST_FILES = sorted(KUBERAY_DIR.glob("*.yaml"))
SECRET_NAMES = ("yolov12-s3", "yolov12-mlflow")
AUTH_SECRET = "yolov12-ray-auth"
CREDENTIAL_ENV = re.compile(r"(ACCESS_KEY|SECRET|PASSWORD|TOKEN|USERNAME|TRACKING_URI|ENDPOINT_URL|API_KEY)")
SERVE_KEY_SECRET = {"name": "yolov12-serve-api-key", "key": "api_key"}
SECRET_SHAPED = re.compile(r"(AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]|-----BEGIN [A-Z ]*PRIVATE KEY)")


def _docs() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}:{doc['kind']}", doc) for path in MANIFEST_FILES for doc in load_manifests(path)]


DOCS = _docs()
DOC_IDS = [name for name, _ in DOCS]


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def _job(component: str) -> dict[str, Any]:
    jobs = _by_kind("RayJob")
    (job,) = [doc for doc in jobs if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return job


def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    return template["spec"]["containers"]


def _gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


def _cpus(quantity: str | int) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_the_platform_manifests_are_all_there():
    kinds = sorted(doc["kind"] for _, doc in DOCS)
    assert kinds == ["RayCluster", "RayJob", "RayJob", "RayJob", "RayJob", "RayService"], kinds
    components = {doc["metadata"]["labels"]["app.kubernetes.io/component"] for doc in _by_kind("RayJob")}
    assert components == {"train", "train-stream", "sweep", "batch-predict"}


@pytest.mark.parametrize("doc", [doc for _, doc in DOCS], ids=DOC_IDS)
def test_manifest_validates_strictly_against_the_crd(doc):
    errors = schema_errors(doc)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("doc", [doc for _, doc in DOCS], ids=DOC_IDS)
def test_manifest_passes_the_operators_admission_checks(doc):
    errors = operator_errors(doc)
    assert not errors, "\n".join(errors)


def _set(doc: dict[str, Any], path: str, value: Any, *, rename: str | None = None) -> dict[str, Any]:
    """Copy of doc with the key at dotted path (list indexes as numbers) set to value or renamed."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if rename is not None:
        node[rename] = node.pop(last)
    else:
        node[last] = value
    return out


MISTAKES = [
    # (kind, path, rename-to or None, value, the error must mention)
    ("RayCluster", "spec.workerGroupSpecs.0.maxReplicas", "maxReplica", None,
     "'maxReplica' (did you mean 'maxReplicas'?)"),
    ("RayCluster", "spec.enableInTreeAutoscaling", "enableInTreeAutoScaling", None, "enableInTreeAutoScaling"),
    ("RayCluster", "spec.headGroupSpec.template.spec.containers.0.envFrom", "envfrom", None, "'envfrom'"),
    ("RayCluster", "spec.authOptions.mode", None, "tokens", "'tokens' is not one of ['disabled', 'token']"),
    ("RayCluster", "spec.headGroupSpec.rayStartParams.num-cpus", None, 0, "0 is not of type 'string'"),
    ("RayCluster", "spec.workerGroupSpecs.1.template.spec.tolerations.0.effect", "efect", None, "'efect'"),
    ("RayJob", "spec.activeDeadlineSeconds", "activeDeadlineSecond", None, "activeDeadlineSecond"),
    ("RayJob", "spec.backoffLimit", None, "2", "'2' is not of type 'integer'"),
    ("RayService", "spec.serveConfigV2", "serveConfig", None, "'serveConfig' (did you mean 'serveConfigV2'?)"),
    ("RayService", "metadata.name", "nme", None, "'nme'"),
]


@pytest.mark.parametrize(("kind", "path", "rename", "value", "message"), MISTAKES, ids=[m[1] for m in MISTAKES])
def test_a_misspelt_or_mistyped_field_is_an_error(kind, path, rename, value, message):
    broken = _set(_by_kind(kind)[0], path, value, rename=rename)
    errors = "\n".join(schema_errors(broken))
    assert message in errors, errors


def test_quantities_are_int_or_string_and_cel_guarded_fields_are_refused():
    cluster = _by_kind("RayCluster")[0]
    limits = "spec.headGroupSpec.template.spec.containers.0.resources.limits.cpu"
    assert schema_errors(_set(cluster, limits, 2)) == []
    assert schema_errors(_set(cluster, limits, "2500m")) == []
    assert schema_errors(_set(cluster, limits, [2])) != []
    # managedBy carries a CEL rule that cannot be evaluated offline, so the validator refuses the field.
    managed = _set(cluster, "spec.managedBy", "ray.io/kuberay-operator")
    assert any("CEL rule" in error for error in schema_errors(managed))


def test_operator_rules_catch_what_the_schema_cannot():
    cluster = _by_kind("RayCluster")[0]
    assert operator_errors(_set(cluster, "metadata.name", "YOLO_v12"))
    assert operator_errors(_set(cluster, "spec.rayVersion", "2.40.0"))  # token auth needs >= 2.52
    job = _job("sweep")
    assert operator_errors(_set(job, "spec.shutdownAfterJobFinishes", True))
    assert operator_errors(_set(job, "spec.activeDeadlineSeconds", 0))


def test_raycluster_autoscales_with_an_idle_head_and_cpu_and_gpu_groups():
    (cluster,) = _by_kind("RayCluster")
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu", "gpu-8x"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group.get("replicas", group["minReplicas"]) <= group["maxReplicas"]
        assert group["maxReplicas"] >= 1
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for name in ("gpu", "gpu-8x"):
        gpu_template = groups[name]["template"]
        assert all(_gpus(container) >= 1 for container in _containers(gpu_template))
        assert toleration in gpu_template["spec"]["tolerations"]
    assert all(_gpus(container) == 0 for container in _containers(groups["cpu"]["template"]))


@pytest.mark.parametrize("doc", [doc for _, doc in DOCS if doc["kind"] != "RayJob" or "rayClusterSpec" in doc["spec"]],
                         ids=[name for name, doc in DOCS if doc["kind"] != "RayJob" or "rayClusterSpec" in doc["spec"]])
def test_every_cluster_has_token_auth_and_the_installed_ray_version(doc):
    lock = (REPO_ROOT / "requirements" / "lock-py311.txt").read_text()
    assert f"\nray=={ray.__version__}\n" in f"\n{lock}", "installed ray differs from the lock"
    for where, cluster in cluster_specs(doc):
        assert cluster["authOptions"] == {"mode": "token", "secretName": AUTH_SECRET}, where
        assert cluster["rayVersion"] == ray.__version__, where
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", f"{where}: the head must do no work"


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=DOC_IDS)
def test_credentials_are_referenced_from_secrets_never_inlined(name, doc):
    assert doc["kind"] != "Secret"
    for where, template in pod_templates(doc):
        for container in _containers(template):
            refs = [source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source]
            assert sorted(refs) == sorted(SECRET_NAMES), f"{where}/{container['name']}: envFrom secretRefs {refs}"
            for env in container.get("env", []):
                assert not (CREDENTIAL_ENV.search(env["name"]) and "value" in env), f"{where}: {env['name']} inlined"
    runtime_env = yaml.safe_load(doc["spec"].get("runtimeEnvYAML", "") or "{}")
    assert not [key for key in runtime_env.get("env_vars", {}) if CREDENTIAL_ENV.search(key)], name
    text = (KUBERAY_DIR / name.split(":")[0]).read_text()
    assert not SECRET_SHAPED.search(text), f"{name} holds something shaped like a credential"


def _project_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.parametrize("doc", [doc for _, doc in DOCS if list(pod_templates(doc))],
                         ids=[name for name, doc in DOCS if list(pod_templates(doc))])
def test_pods_run_the_project_images_non_root(doc):
    version = _project_version()
    for where, template in pod_templates(doc):
        context = template["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000, where  # USER 1000 in the images
        for container in _containers(template):
            flavour = "gpu" if _gpus(container) else "cpu"
            assert container["image"] == f"registry.example.com/yolov12-platform:{version}-{flavour}", where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def test_train_job_owns_a_cluster_with_deadlines_retries_and_cleanup():
    spec = _job("train")["spec"]
    assert "rayClusterSpec" in spec and "clusterSelector" not in spec
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["backoffLimit"] >= 1
    RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))  # raises on an invalid runtime env


def test_sweep_job_targets_the_shared_autoscaling_cluster():
    spec = _job("sweep")["spec"]
    (cluster,) = _by_kind("RayCluster")
    assert "rayClusterSpec" not in spec
    assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert cluster["metadata"]["labels"]["ray.io/cluster"] == cluster["metadata"]["name"]
    assert not spec.get("shutdownAfterJobFinishes", False)
    assert spec["activeDeadlineSeconds"] > 0 and spec["backoffLimit"] >= 0
    RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))


def _entrypoint(component: str) -> tuple[str, Path, list[str]]:
    """(module, config path, overrides) of a RayJob entrypoint `python -m MODULE --config PATH [key=value ...]`."""
    words = shlex.split(_job(component)["spec"]["entrypoint"], comments=True)
    assert words[:2] == ["python", "-m"] and words[3] == "--config", words
    assert all("=" in word for word in words[5:]), words
    return words[2], REPO_ROOT / words[4], words[5:]


def _require_module(module: str) -> None:
    """Skip (naming the file) while the module is not written yet; once its file exists it must import."""
    source = REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not source.is_file():
        pytest.skip(f"{source.relative_to(REPO_ROOT)} is not written yet: {module} is checked once it exists")
    spec = importlib.util.find_spec(module)
    assert spec is not None and Path(spec.origin) == source, f"{module} does not resolve to {source}"


@pytest.mark.parametrize("component", ["train", "train-stream", "sweep"])
def test_job_entrypoint_runs_a_real_module_with_a_real_config(component):
    module, config, _ = _entrypoint(component)
    assert module == {"train": "pipelines.train", "train-stream": "pipelines.train", "sweep": "tune.sweep"}[component]
    _require_module(module)
    assert config.is_file(), f"{config.relative_to(REPO_ROOT)} named by the {component} RayJob does not exist"


def test_train_entrypoint_config_loads_and_fits_its_cluster():
    module, config, overrides = _entrypoint("train")
    _require_module(module)
    from pipelines.config import load_pipeline_config

    pipeline = load_pipeline_config(config, overrides)
    assert pipeline.storage.name, "a fixed storage.name lets a retried RayJob resume instead of starting over"
    assert pipeline.storage.storage_path.startswith("s3://"), "multi-node runs need shared storage"
    scaling = pipeline.scaling
    groups = _job("train")["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    wanted = scaling.resources_per_worker or {}
    fitting = 0
    for group in groups:
        (container,) = _containers(group["template"])
        pod_cpu, pod_gpu = _cpus(container["resources"]["limits"]["cpu"]), _gpus(container)
        if scaling.use_gpu and not pod_gpu:
            continue
        per_pod = min(pod_cpu // wanted.get("CPU", 1), pod_gpu // wanted.get("GPU", 1) if scaling.use_gpu else 1e9)
        fitting += int(per_pod) * group["maxReplicas"]
    assert fitting >= scaling.num_workers, f"{scaling.num_workers} workers of {wanted} do not fit the job's cluster"


def test_streaming_train_job_decodes_on_the_cpu_group_of_the_shared_cluster():
    """The ranks fit the GPU pods, and every decode task fits a group that advertises the decode resource."""
    module, config, overrides = _entrypoint("train-stream")
    _require_module(module)
    from pipelines.cluster_fit import check_fit, load_cluster
    from pipelines.config import load_pipeline_config

    spec = _job("train-stream")["spec"]
    (cluster,) = _by_kind("RayCluster")
    assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    pipeline = load_pipeline_config(config, overrides)
    assert pipeline.data.loader == "ray_data" and pipeline.storage.name
    assert pipeline.train.data.data.startswith("s3://"), "the job streams from S3: no node holds the train split"
    shared = load_cluster(KUBERAY_DIR / "raycluster.yaml")
    assert check_fit(pipeline, shared, job="stream").startswith("stream fits")
    task = {"CPU": pipeline.data.decode_cpus, **pipeline.data.decode_resources}
    decoding = [g for g in shared.groups if all(g.resources.get(k, 0) >= v for k, v in task.items())]
    assert decoding and all("GPU" not in g.resources for g in decoding), "decode tasks land on CPU pods only"
    per_pod = [min(g.resources[k] // v for k, v in task.items()) for g in decoding]
    assert sum(n * g.count for n, g in zip(per_pod, decoding)) >= pipeline.data.decode_tasks, \
        "the CPU group holds all the decode tasks at once"
    RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))


def test_batch_predict_job_parses_and_fits_the_shared_cluster():
    """The entrypoint's arguments are a valid job config with shared storage on both sides, and its largest actor
    pool fits the cluster's CPU group."""
    spec = _job("batch-predict")["spec"]
    (cluster,) = _by_kind("RayCluster")
    assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    words = shlex.split(spec["entrypoint"])
    assert words[:3] == ["python", "-m", "pipelines.batch_predict"], words
    _require_module("pipelines.batch_predict")
    from pipelines.batch_predict import parse_config

    config = parse_config(words[3:])
    assert config.source.startswith("s3://") and config.output.startswith("s3://"), "actors on many nodes"
    assert config.model.startswith("models:/"), "the job names a registered version, for its lineage"
    (group,) = [g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "cpu"]
    (container,) = _containers(group["template"])
    pod_cpus = _cpus(container["resources"]["limits"]["cpu"])
    assert config.concurrency[1] * config.num_cpus <= pod_cpus * group["maxReplicas"]
    assert config.num_cpus <= pod_cpus, "one actor must fit one CPU worker pod"
    RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))


def test_sweep_entrypoint_config_loads_with_shared_storage():
    _, config, overrides = _entrypoint("sweep")
    _require_module("tune.config")
    from tune.config import load_sweep_config

    sweep = load_sweep_config(config, overrides)
    assert sweep.storage_path.startswith("s3://"), "trials on several nodes need shared storage"


def test_rayservice_requires_the_api_key_from_a_secret_on_every_pod():
    (service,) = _by_kind("RayService")
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    key_env = app["args"].get("api_key_env")
    assert key_env, "the RayService binds 0.0.0.0: its application must set api_key_env"
    templates = list(pod_templates(service))
    assert len(templates) == 3  # head, cpu and gpu workers: the app is built on the head, served on the workers
    for where, template in templates:
        for container in _containers(template):
            entries = [env for env in container.get("env", []) if env["name"] == key_env]
            assert len(entries) == 1, f"{where}/{container['name']}: no {key_env} in env"
            assert entries[0] == {"name": key_env, "valueFrom": {"secretKeyRef": SERVE_KEY_SECRET}}, where
