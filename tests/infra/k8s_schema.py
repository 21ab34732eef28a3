"""Strict offline validation of KubeRay manifests against the published CRD schemas.

`kubectl apply --validate=strict` rejects unknown fields; a plain JSON-Schema check of a CRD's `openAPIV3Schema`
does not (JSON Schema allows extra properties unless told otherwise). `strict_schema` rewrites a CRD schema the way
the API server reads it: objects that list `properties` and neither `additionalProperties` nor
`x-kubernetes-preserve-unknown-fields` accept no other keys; `x-kubernetes-int-or-string` accepts an integer or a
string; `nullable` admits null; `int32`/`int64` formats get their ranges. CEL rules (`x-kubernetes-validations`)
cannot be evaluated here, so a manifest that sets a field carrying one is reported (our manifests avoid them).

The CRDs are vendored in `infra/kuberay/crds/` (KubeRay's own files, Apache-2.0; `$KUBERAY_CRDS_DIR` overrides).
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDORED_CRDS = REPO_ROOT / "infra" / "kuberay" / "crds"
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
}
# KubeRay's own limits (ray-operator/controllers/ray/utils/constant.go): service names derive from these.
MAX_NAME_LENGTH = {"RayCluster": 53, "RayJob": 47, "RayService": 47}
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

# The part of ObjectMeta a manifest may set (apiserver fills the rest); the CRDs leave `metadata` untyped.
OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_Safe = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crd_dir() -> Path:
    """Folder holding the KubeRay CRD YAML files."""
    return Path(os.environ.get("KUBERAY_CRDS_DIR", VENDORED_CRDS))


def strict_schema(node: Any) -> Any:
    """Return a copy of an OpenAPI v3 (structural) schema with Kubernetes' strict semantics made explicit."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_schema(value) for key, value in node.items()}
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("format") in INT_RANGES and out.get("type") == "integer":
        low, high = INT_RANGES[out["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if out.get("x-kubernetes-embedded-resource") and "properties" in out:
        for key in ("apiVersion", "kind"):
            out["properties"].setdefault(key, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _cel_rules_unchecked(validator, rules, instance, schema):  # noqa: ARG001 - jsonschema keyword signature
    """jsonschema keyword: CEL rules cannot be evaluated offline, so setting such a field is an error here."""
    listed = "; ".join(rule.get("rule", "?") for rule in rules)
    yield jsonschema.ValidationError(
        f"this field carries CEL rule(s) [{listed}] that the offline validator cannot evaluate; "
        "leave the field out or add an evaluation of the rule to tests/infra/k8s_schema.py"
    )


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"x-kubernetes-validations": _cel_rules_unchecked}
)


@functools.cache
def crd_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """Strict JSON schema for `kind` at `version` from the CRD files, with a typed `metadata`."""
    if kind not in CRD_FILES:
        raise KeyError(f"unknown kind {kind!r}; expected one of {sorted(CRD_FILES)}")
    path = crd_dir() / CRD_FILES[kind]
    if not path.is_file():
        raise FileNotFoundError(
            f"KubeRay CRD file {path} is missing; restore {VENDORED_CRDS.relative_to(REPO_ROOT)}/ from git "
            "or point KUBERAY_CRDS_DIR at a folder holding it"
        )
    crd = yaml.load(path.read_text(), Loader=_Safe)
    if crd.get("spec", {}).get("names", {}).get("kind") != kind:
        raise ValueError(f"{path} does not define kind {kind}")
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema = strict_schema(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = OBJECT_META
            schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version}"}
            schema["properties"]["kind"] = {"const": kind}
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
            return schema
    known = [entry["name"] for entry in crd["spec"]["versions"]]
    raise KeyError(f"{kind} has no version {version!r} in {path}; versions there: {known}")


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<root>"


def _hint(error: jsonschema.ValidationError) -> str:
    """A 'did you mean' for unknown keys."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = list(error.schema.get("properties", {}))
    unknown = [key for key in error.instance if key not in known]
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"'{key}' (did you mean '{close[0]}'?)" if close else f"'{key}'")
    return f" unknown field(s): {', '.join(hints)}" if hints else ""


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """All strict-schema errors of one manifest, as 'path: message' lines (empty when valid)."""
    api_version = str(manifest.get("apiVersion", ""))
    if not api_version.startswith("ray.io/"):
        return [f"apiVersion: {api_version!r} is not a ray.io resource"]
    schema = crd_schema(str(manifest.get("kind")), api_version.split("/", 1)[1])
    validator = StrictValidator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(error)}: {error.message}{_hint(error)}" for error in errors]


def operator_errors(manifest: dict[str, Any]) -> list[str]:
    """Checks KubeRay's operator makes on admission that the schema cannot express (utils/validation.go)."""
    kind, spec = manifest["kind"], manifest.get("spec", {})
    name = manifest.get("metadata", {}).get("name", "")
    errors = []
    if not DNS1035_LABEL.match(name) or len(name) > MAX_NAME_LENGTH[kind]:
        errors.append(f"metadata.name {name!r}: must be a DNS-1035 label of at most {MAX_NAME_LENGTH[kind]} chars")
    for where, cluster in cluster_specs(manifest):
        workers = cluster.get("workerGroupSpecs", [])
        groups = [("head", cluster["headGroupSpec"])] + [(group["groupName"], group) for group in workers]
        for group_name, group in groups:
            params = group.get("rayStartParams", {})
            in_params = any(params.get(key) for key in ("num-cpus", "num-gpus", "memory", "resources"))
            if in_params and group.get("resources"):
                errors.append(f"{where} group {group_name}: resources set in both rayStartParams and resources")
            if "labels" in params:
                errors.append(f"{where} group {group_name}: rayStartParams['labels'] is not supported; use labels")
        if cluster.get("authOptions", {}).get("mode", "token" if "authOptions" in cluster else "") == "token":
            version = tuple(int(part) for part in re.findall(r"\d+", cluster.get("rayVersion", ""))[:3])
            if version < (2, 52, 0):
                errors.append(f"{where}: token authentication needs rayVersion >= 2.52.0")
    if kind == "RayJob":
        if "clusterSelector" in spec:
            if not spec["clusterSelector"].get("ray.io/cluster"):
                errors.append("spec.clusterSelector: needs the key ray.io/cluster naming the RayCluster")
            if spec.get("shutdownAfterJobFinishes"):
                errors.append("spec: shutdownAfterJobFinishes would delete a shared cluster picked by clusterSelector")
        elif "rayClusterSpec" not in spec:
            errors.append("spec: one of rayClusterSpec or clusterSelector must be set")
        if spec.get("activeDeadlineSeconds", 1) <= 0:
            errors.append("spec.activeDeadlineSeconds: must be positive")
        if spec.get("backoffLimit", 0) < 0:
            errors.append("spec.backoffLimit: must not be negative")
        try:
            yaml.safe_load(spec.get("runtimeEnvYAML", "") or "{}")
        except yaml.YAMLError as error:
            errors.append(f"spec.runtimeEnvYAML: not valid YAML ({error})")
    return errors


def cluster_specs(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The RayCluster specs a manifest carries, with where they sit."""
    spec = manifest.get("spec", {})
    if manifest["kind"] == "RayCluster":
        yield "spec", spec
    elif manifest["kind"] == "RayJob" and "rayClusterSpec" in spec:
        yield "spec.rayClusterSpec", spec["rayClusterSpec"]
    elif manifest["kind"] == "RayService":
        yield "spec.rayClusterConfig", spec["rayClusterConfig"]


def pod_templates(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template in a manifest's Ray cluster specs, with a name for messages."""
    for where, cluster in cluster_specs(manifest):
        yield f"{where}.headGroupSpec", cluster["headGroupSpec"]["template"]
        for group in cluster.get("workerGroupSpecs", []):
            yield f"{where}.workerGroupSpecs[{group['groupName']}]", group["template"]


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """All YAML documents in a manifest file (empty documents dropped)."""
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_Safe) if doc]
