"""Distillation teachers by identity: what a student learned from, recorded so that it can be found again.

A training run records its teachers (run tag ``yolov12.teachers``, a JSON list) as objects::

    {"spec": "models:/yolov12s-sample@champion", "sha256": "9f2c...", "registry": "models:/yolov12s-sample/4",
     "run_id": "a1b2..."}

``spec`` is the teacher as given; ``sha256`` is that of its weights file (when it is a file here); ``registry`` is
the version a ``models:/`` URI named when the run started (an alias is pinned: aliases move), or the registered
version whose weights have this sha256; ``run_id`` is the MLflow run that produced it (the version's run, else the
``run_id`` in the checkpoint's own ``lineage`` metadata). Unknown fields are left out. Runs recorded before teachers
carried identities hold plain strings; :func:`parse_teachers_tag` reads both.

A ``models:/`` teacher is downloaded through the registry (:func:`pipelines.registry.resolve_model_uri`, checked
against the registered sha256) and handed to the trainer as that local file.

Example:
    >>> resolved = [resolve_teacher(spec, client) for spec in ["models:/yolov12s-sample@champion"]]  # doctest: +SKIP
    >>> resolved[0].path, resolved[0].ref.registry  # doctest: +SKIP
    ('/home/me/.cache/yolov12/models/m-1f0e.../best.safetensors', 'models:/yolov12s-sample/4')
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipelines.registry import lookup, resolve_model_uri
from yolov12.data.digest import file_sha256
from yolov12.weights import CheckpointError, read_metadata

logger = logging.getLogger(__name__)

REGISTRY_PREFIX = "models:/"


@dataclass(frozen=True)
class TeacherRef:
    """One teacher as recorded on the student's run (see the module docstring); None: not known."""

    spec: str
    sha256: str | None = None
    registry: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, str]:
        """The tag entry: ``spec`` and the known identities only."""
        return {key: value for key, value in asdict(self).items() if value}

    @classmethod
    def from_entry(cls, entry: Any) -> TeacherRef:
        """A tag entry: an object as :meth:`to_dict` writes it, or a plain string (older runs)."""
        if isinstance(entry, str):
            return cls(entry)
        if isinstance(entry, dict) and isinstance(entry.get("spec"), str):
            return cls(entry["spec"], *(_text(entry.get(key)) for key in ("sha256", "registry", "run_id")))
        return cls(json.dumps(entry)[:200])  # something else: shown as written, with no identity to follow


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_teachers_tag(text: str | None) -> list[TeacherRef]:
    """The teachers a run's ``yolov12.teachers`` tag names (a JSON list of objects or of strings)."""
    if not text:
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        return [TeacherRef(text)]  # not JSON: keep the text rather than lose the record
    return [TeacherRef.from_entry(e) for e in (entries if isinstance(entries, list) else [entries])]


@dataclass(frozen=True)
class ResolvedTeacher:
    """A teacher ready for training: ``path`` is what the trainer loads, ``ref`` what the run records."""

    path: str
    ref: TeacherRef


def resolve_teacher(spec: str, client: MlflowClient | None, *, cache_dir: str | Path | None = None) -> ResolvedTeacher:
    """Identify ``spec`` (and download it when it is a ``models:/`` URI); ``client`` None: no registry look-ups.

    Args:
        spec: a checkpoint path, ``s3://`` URI, zoo name or ``models:/NAME@alias`` / ``models:/NAME/VERSION``.
        client: the registry (needed for ``models:/`` teachers; for files it links a registered copy by sha256).
        cache_dir: where registry downloads go (default: the registry's cache).
    """
    if spec.startswith(REGISTRY_PREFIX):
        if client is None:
            raise ValueError(f"teacher {spec} is a registry URI but no registry was given; set tracking.tracking_uri "
                             "or MLFLOW_TRACKING_URI to the registry that holds it")
        return _registry_teacher(spec, client, cache_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        return ResolvedTeacher(spec, TeacherRef(spec))  # s3://, a zoo name: the spec is all there is here
    sha256 = file_sha256(path)
    registry, run_id = _registered_copy(client, sha256) if client is not None else (None, None)
    return ResolvedTeacher(spec, TeacherRef(spec, sha256, registry, run_id or checkpoint_run_id(path)))


def _registry_teacher(spec: str, client: MlflowClient, cache_dir: str | Path | None) -> ResolvedTeacher:
    """Pin the alias to its version now, download that version, and record both."""
    version = lookup(spec, client)
    pinned = f"{REGISTRY_PREFIX}{version.name}/{version.version}"
    path = resolve_model_uri(pinned, tracking_uri=client.tracking_uri, cache_dir=cache_dir)
    sha256 = version.tags.get("weights_sha256") or file_sha256(path)
    run_id = version.run_id or checkpoint_run_id(path)
    logger.info("teacher %s -> %s (%s)", spec, pinned, path)
    return ResolvedTeacher(str(path), TeacherRef(spec, sha256, pinned, run_id))


def _registered_copy(client: MlflowClient, sha256: str) -> tuple[str | None, str | None]:
    """The first registered version whose weights have ``sha256`` (and its run), if any; a failed search: none."""
    try:
        found = client.search_model_versions(f"tags.weights_sha256 = '{sha256}'")
    except MlflowException as exc:
        logger.warning("could not search the registry for a teacher with sha256 %s: %s", sha256[:12], exc)
        return None, None
    if not found:
        return None, None
    first = min(found, key=lambda v: (v.name, int(v.version)))
    return f"{REGISTRY_PREFIX}{first.name}/{first.version}", first.run_id or None


def checkpoint_run_id(path: str | Path) -> str | None:
    """The ``run_id`` a native checkpoint's ``lineage`` metadata names, else None (other formats, no lineage)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        lineage = read_metadata(path).lineage
    except (CheckpointError, OSError) as exc:
        logger.debug("no lineage in %s: %s", path, exc)
        return None
    return _text(lineage.get("run_id"))
