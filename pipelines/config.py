"""``PipelineConfig``: what one Ray Train job runs, from a YAML file plus ``key=value`` overrides.

The training settings are the engine's own :class:`~yolov12.config.train.TrainConfig` (never re-declared here); the
other sections say how Ray runs it. Routing of an override ``key=value``:

- ``scaling.num_workers=2``, ``storage.name=run1``: a dotted key goes to that pipeline section;
- ``epochs=3``, ``lr0=0.01``: a flat training key goes to ``train`` (``train.epochs=3`` works too);
- ``distill.teachers=[a.safetensors]``: a dotted key of a training section goes to ``train``;
- ``model=...``, ``export_onnx=true``: top-level keys.

Example:
    >>> config = load_pipeline_config("configs/sample.yaml", ["epochs=2", "scaling.num_workers=1"])
    >>> config.train.run.epochs, config.scaling.num_workers
    (2, 1)
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipelines.tracking import TrackingConfig
from yolov12.cli.arguments import parse_value
from yolov12.config.base import ConfigError, Section
from yolov12.config.train import KEY_TO_SECTION, SECTION_TYPES, TrainConfig
from yolov12.engine.distributed import per_rank_batch
from yolov12.utils.device import gpu_indices


class ScalingSection(Section):
    """How many Ray Train workers, on what (``ray.train.ScalingConfig``); ``num_workers=0`` runs in-process."""

    num_workers: int = Field(2, ge=0, le=4096)
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None  # e.g. {"CPU": 2}; Ray's default is 1 CPU (1 GPU with GPUs)
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm (statistics over all ranks; useful for small batches)


class StorageSection(Section):
    """Where Ray Train keeps checkpoints (``storage_path/name``) and where the driver puts the final run folder."""

    storage_path: str = "runs/ray"  # a local or shared folder, or s3://bucket/prefix (endpoint from AWS_ENDPOINT_URL)
    name: str | None = None  # the same name again resumes that run; default: <model>-<data>-<timestamp>
    output: str = "runs/train-ray"  # local folder of the final weights, results.csv and plots (output/name)

    def model_post_init(self, _context: Any) -> None:
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", self.name):
            raise ConfigError(f"storage.name={self.name!r}: use letters, digits, '.', '_' or '-' (it names folders)")


class FailureSection(Section):
    """``ray.train.FailureConfig``: restarts of the worker group from the latest checkpoint (-1: unlimited)."""

    max_failures: int = Field(0, ge=-1)


class CheckpointSection(Section):
    """``ray.train.CheckpointConfig``: checkpoints kept, ranked by a reported metric (the latest is always kept).

    ``fitness`` is the engine's rule for ``best.safetensors`` (0.1 mAP50 + 0.9 mAP50-95; top-1 for classifiers).
    """

    num_to_keep: int | None = Field(2, ge=1)
    score_attribute: Literal["mAP50-95", "mAP50", "fitness", "accuracy_top1"] = "fitness"
    score_order: Literal["max", "min"] = "max"


SECTIONS: dict[str, type[Section]] = {
    "scaling": ScalingSection, "storage": StorageSection, "failure": FailureSection,
    "checkpoint": CheckpointSection, "tracking": TrackingConfig,
}
TOP_LEVEL = ("model", "export_onnx")


class PipelineConfig(BaseModel):
    """One Ray Train job: the model, the engine's training config and how Ray runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "yolov12n.yaml"  # a zoo name, an architecture YAML, or weights (.safetensors/.pt, local or s3://)
    train: TrainConfig = TrainConfig()
    scaling: ScalingSection = ScalingSection()
    storage: StorageSection = StorageSection()
    failure: FailureSection = FailureSection()
    checkpoint: CheckpointSection = CheckpointSection()
    tracking: TrackingConfig = TrackingConfig()
    export_onnx: bool = False

    def to_flat(self) -> dict[str, Any]:
        """``{"model": ..., "epochs": ..., "scaling.num_workers": ...}``: the full resolved config, one level deep."""
        flat: dict[str, Any] = {"model": self.model, "export_onnx": self.export_onnx, **self.train.to_flat()}
        for name in SECTIONS:
            flat.update({f"{name}.{key}": value for key, value in getattr(self, name).model_dump().items()})
        return flat


