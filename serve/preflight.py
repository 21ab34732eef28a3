"""What ``yolov12 serve`` checks before Ray starts: every model source of the application resolves, and a
configured API key is there.

A source is native weights (a readable ``.safetensors`` / ``.pt``), an exported model (``.onnx``, ``.engine``,
``*_openvino/``) or a registry URI whose model, version or alias exists (looked up in MLflow when the tracking store
answers). An architecture (``yolov12n.yaml``, a model YAML) has no trained weights: it is refused unless
``random_weights=true`` asks for a smoke test with random weights. The replicas would otherwise fail minutes later,
after Ray and Serve started.

Example:
    >>> check_serving_sources(ServeAppConfig(model="yolov12n.yaml"))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    PreflightError: model 'yolov12n.yaml' is an architecture (random weights), which this command does not take ...
"""

from __future__ import annotations

from pipelines.preflight import PreflightError, check_model
from serve.config import MissingApiKeyError, ServeAppConfig, configured_api_key
from yolov12.preflight import ModelKind

SERVABLE_KINDS: tuple[ModelKind, ...] = ("weights", "exported", "registry")
ARCHITECTURE_HINT = ("serve trained weights (.safetensors), an exported model or models:/NAME@alias; for a smoke test "
                     "with random weights add random_weights=true")

__all__ = ["PreflightError", "check_api_key", "check_serving_sources"]


def check_serving_sources(config: ServeAppConfig) -> None:
    """Raise :class:`PreflightError` (one line, naming the source and the fix) unless every source resolves."""
    accept = (*SERVABLE_KINDS, "architecture") if config.random_weights else SERVABLE_KINDS
    for label, source in (("model", config.model), *((f"models.{key}", value) for key, value in config.models.items())):
        try:
            check_model(source, accept, tracking_uri=config.tracking_uri, hint=ARCHITECTURE_HINT)
        except PreflightError as exc:
            raise PreflightError(str(exc) if label == "model" else f"{label}: {exc}") from None


def check_api_key(config: ServeAppConfig) -> None:
    """Raise :class:`PreflightError` (one line) when ``api_key_env`` is configured but its variable is unset or
    empty: the server would otherwise start without the key it was told to require."""
    try:
        configured_api_key(config.api_key_env)
    except MissingApiKeyError as exc:
        raise PreflightError(str(exc)) from None
