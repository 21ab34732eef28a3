"""Lineage: from a deployed alias back to the data, and from a dataset forward to the model versions it produced.

``lineage("models:/NAME@champion")`` follows alias -> model version -> training run -> params -> dataset
digest/source -> teachers (each with its sha256, registry version, run and that run's dataset: one level, never
back into a run already on the chain), and lists the engines recorded against the version (what serves it, see
:mod:`pipelines.engine_records`); ``versions_from_dataset(digest)`` answers "which versions came from dataset D".

Example:
    >>> print(lineage("models:/yolov12n-sample@champion").render())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipelines.batch_predict_tracking import BatchRun, batch_runs_for_version
from pipelines.engine_records import EngineRecord, registered_engines, without_engine_tags
from pipelines.registry import ModelURI, RegistryError, is_not_found, lookup, mlflow_client, model_id_of
from pipelines.teachers import TeacherRef, parse_teachers_tag
from pipelines.tracking import (
    SYSTEM_TAG_PREFIX,
    TAG_CODE_VERSION,
    TAG_DATASET_DIGEST,
    TAG_DATASET_SOURCE,
    TAG_TEACHERS,
)

BATCH_COUNTS = ("images", "bad_images", "detections")  # the counts a batch job logs, shown on its lineage line
_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a run trained on: full sha256 digest (``yolov12.data.digest``), source URI, MLflow name/type."""

    name: str
    digest: str
    source: str
    source_type: str = ""


@dataclass(frozen=True)
class TeacherLink:
    """A teacher of the run, followed one step: its identity as recorded and, when it has a run, that run's data.

    ``problem`` says why the walk stopped short (an unknown version or run, a cycle back into the chain).
    """

    spec: str
    sha256: str | None = None
    registry: str | None = None
    run_id: str | None = None
    run_name: str = ""
    dataset_digest: str | None = None
    dataset_source: str | None = None
    problem: str = ""

    def render(self) -> str:
        """One line: spec, sha256, version/run, dataset digest."""
        line = (f"  teacher    {self.spec}  sha256={self.sha256 or '-'}  version={self.registry or '-'}  "
                f"run={self.run_id or '-'}  dataset={self.dataset_digest or '-'}")
        return f"{line}  ({self.problem})" if self.problem else line


@dataclass(frozen=True)
class Lineage:
    """The chain behind one registered model version."""

    uri: str
    model: str
    version: str
    alias: str | None
    aliases: tuple[str, ...]
    model_id: str | None
    version_tags: dict[str, str]
    run_id: str
    run_name: str
    run_status: str
    experiment: str
    code_version: str
    params: dict[str, str]
    datasets: list[DatasetRef]
    teachers: list[TeacherLink]
    system: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    engines: list[EngineRecord] = field(default_factory=list)
    batch_runs: list[BatchRun] = field(default_factory=list)

    @property
    def dataset(self) -> DatasetRef | None:
        """The training dataset (the first input), if any."""
        return self.datasets[0] if self.datasets else None

    def render(self) -> str:
        """Human-readable chain, one fact per line."""
        head = f"alias {self.alias} -> " if self.alias else ""
        lines = [
            f"{self.uri}",
            f"  deployed   {head}version {self.version} of {self.model} (aliases: {', '.join(self.aliases) or 'none'})",
            f"  version    {self.model}/{self.version}  model_id={self.model_id or '-'}  "
            f"weights={self.version_tags.get('weights_file', '-')} "
            f"sha256={self.version_tags.get('weights_sha256', '-')}",
            f"  run        {self.run_id} '{self.run_name}' {self.run_status} in experiment '{self.experiment}'  "
            f"code={self.code_version}",
        ]
        for ref in self.datasets or [DatasetRef("none", "-", "-")]:
            lines.append(f"  dataset    {ref.name}  digest={ref.digest}  source={ref.source}")
        lines += [teacher.render() for teacher in self.teachers] or ["  teachers   none"]
        lines += [_render_engine(engine) for engine in self.engines] or ["  engines    none recorded"]
        lines += [_render_batch_run(run) for run in self.batch_runs]
        if self.system:
            lines.append("  system     " + "  ".join(f"{k}={v}" for k, v in sorted(self.system.items())))
        if self.metrics:
            lines.append("  metrics    " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items())))
        lines.append(f"  params     ({len(self.params)})")
        lines += [f"    {k} = {v}" for k, v in sorted(self.params.items())]
        return "\n".join(lines)


def lineage(uri: str, *, tracking_uri: str | None = None) -> Lineage:
    """Follow ``models:/NAME@alias`` or ``models:/NAME/VERSION`` back to its run, params, dataset and teachers."""
    parsed = ModelURI.parse(uri)
    client = mlflow_client(tracking_uri)
    version = lookup(parsed, client)
    if not version.run_id:
        raise RegistryError(f"{uri} (version {version.version}) has no source run; it was not registered by a "
                            "training job")
    run = client.get_run(version.run_id)
    tags = run.data.tags
    teachers = [follow_teacher(client, ref, {run.info.run_id}) for ref in parse_teachers_tag(tags.get(TAG_TEACHERS))]
    return Lineage(
        uri=str(parsed), model=parsed.name, version=str(version.version), alias=parsed.alias,
        aliases=tuple(sorted(version.aliases)),
        model_id=model_id_of(version),
        version_tags=without_engine_tags(version.tags), run_id=run.info.run_id, run_name=run.info.run_name or "",
        run_status=run.info.status, experiment=_experiment_name(client, run.info.experiment_id),
        code_version=tags.get(TAG_CODE_VERSION, "unknown"), params=dict(run.data.params),
        datasets=_datasets(run, tags), teachers=teachers,
        system={k[len(SYSTEM_TAG_PREFIX):]: v for k, v in tags.items() if k.startswith(SYSTEM_TAG_PREFIX)},
        metrics=dict(run.data.metrics), engines=registered_engines(version.tags),
        batch_runs=batch_runs_for_version(client, parsed.name, str(version.version)),
    )