def build_pipeline_config(values: dict[str, Any]) -> PipelineConfig:
    """Validate a nested dict (the YAML shape) into a :class:`PipelineConfig`, raising :class:`ConfigError`."""
    unknown = [key for key in values if key not in (*TOP_LEVEL, "train", *SECTIONS)]
    if unknown:
        valid = sorted((*TOP_LEVEL, "train", *SECTIONS))
        raise ConfigError("; ".join(_unknown(key, valid, "top-level key") for key in unknown)
                          + f". Top-level keys: {', '.join(valid)} (flat training keys such as epochs go under train)")
    sections: dict[str, Any] = {}
    for name, section_type in SECTIONS.items():
        section = values.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{name} must be a mapping of keys, got {section!r}")
        try:
            sections[name] = section_type.from_overrides(section)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    train = values.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"train must be a mapping of training keys (epochs, imgsz, ...), got {train!r}")
    try:
        sections["train"] = TrainConfig.from_overrides(train)
    except ConfigError as exc:
        raise ConfigError(f"train: {exc}") from None
    top = {key: values[key] for key in TOP_LEVEL if key in values}
    try:
        config = PipelineConfig(**top, **sections)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"invalid top-level value: {str(exc).splitlines()[-1].strip()}") from None
    check_workers_and_devices(config)
    return config


def check_workers_and_devices(config: PipelineConfig) -> None:
    """The global batch splits evenly over the workers; devices come from ``scaling``, not from ``train.device``."""
    workers = max(config.scaling.num_workers, 1)
    try:
        per_rank_batch(config.train.data.batch, workers)
    except ValueError as exc:
        raise ConfigError(f"train.{exc} (scaling.num_workers={workers})") from None
    device = config.train.run.device
    if gpu_indices(device):
        raise ConfigError(f"train.device={device}: on Ray each worker gets its own device; set "
                          f"scaling.num_workers={len(gpu_indices(device))} scaling.use_gpu=true instead")
    if device.startswith("cuda") and not config.scaling.use_gpu:
        raise ConfigError(f"train.device={device} but scaling.use_gpu=false, so Ray gives the workers no GPU; set "
                          "scaling.use_gpu=true (each worker then trains on its own GPU)")


def route_override(key: str, value: Any, values: dict[str, Any]) -> None:
    """Put one ``key=value`` override into the nested ``values`` (see the module docstring for the rules)."""
    head, _, rest = key.partition(".")
    if not rest:
        if key in TOP_LEVEL:
            values[key] = value
        elif key in SECTIONS or key == "train":
            raise ConfigError(f"'{key}' is a section: set one of its keys, e.g. {key}.<key>=value")
        else:
            values.setdefault("train", {})[key] = value  # TrainConfig names the key if it is unknown
        return
    if head in SECTIONS:
        values.setdefault(head, {})[rest] = value
    elif head == "train":
        section, _, key_in_section = rest.partition(".")
        train = values.setdefault("train", {})
        if key_in_section:
            train.setdefault(section, {})[key_in_section] = value  # train.optim.lr0=...
        else:
            train[rest] = value
    elif head in SECTION_TYPES:  # a training section such as distill or optim
        values.setdefault("train", {}).setdefault(head, {})[rest] = value
    else:
        valid = sorted((*SECTIONS, "train", *SECTION_TYPES))
        raise ConfigError(f"{_unknown(key, [f'{s}.{rest}' for s in valid], 'key')}. Sections: {', '.join(valid)}")


def load_pipeline_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
                         ) -> PipelineConfig:
    """Read a pipeline YAML (or start from defaults) and apply ``key=value`` overrides (strings or a dict)."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_config_yaml(Path(path), "pipeline config", "model:, train:, scaling:, ...", "configs/")
    pairs = override_pairs(overrides, "epochs=3 or scaling.num_workers=2")
    for key, value in pairs:
        route_override(key, value, values)
    return build_pipeline_config(values)


def override_pairs(overrides: list[str] | dict[str, Any] | None, example: str) -> list[tuple[str, Any]]:
    """``(key, value)`` pairs from a dict or from ``key=value`` strings (values parsed like the CLI's)."""
    if isinstance(overrides, dict):
        return list(overrides.items())
    pairs = []
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not key=value (e.g. {example})")
        pairs.append((key.strip().lstrip("-").replace("-", "_"), parse_value(text.strip())))
    return pairs


def read_config_yaml(path: Path, what: str, shape: str, examples: str) -> dict[str, Any]:
    """A config file's top-level mapping (sections copied, so overrides can be routed into them)."""
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist (see {examples} for examples)")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping ({shape}), got {type(values).__name__}")
    return {key: dict(value) if isinstance(value, dict) else value for key, value in values.items()}


def _unknown(key: str, valid: list[str], what: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    if not close and key in KEY_TO_SECTION:
        close = [f"train.{key}"]
    return f"unknown {what} '{key}'" + (f"; did you mean '{close[0]}'?" if close else "")
