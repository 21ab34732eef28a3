"""``SweepConfig``: one Ray Tune sweep, from a YAML file plus ``key=value`` overrides.

The training side is the pipeline's own config (``base:`` a pipeline YAML, and/or ``model:`` + ``train:`` keys on
top); the search side says what is searched (``space``), how (``search``, ``scheduler``), by what (``objective``),
on what (``resources``), with how many retries (``failure``), where (``storage_path``/``name``) and the MLflow
tracking. Overrides: ``name=x``, ``search.num_samples=4``, ``scheduler.kind=none``, ``train.epochs=2`` or just
``epochs=2`` (a flat training key goes to ``train``).

Example:
    >>> sweep = load_sweep_config("configs/sweeps/sample-asha.yaml", ["search.num_samples=2"])
    >>> sweep.resolve().space.keys()[:2]  # doctest: +SKIP
    ['lr0', 'momentum']
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.config import PipelineConfig, load_pipeline_config, override_pairs, read_config_yaml
from pipelines.tracking import TrackingConfig
from tune.space import SearchSpace, SearchSpaceError
from yolov12.config.base import ConfigError, Section, format_validation_error
from yolov12.config.train import KEY_TO_SECTION, TrainConfig
from yolov12.data.augment.policy import AugmentPolicy, PolicyError, load_policy
from yolov12.eval.metric_names import Goal, objectives

# Metrics a trial reports every epoch (tune.trainable.trial_metrics) and the direction that is better: the short
# names of yolov12.eval.metric_names (mAP50-95, mAP50, accuracy_top1, fitness, loss).
OBJECTIVES: dict[str, Goal] = objectives()


class SearchSection(Section):
    """How configurations are proposed: random sampling or Optuna TPE (kept under ``max_concurrent`` trials)."""

    algorithm: Literal["random", "optuna"] = "random"
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    seed: int | None = 0
    evaluate_base: bool = False  # the first trial runs the base config's own values (they must lie in the space)


class SchedulerSection(Section):
    """Which trials go on: ASHA (early stopping by epoch), Population Based Training, or none (all run to the end)."""

    kind: Literal["asha", "pbt", "none"] = "asha"
    grace_period: int = Field(1, ge=1)  # ASHA: epochs every trial gets
    reduction_factor: float = Field(3.0, gt=1.0)  # ASHA: keep the top 1/reduction_factor at each rung
    brackets: int = Field(1, ge=1)
    perturbation_interval: int = Field(1, ge=1)  # PBT: epochs between exploit/explore steps
    quantile_fraction: float = Field(0.25, gt=0.0, le=0.5)
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)
    synch: bool = False  # PBT: perturb once every trial reached the interval (all pause there; fair to slow trials)


class ObjectiveSection(Section):
    """The reported metric trials are ranked by; ``mode`` defaults to the metric's own direction."""

    metric: str = "mAP50-95"
    mode: Literal["max", "min"] | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.metric not in OBJECTIVES:
            close = difflib.get_close_matches(self.metric, list(OBJECTIVES), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"objective.metric={self.metric!r} is not reported by trials{hint} "
                              f"Reported: {', '.join(OBJECTIVES)}")

    @property
    def direction(self) -> Literal["max", "min"]:
        return self.mode or OBJECTIVES[self.metric]


class ResourcesSection(Section):
    """Per trial. ``num_workers=0``: the trial trains in its own process (``cpu``/``gpu`` reserved for it);
    ``num_workers>=1``: the trial is a driver that runs a Ray Train job of that many workers (Train-in-Tune)."""

    cpu: float = Field(1.0, gt=0.0)
    gpu: float = Field(0.0, ge=0.0)
    num_workers: int = Field(0, ge=0)


class FailureSection(Section):
    """Trial retries (``ray.tune.FailureConfig(max_failures)``); a retried trial resumes from its last checkpoint."""

    max_failures: int = Field(1, ge=-1)
    restart_errored: bool = False  # on restore, rerun errored trials from scratch (else they stay errored)


