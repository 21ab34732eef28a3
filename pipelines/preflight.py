"""Checks before Ray starts: a pipeline config's model, teachers and data, and ``models:/`` URIs in the registry.

The library's :mod:`yolov12.preflight` checks local model specs and ``data=``; this module adds what needs MLflow
(a registered model, version or alias exists) and what a Ray Train job accepts. ``yolov12 train-ray``, ``tune`` and
``serve`` call these before ``ray.init``, so a bad value fails in one line within seconds, not minutes later in a
worker or replica.

Example:
    >>> preflight_pipeline(load_pipeline_config("configs/sample.yaml"))  # doctest: +SKIP
    >>> check_registered_model("models:/yolov12n-sample@champion")  # doctest: +SKIP
    '3'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipelines.config import PipelineConfig
from yolov12.preflight import ALL_KINDS, ModelKind, PreflightError, check_data, check_model_source

logger = logging.getLogger(__name__)

TRAINABLE_KINDS: tuple[ModelKind, ...] = ("architecture", "weights", "remote")
TEACHER_KINDS: tuple[ModelKind, ...] = ("weights", "remote", "registry")
SERVER_TIMEOUT_S = 3.0

__all__ = ["PreflightError", "check_model", "check_registered_model", "preflight_pipeline"]


def check_registered_model(uri: str, tracking_uri: str | None = None) -> str | None:
    """The version ``models:/NAME@alias`` / ``models:/NAME/3`` names, or :class:`PreflightError`.

    An embedded sqlite store that does not exist yet holds no model (refused). An ``http(s)`` tracking server that
    does not answer within a few seconds is not checked (logged; the job's own processes may reach it): None.
    """
    from mlflow import MlflowClient  # noqa: PLC0415
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from pipelines.registry import (  # noqa: PLC0415
        ModelURI,
        RegistryError,
        TrackingServerError,
        lookup,
        require_server,
        resolve_uri,
        sqlite_path,
    )

    try:
        parsed = ModelURI.parse(uri)
    except RegistryError as exc:
        raise PreflightError(str(exc)) from None
    store = resolve_uri(tracking_uri)
    database = sqlite_path(store)
    if database is not None and not database.is_file():
        raise PreflightError(f"{uri}: the registry {store} holds no models (no database at {database}); register "
                             "a version first (yolov12 train-ray with tracking) or set tracking_uri= / "
                             "MLFLOW_TRACKING_URI to the registry that has it")
    if store.startswith(("http://", "https://")):
        try:
            require_server(store, timeout=SERVER_TIMEOUT_S)
        except TrackingServerError as exc:
            logger.warning("%s not checked: %s", uri, exc)
            return None
    try:
        version = lookup(parsed, MlflowClient(tracking_uri=store, registry_uri=store))
    except RegistryError as exc:
        raise PreflightError(_first_line(exc)) from None
    except MlflowException as exc:
        raise PreflightError(f"{uri}: MLflow: {_first_line(exc)}") from None
    return str(version.version)


def check_model(spec: str, accept: Iterable[ModelKind] = ALL_KINDS, *, tracking_uri: str | None = None,
                hint: str = "") -> ModelKind:
    """:func:`yolov12.preflight.check_model_source`, plus the registry lookup for ``models:/`` URIs."""
    kind = check_model_source(spec, accept, hint=hint)
    if kind == "registry":
        check_registered_model(str(spec).strip(), tracking_uri)
    return kind


def preflight_pipeline(config: PipelineConfig) -> None:
    """Raise :class:`PreflightError` unless the job's model, teachers and data resolve (see the module docstring)."""
    check_model(config.model, TRAINABLE_KINDS,
                hint="train from a zoo name (yolov12n.yaml), a model YAML or native weights (.safetensors, .pt)")
    distill = getattr(config.train, "distill", None)
    for teacher in getattr(distill, "teachers", None) or []:
        try:
            check_model(str(teacher), TEACHER_KINDS, tracking_uri=config.tracking.tracking_uri,
                        hint="teachers must be trained weights")
        except PreflightError as exc:
            raise PreflightError(f"distill.teachers: {exc}") from None
    splits = ("train", "val") if config.train.run.val else ("train",)
    check_data(config.train.data.data, splits)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
