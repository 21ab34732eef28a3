"""Checks that run before an expensive job starts: does the model source resolve, does the data resolve.

A Ray job, sweep or Serve application that is handed a missing weights file or an unknown dataset otherwise fails
minutes later inside a worker or replica. These checks answer in a fraction of a second, without building the
model, scanning labels or downloading anything:

- :func:`model_source_kind` says what a model spec is (``architecture``, ``weights``, ``exported``, ``registry``,
  ``remote``);
- :func:`check_model_source` checks that a local spec resolves (a readable weights file with a valid header, an
  existing exported artifact, a zoo name or a parseable model YAML) and that its kind is one the caller accepts;
  registry URIs (``models:/``) are checked by ``pipelines.preflight``, which can reach MLflow;
- :func:`check_data` checks that ``data=`` resolves (a built-in name, or a local data.yaml / folder whose splits
  exist); ``s3://`` data is left to the workers (checking it means syncing it).

Every failure is a :class:`PreflightError`: one line naming the value and the fix.

Example:
    >>> check_model_source("yolov12n.yaml")
    'architecture'
    >>> check_model_source("missing.safetensors")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    PreflightError: weights file 'missing.safetensors' does not exist ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from yolov12.config.base import ConfigError

ModelKind = Literal["architecture", "weights", "exported", "registry", "remote"]
ALL_KINDS: tuple[ModelKind, ...] = ("architecture", "weights", "exported", "registry", "remote")
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")
ARCHITECTURE_SUFFIXES = (".yaml", ".yml")
KIND_WORDS = {"architecture": "an architecture (random weights)", "weights": "a weights file",
              "exported": "an exported model", "registry": "a registry URI (models:/NAME@alias)",
              "remote": "remote weights (s3://)"}


class PreflightError(ConfigError):
    """A model, data or config given to a job does not resolve; the message names the value and the fix."""


def model_source_kind(spec: str | os.PathLike) -> ModelKind:
    """What ``spec`` names, from its form alone (nothing is read): see the module docstring for the kinds."""
    from yolov12.engines.registry import is_exported_artifact  # noqa: PLC0415 - torch is imported only when asked

    text = os.fspath(spec).strip()
    if text.startswith("models:/"):
        return "registry"
    if "://" in text:
        return "remote"
    path = Path(text).expanduser()
    if path.suffix.lower() in WEIGHTS_SUFFIXES:
        return "weights"
    if is_exported_artifact(path):
        return "exported"
    return "architecture"


def check_model_source(spec: str | os.PathLike, accept: Iterable[ModelKind] = ALL_KINDS,
                       hint: str = "") -> ModelKind:
    """Raise :class:`PreflightError` unless ``spec`` resolves here and its kind is in ``accept``; return the kind.

    Args:
        spec: a zoo name, a model YAML, weights (``.safetensors``/``.pt``/``.pth``), an exported model (``.onnx``,
            ``.engine``, ``*_openvino/``), ``models:/NAME@alias`` or an ``s3://`` URI (the last two only by form).
        accept: the kinds the caller can use.
        hint: appended to the message when the kind is refused (what to pass instead).
    """
    text = os.fspath(spec).strip()
    if not text:
        raise PreflightError("model is empty; pass weights, an exported model, a zoo name or models:/NAME@alias")
    kind = model_source_kind(text)
    accepted = tuple(accept)
    if kind not in accepted:
        allowed = ", ".join(KIND_WORDS[k] for k in accepted)
        raise PreflightError(f"model '{text}' is {KIND_WORDS[kind]}, which this command does not take (it takes "
                             f"{allowed}){'; ' + hint if hint else ''}")
    path = Path(text).expanduser()
    if kind == "weights":
        _check_weights(path)
    elif kind == "exported":
        if not path.exists():
            raise PreflightError(f"exported model '{text}' does not exist; export it first (yolov12 export "
                                 "model=best.safetensors format=onnx) or pass its weights")
    elif kind == "architecture":
        _check_architecture(text)
    return kind


def _check_weights(path: Path) -> None:
    if not path.is_file():
        raise PreflightError(f"weights file '{path}' does not exist (looked at {path.resolve()}); this platform "
                             f"never downloads weights: pass a local checkpoint or models:/NAME@alias")
    if not os.access(path, os.R_OK):
        raise PreflightError(f"weights file '{path}' is not readable; check its permissions")
    if path.suffix.lower() != ".safetensors":
        return  # foreign checkpoints are read by the restricted unpickler when loaded; existence is what we check
    from yolov12.weights import CheckpointError, read_metadata  # noqa: PLC0415

    try:
        read_metadata(path)  # the header only: no tensors are loaded
    except (CheckpointError, OSError, ValueError) as exc:
        raise PreflightError(f"weights file '{path}': {_first_line(exc)}") from None


def _check_architecture(spec: str) -> None:
    from yolov12.models import ArchitectureError, UnknownModelError, load_architecture  # noqa: PLC0415

    path = Path(spec).expanduser()
    if path.suffix.lower() in ARCHITECTURE_SUFFIXES and (os.sep in spec or "/" in spec) and not path.is_file():
        raise PreflightError(f"model YAML '{spec}' does not exist (looked at {path.resolve()})")
    if path.is_file() and path.suffix.lower() not in ARCHITECTURE_SUFFIXES:
        raise PreflightError(f"model '{spec}' is a {path.suffix or 'suffix-less'} file; pass weights (.safetensors, "
                             ".pt), an exported model (.onnx, .engine, *_openvino/), a model YAML or a zoo name")
    try:
        load_architecture(spec)  # parses the YAML; the model is not built
    except (ArchitectureError, UnknownModelError, OSError, ValueError) as exc:
        raise PreflightError(_first_line(exc)) from None


def check_data(data: Any, splits: Iterable[str] = ("train", "val")) -> None:
    """Raise :class:`PreflightError` unless ``data`` resolves and defines ``splits`` whose files exist.

    Built-in names (``sample``) are accepted without building them; ``s3://`` data is not checked (see the module
    docstring). Labels are not read and image folders are not listed.
    """
    from yolov12.data import builtin  # noqa: PLC0415
    from yolov12.data.dataset_config import load_dataset_config  # noqa: PLC0415
    from yolov12.data.errors import DatasetError  # noqa: PLC0415

    text = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
    if text is not None:
        if not text.strip():
            raise PreflightError("data is empty; pass a data.yaml, a dataset folder or a built-in name (sample)")
        if text.startswith("s3://") or (text in builtin.BUILTIN_DATASETS and not Path(text).exists()):
            return
    try:
        config = load_dataset_config(data)
        for name in splits:
            source = config.split(name)
            missing = [p for p in (*source.entries, source.images, source.annotations) if p and not Path(p).exists()]
            if missing:
                raise PreflightError(f"data {config.source}: {name} split {missing[0]} does not exist")
    except DatasetError as exc:
        raise PreflightError(f"data: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