SECTIONS: dict[str, type[Section]] = {
    "search": SearchSection, "scheduler": SchedulerSection, "objective": ObjectiveSection,
    "resources": ResourcesSection, "failure": FailureSection, "tracking": TrackingConfig,
}
PBT_CHECKPOINTS_KEPT = 4
TOP_LEVEL = ("name", "storage_path", "output", "base", "model", "checkpoints_to_keep", "reuse_actors")


class SweepConfig(BaseModel):
    """One sweep. ``train`` holds flat training keys applied on top of ``base`` (a pipeline config file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    storage_path: str = "runs/tune"  # Tune's experiment folder is storage_path/name (local path or s3://)
    output: str | None = None  # summary folder (table, best config, plots); default: storage_path/name/summary
    base: str | None = None  # a pipeline config YAML (configs/sample.yaml) giving model and training settings
    model: str | None = None  # overrides base's model
    train: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Any] = Field(default_factory=dict)
    checkpoints_to_keep: int | None = Field(None, ge=1)  # None: 2, or 4 with PBT (see ``checkpoints_kept``)
    reuse_actors: bool = True  # in-process trials reuse a finished trial's process (no new start-up and imports)
    search: SearchSection = SearchSection()
    scheduler: SchedulerSection = SchedulerSection()
    objective: ObjectiveSection = ObjectiveSection()
    resources: ResourcesSection = ResourcesSection()
    failure: FailureSection = FailureSection()
    tracking: TrackingConfig = TrackingConfig(experiment="yolov12-sweeps", registered_model=None)

    def model_post_init(self, _context: Any) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", self.name):
            raise ConfigError(f"name={self.name!r}: use letters, digits, '.', '_' or '-' (it names the sweep folder)")
        if self.scheduler.kind == "pbt" and self.search.algorithm != "random":
            raise ConfigError("scheduler.kind=pbt cannot be combined with search.algorithm=optuna (PBT proposes the "
                              "configurations itself); set search.algorithm=random")
        if self.scheduler.kind == "pbt" and self.checkpoints_to_keep is not None and self.checkpoints_to_keep <= 2:
            raise ConfigError(f"checkpoints_to_keep={self.checkpoints_to_keep} is too few for scheduler.kind=pbt: a "
                              "donor trial keeps training while the exploiting trial restarts, and Ray deletes the "
                              "checkpoint being copied (the trial then errors); set checkpoints_to_keep to 3 or more "
                              f"(default with PBT: {PBT_CHECKPOINTS_KEPT})")
        if self.scheduler.kind == "pbt" and "optimizer" in self.space:
            raise ConfigError("scheduler.kind=pbt cannot search 'optimizer': an exploiting trial continues from "
                              "another trial's optimiser state, which only fits the same optimiser; fix optimizer "
                              "under train: or use scheduler.kind=asha")
        if self.scheduler.kind == "pbt" and self.resources.num_workers > 0:
            raise ConfigError("scheduler.kind=pbt needs in-process trials (it copies checkpoints between them); "
                              "set resources.num_workers=0")

    @property
    def checkpoints_kept(self) -> int:
        """Checkpoints each trial keeps: ``checkpoints_to_keep``, else 2 (4 with PBT, whose exploits copy a donor's
        checkpoint while the donor goes on training: seen with 2, the copied one was deleted before the restore)."""
        if self.checkpoints_to_keep is not None:
            return self.checkpoints_to_keep
        return PBT_CHECKPOINTS_KEPT if self.scheduler.kind == "pbt" else 2

    @property
    def experiment_path(self) -> str:
        return f"{self.storage_path.rstrip('/')}/{self.name}"

    @property
    def summary_dir(self) -> Path:
        if self.output:
            return Path(self.output) / self.name
        if "://" in self.storage_path:
            return Path("runs/tune") / self.name
        return Path(self.experiment_path) / "summary"

    def resolve(self) -> ResolvedSweep:
        """Validate the training side and the search space (nothing runs; every error names its key)."""
        overrides: dict[str, Any] = {f"train.{k}": v for k, v in self.train.items()}
        if self.model is not None:
            overrides["model"] = self.model
        pipeline = load_pipeline_config(self.base, overrides)
        policy = None
        if pipeline.train.augment.augment_policy:
            try:
                policy = load_policy(pipeline.train.augment.augment_policy)
            except (OSError, PolicyError) as exc:
                raise ConfigError(f"train.augment_policy: {exc}") from None
        space = SearchSpace.from_dict(self.space)
        if self.search.evaluate_base:
            space.check_defaults(pipeline.train, policy)
        return ResolvedSweep(self, pipeline, space, policy)


@dataclass(frozen=True)
class ResolvedSweep:
    """A sweep with its training config built and its space validated."""

    sweep: SweepConfig
    pipeline: PipelineConfig
    space: SearchSpace
    policy: AugmentPolicy | None

    @property
    def train(self) -> TrainConfig:
        return self.pipeline.train

    @property
    def max_epochs(self) -> int:
        return self.pipeline.train.run.epochs


def build_sweep_config(values: dict[str, Any]) -> SweepConfig:
    """Validate the YAML shape into a :class:`SweepConfig`, raising one-line :class:`ConfigError` s."""
    valid = sorted((*TOP_LEVEL, "train", "space", *SECTIONS))
    unknown = [key for key in values if key not in valid]
    if unknown:
        raise ConfigError("; ".join(f"unknown sweep key '{k}'{_hint(k, valid)}" for k in unknown)
                          + f". Sweep keys: {', '.join(valid)}")
    if "name" not in values:
        raise ConfigError("the sweep needs a name (name: my-sweep); the same name again resumes it")
    sections = {}
    for name, section_type in SECTIONS.items():
        section = values.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{name} must be a mapping of keys, got {section!r}")
        if name == "tracking":
            section = {**SweepConfig.model_fields["tracking"].default.model_dump(), **section}
        try:
            sections[name] = section_type.from_overrides(section)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    for name in ("train", "space"):
        if not isinstance(values.get(name) or {}, dict):
            raise ConfigError(f"{name} must be a mapping, got {values[name]!r}")
    try:
        return SweepConfig(**{k: v for k, v in values.items() if k not in SECTIONS}, **sections)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def route_override(key: str, value: Any, values: dict[str, Any]) -> None:
    """Put one ``key=value`` override into the nested sweep dict."""
    head, _, rest = key.partition(".")
    if not rest:
        if key in TOP_LEVEL:
            values[key] = value
        elif key in KEY_TO_SECTION:
            values.setdefault("train", {})[key] = value
        else:
            valid = [*TOP_LEVEL, *KEY_TO_SECTION]
            raise ConfigError(f"unknown override '{key}'{_hint(key, valid)} Sections: {', '.join(SECTIONS)}, train")
    elif head in SECTIONS or head in ("train", "space"):
        section = values.setdefault(head, {})
        section = dict(section) if isinstance(section, dict) else section
        values[head] = section
        if head == "space" and isinstance(value, str):
            value = yaml.safe_load(value)  # space.lr0="{loguniform: [1e-4, 0.1]}"
        section[rest] = value
    else:
        raise ConfigError(f"unknown override section '{head}'{_hint(head, [*SECTIONS, 'train', 'space'])}")


def load_sweep_config(path: str | Path | None, overrides: list[str] | dict[str, Any] | None = None) -> SweepConfig:
    """Read a sweep YAML and apply ``key=value`` overrides; raises :class:`ConfigError` naming the key."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_config_yaml(Path(path), "sweep config", "name:, train:, space:, ...", "configs/sweeps/")
    for key, value in override_pairs(overrides, "search.num_samples=4 or epochs=3"):
        route_override(key, value, values)
    return build_sweep_config(values)


def _hint(word: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(word, valid, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


__all__ = ["OBJECTIVES", "ResolvedSweep", "SearchSpaceError", "SweepConfig", "build_sweep_config",
           "load_sweep_config"]
