"""``PipelineConfig``: what one Ray Train job runs, from a YAML file plus ``key=value`` overrides.

The training settings are the engine's own :class:`~yolov12.config.train.TrainConfig` (never re-declared here); the
other sections say how Ray runs it. Routing of an override ``key=value``:

- ``scaling.num_workers=2``, ``storage.name=run1``: a dotted key goes to that pipeline section;
- ``scaling.num_workers=2,4`` (or ``[2,4]``): an elastic range of workers, ``[min, max]``;
- ``epochs=3``, ``lr0=0.01``: a flat training key goes to ``train`` (``train.epochs=3`` works too);
- ``distill.teachers=[a.safetensors]``: a dotted key of a training section goes to ``train``;
- ``data.loader=ray_data``: the pipeline's ``data`` section (how the split is read) takes its own keys, and every
  other ``data.<key>`` (``data.imgsz=64``) goes to the training section of that name;
- ``model=...``, ``export_onnx=true``: top-level keys.

Example:
    >>> config = load_pipeline_config("configs/sample.yaml", ["epochs=2", "scaling.num_workers=1"])
    >>> config.train.run.epochs, config.scaling.num_workers
    (2, 1)
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.tracking import TrackingConfig
from yolov12.cli.arguments import parse_value
from yolov12.config.base import ConfigError, Section
from yolov12.config.train import KEY_TO_SECTION, SECTION_TYPES, TrainConfig
from yolov12.engine.distributed import per_rank_batch
from yolov12.utils.device import gpu_indices

MAX_WORKERS = 4096
# Variables of the process group's transports that a job may set on its workers: NCCL (GPU collectives), libfabric
# (FI_*, the EFA provider NCCL uses on AWS), PyTorch's NCCL watchdog (TORCH_NCCL_*) and gloo (the CPU backend).
PROCESS_GROUP_ENV = re.compile(r"(NCCL|TORCH_NCCL|FI|GLOO)_[A-Z0-9_]+")
ENV_PREFIXES = "NCCL_, TORCH_NCCL_, FI_ or GLOO_"


class ScalingSection(Section):
    """How many Ray Train workers, on what (``ray.train.ScalingConfig``), and how their process group is set up
    (``ray.train.torch.TorchConfig``); ``num_workers=0`` runs in-process.

    ``num_workers`` is a count or an elastic range ``[min, max]`` (Ray Train starts with as many workers as the
    cluster holds, at least ``min``, and resizes the group between them, restarting from the latest checkpoint).
    ``train.batch`` stays the global batch at every size, so it must divide by every count in the range.
    """

    num_workers: int | tuple[int, int] = 2  # 8, or [min, max] (CLI: scaling.num_workers=2,4 or [2,4])
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None  # e.g. {"CPU": 2}; Ray's default is 1 CPU (1 GPU with GPUs)
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm (statistics over all ranks; useful for small batches)
    timeout_s: int = Field(1800, ge=1, le=86400)  # a collective waiting longer fails the job (TorchConfig.timeout_s)
    env: dict[str, str] = Field(default_factory=dict)  # NCCL_*/FI_*/TORCH_NCCL_*/GLOO_* set on every worker

    @field_validator("num_workers", mode="before")
    @classmethod
    def _worker_count(cls, value: Any) -> int | tuple[int, int]:
        return parse_worker_count(value)

    @field_validator("env", mode="before")
    @classmethod
    def _process_group_env(cls, value: Any) -> dict[str, str]:
        return parse_process_group_env(value)

    @property
    def elastic(self) -> bool:
        """True for a ``[min, max]`` range (Ray Train's elastic training)."""
        return isinstance(self.num_workers, tuple)

    @property
    def min_workers(self) -> int:
        """Fewest workers the job runs with (the count itself when fixed)."""
        return self.num_workers[0] if isinstance(self.num_workers, tuple) else self.num_workers

    @property
    def max_workers(self) -> int:
        """Most workers the job runs with (the count itself when fixed)."""
        return self.num_workers[1] if isinstance(self.num_workers, tuple) else self.num_workers

    @property
    def world_sizes(self) -> range:
        """Every process-group size the job can run at (``num_workers=0``: one in-process rank)."""
        return range(max(self.min_workers, 1), max(self.max_workers, 1) + 1)


def parse_worker_count(value: Any) -> int | tuple[int, int]:
    """``8`` -> 8; ``[2, 4]``, ``(2, 4)``, ``"2,4"`` -> ``(2, 4)``; anything else raises ``ValueError`` (one line)."""
    if isinstance(value, str) and "," in value:
        value = [part.strip() for part in value.strip().strip("[]()").split(",")]
    elif isinstance(value, str) and value.strip().isdigit():  # a dict override such as {"scaling.num_workers": "2"}
        value = int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        try:
            low, high = (int(part) if isinstance(part, (int, str)) and not isinstance(part, bool) else None
                         for part in value)
        except ValueError:
            low = high = None
        if low is not None and high is not None:
            return _worker_range(low, high)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_WORKERS:
            raise ValueError(f"use 0 <= num_workers <= {MAX_WORKERS} or an elastic range [min, max]")
        return value
    raise ValueError("use a worker count (8) or an elastic range [min, max] (scaling.num_workers=2,4)")


def _worker_range(low: int, high: int) -> tuple[int, int]:
    if low < 1:
        raise ValueError(f"an elastic range needs at least 1 worker: use [1, {high}] or more")
    if low > high:
        raise ValueError(f"min {low} > max {high}: write the range as [{high}, {low}]")
    if high > MAX_WORKERS:
        raise ValueError(f"an elastic range allows at most {MAX_WORKERS} workers")
    return low, high


def parse_process_group_env(value: Any) -> dict[str, str]:
    """Check ``scaling.env``: a mapping of process-group variables (string or number values) to strings."""
    if isinstance(value, str):  # the CLI form scaling.env="{NCCL_DEBUG: INFO}"
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if not isinstance(value, dict):
        raise ValueError("use a mapping of variables, e.g. {NCCL_SOCKET_IFNAME: eth0}")
    env = {}
    for key, item in value.items():
        if not isinstance(key, str) or not PROCESS_GROUP_ENV.fullmatch(key):
            raise ValueError(f"scaling.env key {key!r} is not a process-group variable: use {ENV_PREFIXES} names "
                             "in capitals (other variables belong in the runtime env)")
        if isinstance(item, bool):
            raise ValueError(f"{key}={item}: write 1 or 0 (NCCL reads numbers, not true/false)")
        if not isinstance(item, (str, int, float)):
            raise ValueError(f"{key}={item!r}: use a string or a number")
        env[key] = str(item)
    return env


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


class IngestSection(Section):
    """How the train split reaches the workers (the ``data`` section of a pipeline; the dataset itself is
    ``train.data``).

    ``loader``: ``local`` (each worker builds a torch DataLoader over the whole split on its node; ``s3://`` data is
    mirrored onto every node first) or ``ray_data`` (the split's listing streams through Ray Data: images are
    decoded and augmented by CPU tasks that may run on other nodes, each worker reads its shard; see
    :mod:`pipelines.ray_data_ingest`). The other keys apply to ``ray_data`` only.
    """

    loader: Literal["local", "ray_data"] = "local"
    decode_tasks: int = Field(2, ge=1, le=MAX_WORKERS)  # concurrent tasks that decode and augment the stream
    decode_cpus: float = Field(1.0, gt=0.0, le=64.0)  # CPUs each of them holds
    decode_resources: dict[str, float] = Field(default_factory=dict)  # e.g. {decode: 1}: run them where it exists
    decode_batch: int = Field(16, ge=1, le=4096)  # images per decode/augment call


SECTIONS: dict[str, type[Section]] = {
    "scaling": ScalingSection, "storage": StorageSection, "failure": FailureSection,
    "checkpoint": CheckpointSection, "tracking": TrackingConfig, "data": IngestSection,
}
TOP_LEVEL = ("model", "export_onnx")
RENAMED_KEYS = {  # old key: (new key, why)
    "data.decode_actors": ("data.decode_tasks", "the stream decodes on tasks, whose processes outlive an epoch"),
}
MAX_SUGGESTED_BATCH = 65536  # a batch suggested for an elastic range (larger ones are no advice)


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
    data: IngestSection = IngestSection()
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
        for key in section:
            refuse_renamed(f"{name}.{key}")
            if name in SECTION_TYPES and key not in section_type.model_fields \
                    and key in SECTION_TYPES[name].model_fields:  # data: {imgsz: 64}, valid as data.imgsz=64
                raise ConfigError(f"{name}.{key} is a training key: in a pipeline YAML put it under train: "
                                  f"(train: {{{key}: ...}})")
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
    check_ingest(config)
    return config


def check_ingest(config: PipelineConfig) -> None:
    """Refuse training keys that mean nothing to the streaming loader, in one line."""
    if config.data.loader == "ray_data" and config.train.data.mixing_buffer == 0:
        raise ConfigError("train.mixing_buffer=0 draws mosaic partners from the whole split, which the stream "
                          "(data.loader=ray_data) cannot: set a size >= 1, or leave it unset for min(images, 8 x "
                          "batch, 1000)")
    if config.data.loader == "ray_data" and config.train.data.cache:
        raise ConfigError(f"train.cache={config.train.data.cache} caches a local loader's images; with "
                          "data.loader=ray_data images stream from their source every epoch: remove cache")


def check_workers_and_devices(config: PipelineConfig) -> None:
    """The global batch splits evenly over the workers (over every count of an elastic range); devices come from
    ``scaling``, not from ``train.device``."""
    check_batch_splits(config.train.data.batch, config.scaling)
    device = config.train.run.device
    if gpu_indices(device):
        raise ConfigError(f"train.device={device}: on Ray each worker gets its own device; set "
                          f"scaling.num_workers={len(gpu_indices(device))} scaling.use_gpu=true instead")
    if device.startswith("cuda") and not config.scaling.use_gpu:
        raise ConfigError(f"train.device={device} but scaling.use_gpu=false, so Ray gives the workers no GPU; set "
                          "scaling.use_gpu=true (each worker then trains on its own GPU)")


def check_batch_splits(batch: int, scaling: ScalingSection) -> None:
    """``batch`` (global) divides by every world size the job can run at; one-line :class:`ConfigError` otherwise.

    An elastic job keeps its global batch when Ray Train resizes it, so the per-rank batch (``batch / world size``)
    and with it the optimiser plan stay those of the recipe; a size that does not divide the batch is refused here
    rather than trained with a different batch.
    """
    sizes = scaling.world_sizes
    if not scaling.elastic:
        try:
            per_rank_batch(batch, sizes[0])
        except ValueError as exc:
            raise ConfigError(f"train.{exc} (scaling.num_workers={sizes[0]})") from None
        return
    uneven = [size for size in sizes if batch % size]
    if not uneven:
        return
    shown = ", ".join(str(size) for size in uneven[:6]) + (f", ... ({len(uneven)} sizes)" if len(uneven) > 6 else "")
    common = math.lcm(*sizes)
    fix = (f"use batch={-(-batch // common) * common} (a multiple of every size) or a narrower range"
           if common <= MAX_SUGGESTED_BATCH else "use a narrower range")
    raise ConfigError(f"train.batch={batch} is the global batch and must split evenly over every worker count of "
                      f"scaling.num_workers=[{sizes[0]}, {sizes[-1]}] (Ray Train may resize the job to any of them); "
                      f"{shown} do not divide it: {fix}")


def refuse_renamed(key: str) -> None:
    """Name the new key of a renamed ``section.key`` (a plain "unknown key" would suggest a neighbour instead)."""
    if key in RENAMED_KEYS:
        new, why = RENAMED_KEYS[key]
        raise ConfigError(f"'{key}' is now '{new}' ({why}): rename it")


def route_override(key: str, value: Any, values: dict[str, Any]) -> None:
    """Put one ``key=value`` override into the nested ``values`` (see the module docstring for the rules)."""
    head, _, rest = key.partition(".")
    if not rest:
        if key in TOP_LEVEL:
            values[key] = value
        elif (key in SECTIONS and key not in KEY_TO_SECTION) or key == "train":  # data=sample: the dataset
            raise ConfigError(f"'{key}' is a section: set one of its keys, e.g. {key}.<key>=value")
        else:
            values.setdefault("train", {})[key] = value  # TrainConfig names the key if it is unknown
        return
    refuse_renamed(key)
    if head in SECTIONS and head in SECTION_TYPES and rest not in SECTIONS[head].model_fields \
            and rest.partition(".")[0] not in SECTION_TYPES[head].model_fields:  # neither data section's key
        keys = sorted({*SECTIONS[head].model_fields, *SECTION_TYPES[head].model_fields})
        raise ConfigError(f"{_unknown(key, [f'{head}.{k}' for k in keys], 'key')}; keys of {head}: {', '.join(keys)}")
    if head in SECTIONS and (head not in SECTION_TYPES or rest in SECTIONS[head].model_fields):
        values.setdefault(head, {})[rest] = value  # data.loader: the pipeline's; data.imgsz: the training section
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
