"""The Serve application, built from typed args: by default one deployment, ``Detector``, that is the HTTP ingress and
holds the model(s); with ``single_deployment=false`` an ``Ingress`` deployment (HTTP) in front of a ``Detector``
deployment (the model), so that the two scale apart, at one Ray call more per request.

    serve run serve.app:build_app model=runs/exp/weights/best.safetensors imgsz=320
    RAY_AUTH_MODE=token serve deploy infra/serve/cpu.yaml          # cluster config (deployment options win)
    yolov12 serve model=models:/yolov12n-sample@champion port=8000  # the one-liner (serve/cli.py)

Args are :class:`serve.config.ServeAppConfig` keys; unknown keys fail with a "did you mean" hint.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serve.config import INGRESS_ONLY_KEYS, IngressSettings, ModelSettings, ServeAppConfig, configured_api_key
from serve.http_api import Ingress
from serve.model_deployment import Detector

__all__ = ["Detector", "Ingress", "build_app", "detector_init_config", "detector_options"]


def detector_options(config: ServeAppConfig) -> dict[str, Any]:
    """Deployment options of the Detector from the app config (a Serve config file's ``deployments`` override them)."""
    options: dict[str, Any] = {
        "max_ongoing_requests": config.detector_max_ongoing_requests,
        "ray_actor_options": {"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
        "user_config": ModelSettings.from_app(config).model_dump(),
    }
    if config.autoscaling is not None:
        options["autoscaling_config"] = config.autoscaling.model_dump(exclude_none=True)  # None: Ray's default
    elif config.num_replicas is not None:
        options["num_replicas"] = config.num_replicas
    return options


def detector_init_config(config: ServeAppConfig) -> dict[str, Any]:
    """The Detector's init args: the app config without what arrives through ``user_config`` (the request defaults
    and batching: Serve restarts replicas whenever init args change, and applies a new user_config in place) and
    without the split layout's Ingress options."""
    return config.model_dump(exclude=set(ModelSettings.model_fields) - {"model", "name"} | INGRESS_ONLY_KEYS)


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run`` / ``serve deploy``: ``args`` are :class:`ServeAppConfig` keys.

    Default layout (``single_deployment``): one deployment, named ``Detector`` (so a config file's Detector options
    apply to it), is the HTTP ingress and holds the model(s). With ``single_deployment=false``: ``Ingress`` ->
    ``Detector``.
    """
    config = ServeAppConfig.from_overrides(dict(args))
    configured_api_key(config.api_key_env)  # a configured key must be here too: refuse to build an open server
    model_config = detector_init_config(config)
    ingress_settings = IngressSettings.from_app(config).model_dump()
    if config.single_deployment:
        return Ingress.options(name="Detector", **detector_options(config)).bind(None, ingress_settings, model_config)
    detector = Detector.options(**detector_options(config)).bind(model_config)
    return Ingress.options(max_ongoing_requests=config.ingress_max_ongoing_requests,
                           ray_actor_options={"num_cpus": config.ingress_num_cpus}
                           ).bind(detector, ingress_settings)
