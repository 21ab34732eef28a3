"""Lineage: from a deployed alias back to the data, and from a dataset forward to the model versions it produced.

``lineage("models:/NAME@champion")`` follows alias -> model version -> training run -> params -> dataset
digest/source -> teachers; ``versions_from_dataset(digest)`` answers "which versions came from dataset D".

Example:
    >>> print(lineage("models:/yolov12n-sample@champion").render())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from mlflow import MlflowClient

from pipelines.registry import ModelURI, RegistryError, lookup, mlflow_client, model_id_of
from pipelines.tracking import (
    SYSTEM_TAG_PREFIX,
    TAG_CODE_VERSION,
    TAG_DATASET_DIGEST,
    TAG_DATASET_SOURCE,
    TAG_TEACHERS,
)

_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a run trained on: full sha256 digest (``yolov12.data.digest``), source URI, MLflow name/type."""

    name: str
    digest: str
    source: str
    source_type: str = ""


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
    teachers: list[str]
    system: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

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
        lines.append(f"  teachers   {', '.join(self.teachers) or 'none'}")
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
    return Lineage(
        uri=str(parsed), model=parsed.name, version=str(version.version), alias=parsed.alias,
        aliases=tuple(sorted(version.aliases)),
        model_id=model_id_of(version),
        version_tags=dict(version.tags), run_id=run.info.run_id, run_name=run.info.run_name or "",
        run_status=run.info.status, experiment=_experiment_name(client, run.info.experiment_id),
        code_version=tags.get(TAG_CODE_VERSION, "unknown"), params=dict(run.data.params),
        datasets=_datasets(run, tags), teachers=json.loads(tags.get(TAG_TEACHERS, "[]")),
        system={k[len(SYSTEM_TAG_PREFIX):]: v for k, v in tags.items() if k.startswith(SYSTEM_TAG_PREFIX)},
        metrics=dict(run.data.metrics),
    )


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
