"""Serve deploy configs (infra/serve/*.yaml and the RayService's serveConfigV2) are valid Ray Serve configs.

Ray's `ServeDeploySchema` ignores unknown keys (forward compatibility), so a misspelt option would silently do
nothing: `unknown_keys` checks every level against the schema's own fields as well.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_schema import REPO_ROOT, load_manifests
from pydantic import BaseModel
from ray import serve
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from serve.config import ServeAppConfig

SERVE_DIR = REPO_ROOT / "infra" / "serve"
IMPORT_PATH = "serve.app:build_app"
APP_FILE = REPO_ROOT / "serve" / "app.py"


def _rayservice_config() -> dict[str, Any]:
    (service,) = load_manifests(REPO_ROOT / "infra" / "kuberay" / "rayservice.yaml")
    return yaml.safe_load(service["spec"]["serveConfigV2"])


CONFIGS = {path.name: yaml.safe_load(path.read_text()) for path in sorted(SERVE_DIR.glob("*.yaml"))}
CONFIGS["rayservice.yaml:serveConfigV2"] = _rayservice_config()

# Which schema each nested mapping follows; free-form mappings (args, user_config, runtime_env) are not listed.
NESTED: dict[type[BaseModel], dict[str, type[BaseModel]]] = {
    ServeDeploySchema: {"http_options": HTTPOptionsSchema, "applications": ServeApplicationSchema},
    ServeApplicationSchema: {"deployments": DeploymentSchema},
    DeploymentSchema: {"autoscaling_config": AutoscalingConfig, "ray_actor_options": RayActorOptionsSchema},
}


def unknown_keys(values: dict[str, Any], schema: type[BaseModel], where: str = "") -> list[str]:
    """Keys that `schema` (and its nested schemas) do not define, as dotted paths."""
    fields = set(schema.model_fields) | {f.alias for f in schema.model_fields.values() if f.alias}
    found = [f"{where}{key}" for key in values if key not in fields]
    for key, child in NESTED.get(schema, {}).items():
        value = values.get(key)
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for index, item in enumerate(items):
            label = f"{key}[{item.get('name', index)}]" if isinstance(value, list) else key
            found += unknown_keys(item, child, f"{where}{label}.")
    return found


def test_there_is_a_cpu_and_a_gpu_config():
    assert {"cpu.yaml", "gpu.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_is_a_valid_serve_deploy_config_with_no_unknown_keys(name):
    config = CONFIGS[name]
    ServeDeploySchema.model_validate(config)
    assert unknown_keys(config, ServeDeploySchema) == []


def test_unknown_keys_catches_misspellings_that_serve_itself_accepts():
    config = yaml.safe_load((SERVE_DIR / "cpu.yaml").read_text())
    (detector,) = config["applications"][0]["deployments"]
    scaling = detector["autoscaling_config"]
    scaling["target_ongoing_request"] = scaling.pop("target_ongoing_requests")
    detector["num_replica"] = 2
    ServeDeploySchema.model_validate(config)  # Ray accepts it ...
    assert unknown_keys(config, ServeDeploySchema) == [  # ... we do not
        "applications[yolov12].deployments[Detector].num_replica",
        "applications[yolov12].deployments[Detector].autoscaling_config.target_ongoing_request",
    ]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_app_and_deployments_are_the_serving_application_with_autoscaling(name):
    (app,) = CONFIGS[name]["applications"]
    assert app["import_path"] == IMPORT_PATH
    deployments = {deployment["name"]: deployment for deployment in app["deployments"]}
    layout = {"Detector"} if ServeAppConfig.model_validate(app["args"]).single_deployment else {"Ingress", "Detector"}
    assert set(deployments) == layout  # Serve refuses options for a deployment the application does not have
    for deployment in deployments.values():
        scaling = deployment["autoscaling_config"]
        assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
        assert 0 < scaling["target_ongoing_requests"] <= deployment["max_ongoing_requests"]
        assert deployment["ray_actor_options"]["num_cpus"] > 0
    # A Detector replica must hold enough requests to fill a batch while the previous one runs.
    assert deployments["Detector"]["max_ongoing_requests"] >= 2 * app["args"]["max_batch_size"]
    assert 0 <= app["args"]["batch_wait_timeout_s"] < 1


def test_gpu_config_puts_detectors_on_gpus_and_cpu_config_does_not():
    gpus = {name: {deployment["name"]: deployment["ray_actor_options"].get("num_gpus", 0)
                   for deployment in config["applications"][0]["deployments"]}
            for name, config in CONFIGS.items()}
    assert gpus["gpu.yaml"] == {"Detector": 1}
    assert gpus["cpu.yaml"] == {"Detector": 0}


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_config_that_binds_beyond_loopback_requires_an_api_key(name):
    config = CONFIGS[name]
    (app,) = config["applications"]
    if config["http_options"]["host"] not in LOOPBACK:
        env = app["args"].get("api_key_env")
        assert env and re.fullmatch(r"[A-Z][A-Z0-9_]*", env), f"{name} binds {config['http_options']['host']} " \
            "but sets no api_key_env: anyone who reaches the port could use the model"
    ServeAppConfig.model_validate(app["args"])  # the args are the application's own typed config


def test_the_gpu_config_requires_an_api_key():
    assert CONFIGS["gpu.yaml"]["http_options"]["host"] == "0.0.0.0"
    assert CONFIGS["gpu.yaml"]["applications"][0]["args"]["api_key_env"] == "YOLOV12_API_KEY"


def test_rayservice_serves_exactly_the_gpu_config():
    assert CONFIGS["rayservice.yaml:serveConfigV2"] == CONFIGS["gpu.yaml"]
    assert CONFIGS["gpu.yaml"]["http_options"]["port"] == 8000  # KubeRay's serve service targets port 8000


def test_import_path_names_the_serving_module_file():
    module, _, attribute = IMPORT_PATH.partition(":")
    assert module == "serve.app" and attribute.isidentifier()
    assert APP_FILE == REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _deployments_in(package: str) -> dict[str, Any]:
    """Every Serve deployment object defined in the imported modules of `package`, by deployment name."""
    found = {}
    for name, module in list(sys.modules.items()):
        if name == package or name.startswith(f"{package}."):
            for value in vars(module).values():
                if isinstance(value, serve.Deployment):
                    found[value.name] = value
    return found


def check_application(import_path: str, configs: dict[str, dict[str, Any]]) -> None:
    """Import `module:builder` as Serve would and check it against the configs' args and deployment names."""
    module_name, _, attribute = import_path.partition(":")
    builder = getattr(importlib.import_module(module_name), attribute)
    assert callable(builder), f"{import_path} is not callable"
    parameters = list(inspect.signature(builder).parameters.values())
    assert len(parameters) == 1, f"a Serve application builder takes one argument (the args), not {parameters}"
    annotation = parameters[0].annotation
    for name, config in configs.items():
        (app,) = config["applications"]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation.model_validate(app["args"])  # Serve validates args against the builder's model: do the same
        missing = {d["name"] for d in app["deployments"]} - set(_deployments_in(module_name.split(".")[0]))
        assert not missing, f"{name}: deployments {sorted(missing)} are not defined in {module_name.split('.')[0]}"