def follow_teacher(client: MlflowClient, ref: TeacherRef, seen: set[str]) -> TeacherLink:
    """``ref`` with its run and that run's dataset, one step: a run in ``seen`` (already on the chain) is not
    entered again. The run comes from the record, else from the registry version it names."""
    link = TeacherLink(ref.spec, ref.sha256, ref.registry, ref.run_id)
    run_id = ref.run_id
    if not run_id and ref.registry:
        try:
            run_id = lookup(ref.registry, client).run_id or None
        except RegistryError as exc:
            return replace(link, problem=f"version not found: {str(exc).splitlines()[0]}")
        link = replace(link, run_id=run_id)
    if not run_id:
        return link
    if run_id in seen:
        return replace(link, problem=f"run {run_id} is already on this chain; not followed again")
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not (is_not_found(exc) or exc.error_code == "INVALID_PARAMETER_VALUE"):
            raise
        return replace(link, problem=f"run {run_id} is not in this tracking store")
    dataset = next(iter(_datasets(run, run.data.tags)), None)
    return replace(link, run_name=run.info.run_name or "", dataset_digest=dataset.digest if dataset else None,
                   dataset_source=dataset.source if dataset else None)


def _render_batch_run(run: BatchRun) -> str:
    """One line per batch prediction job that ran this version: run, status, input, output and counts."""
    counts = "  ".join(f"{k}={v:.0f}" for k, v in sorted(run.metrics.items()) if k in BATCH_COUNTS)
    return (f"  batch      {run.run_id} '{run.run_name}' {run.status}  input={run.input_source} "
            f"digest={run.input_digest[:16] or '-'}  output={run.output}  {counts}".rstrip())


def _render_engine(engine: EngineRecord) -> str:
    """One line per engine: runtime, format, precision, artifact sha256, device, size, builders, last load."""
    device = f"{engine.device} ({engine.gpu})" if engine.gpu else engine.device
    builder = ", ".join(f"{name} {version}" for name, version in sorted(engine.builder.items())) or "-"
    where = f" on {engine.host}" if engine.host else ""
    return (f"  engine     {engine.backend} {engine.format} {engine.precision}  sha256={engine.sha256}  "
            f"device={device}  imgsz={engine.imgsz} batch={engine.batch}  builder={builder}  "
            f"loaded={engine.loaded_at or '-'}{where}")


def _experiment_name(client: MlflowClient, experiment_id: str) -> str:
    return client.get_experiment(experiment_id).name


def _datasets(run, tags: dict[str, str]) -> list[DatasetRef]:
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    refs = []
    for item in inputs:
        input_tags = {t.key: t.value for t in item.tags}
        try:
            source = json.loads(item.dataset.source).get("uri", item.dataset.source)
        except (ValueError, AttributeError):
            source = item.dataset.source
        refs.append(DatasetRef(item.dataset.name, input_tags.get("digest_sha256", item.dataset.digest), source,
                               item.dataset.source_type))
    if not refs and TAG_DATASET_DIGEST in tags:
        refs.append(DatasetRef("dataset", tags[TAG_DATASET_DIGEST], tags.get(TAG_DATASET_SOURCE, "")))
    return refs


@dataclass(frozen=True)
class VersionRef:
    """A registered version that came from a dataset."""

    model: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    dataset_digest: str
    dataset_source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


def versions_from_dataset(digest: str, *, tracking_uri: str | None = None) -> list[VersionRef]:
    """Every registered model version trained on the dataset with this sha256 ``digest`` (or a >= 6-digit prefix)."""
    if not _HEX.match(digest):
        raise RegistryError(f"dataset digest {digest!r} is not hex; give the sha256 (or at least its first 6 digits) "
                            "that `yolov12.data.digest.dataset_digest` prints")
    digest = digest.lower()
    client = mlflow_client(tracking_uri)
    condition = f"= '{digest}'" if len(digest) == 64 else f"LIKE '{digest}%'"
    found = client.search_model_versions(f"tags.dataset_digest {condition}")
    aliases: dict[str, dict[str, list[str]]] = {}  # search results carry no aliases: read them per model
    for name in {v.name for v in found}:
        for alias, number in client.get_registered_model(name).aliases.items():
            aliases.setdefault(name, {}).setdefault(str(number), []).append(alias)
    refs = [VersionRef(v.name, str(v.version), tuple(sorted(aliases.get(v.name, {}).get(str(v.version), []))),
                       v.run_id or "", v.tags.get("dataset_digest", ""), v.tags.get("dataset_source", ""))
            for v in found]
    return sorted(refs, key=lambda r: (r.model, int(r.version)))


def render_versions(digest: str, refs: list[VersionRef]) -> str:
    """Text for ``yolov12 lineage dataset=<digest>``."""
    if not refs:
        return f"no registered model version was trained on dataset {digest}"
    lines = [f"dataset {digest}: {len(refs)} model version(s)"]
    for ref in refs:
        aliases = f" @{', @'.join(ref.aliases)}" if ref.aliases else ""
        lines.append(f"  {ref.uri}{aliases}  run={ref.run_id}  source={ref.dataset_source}")
    return "\n".join(lines)