def test_import_path_resolves_to_an_application_builder_with_these_deployments():
    if not APP_FILE.is_file():
        pytest.skip(f"{APP_FILE.relative_to(REPO_ROOT)} is not written yet: the import of {IMPORT_PATH} is checked "
                    "as soon as the file exists (the format of the import path is checked above)")
    assert Path(importlib.util.find_spec("serve.app").origin) == APP_FILE
    check_application(IMPORT_PATH, CONFIGS)


FAKE_APP = """
from pydantic import BaseModel
from ray import serve

class Args(BaseModel):
    model: str
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.01

@serve.deployment
class {model_class}:
    pass

def build_app(args: Args):
    return {model_class}.bind()
"""


@pytest.mark.parametrize(("model_class", "args", "error"), [
    ("Detector", {}, None),
    ("Model", {}, "deployments ['Detector'] are not defined"),
    ("Detector", {"max_batch_size": "many"}, "max_batch_size"),
])
def test_the_application_check_itself(tmp_path, monkeypatch, model_class, args, error):
    package = tmp_path / "fake_serving"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(FAKE_APP.format(model_class=model_class))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith("fake_serving")]:
        monkeypatch.delitem(sys.modules, name)
    config = copy.deepcopy(CONFIGS["cpu.yaml"])
    config["applications"][0]["args"].update(args)
    if error is None:
        check_application("fake_serving.app:build_app", {"cpu.yaml": config})
    else:
        with pytest.raises(Exception, match=re.escape(error)):
            check_application("fake_serving.app:build_app", {"cpu.yaml": config})
