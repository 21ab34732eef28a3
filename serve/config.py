"""Typed settings of the serving application: the ``args`` of ``serve.app:build_app`` (config file or CLI).

Example:
    >>> config = ServeAppConfig.from_overrides({"model": "models:/yolov12n-sample@champion", "max_batch_size": "8"})
    >>> config.max_batch_size, config.backend
    (8, 'auto')
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from yolov12.config.base import Section

BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
DEFAULT_REQUEST_DECODED_BYTES = 64 * 3840 * 2160 * 3  # a batch of 64 8-bit RGB 4K frames, ~1.6 GB
DEFAULT_MAX_REQUEST_IMGSZ = 1280
_MODEL_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
INGRESS_ONLY_KEYS = frozenset({"ingress_num_cpus", "ingress_max_ongoing_requests"})  # the split layout's Ingress


class AutoscalingSettings(Section):
    """Serve autoscaling of one deployment (replicas follow the ongoing requests per replica).

    ``look_back_period_s`` (the window the ongoing requests are averaged over) and ``metrics_interval_s`` (how often
    handles and replicas report them to the controller) are Ray's own keys; left unset (None), Ray's defaults apply
    (30 s and 10 s in Ray 2.60): the controller then hears of a burst up to ~10 s late, before ``upscale_delay_s``
    starts. Ray 2.60 warns that ``metrics_interval_s`` will become an environment variable, but it is still the
    interval its handles and replicas push with.
    """

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(8.0, gt=0)
    upscale_delay_s: float = Field(10.0, ge=0)
    downscale_delay_s: float = Field(120.0, ge=0)
    look_back_period_s: float | None = Field(None, gt=0)
    metrics_interval_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas={self.min_replicas} is above max_replicas={self.max_replicas}")
        if (self.look_back_period_s is not None and self.metrics_interval_s is not None
                and self.look_back_period_s <= self.metrics_interval_s):
            raise ValueError(f"look_back_period_s={self.look_back_period_s} must be above "
                             f"metrics_interval_s={self.metrics_interval_s} (the window needs several reports)")
        return self


class ServeAppConfig(Section):
    """Everything the application builder needs; deployment options in a Serve config file override these.

    Attributes:
        model: the default model: a path (``.safetensors``, imported ``.pt``, ``.onnx``, ``.engine``, an
            ``*_openvino`` folder) or a registry URI ``models:/NAME@alias`` / ``models:/NAME/3``.
        models: more models served by multiplexing, id -> source; requests pick one with the
            ``serve_multiplexed_model_id`` header (no header: ``model``).
        name: model name in responses and the KServe routes (default: the registered name or the file stem).
        backend: ``auto`` (TensorRT on an NVIDIA GPU, else OpenVINO, else ONNX Runtime, built and cached on first
            start from native weights) or one backend by name.
        device: ``auto`` (the GPU when the replica has one), ``cpu``, ``cuda``, ``cuda:N``.
        imgsz: input size (square) of exported engines and the default request ``imgsz``.
        max_request_imgsz: the largest ``imgsz`` a request may ask for (422 above it; at least ``imgsz``). The
            memory of a forward grows fast with the input size (area attention: with its fourth power; one
            yolov12n forward at 4096 asks for 8 GB), so clients choose within this bound only.
        conf, iou, max_det: request defaults.
        max_batch_size, batch_wait_timeout_s: dynamic batching of the Detector: each batch takes the requests that
            queued while the previous forward ran; a batch that is not full waits ``batch_wait_timeout_s`` more
            (default 0: a lone request runs at once).
        max_ongoing_requests: per Detector replica (default: 2 x max_batch_size, at least 16, so that a batch
            fills while one runs; in the single-deployment layout ``max_track_sessions`` more, since each open
            tracking WebSocket holds one).
        num_replicas / autoscaling: a fixed replica count, or autoscaling (wins when both are given).
        num_cpus, num_gpus: per Detector replica; threads: intra-op threads of the engine (default num_cpus).
        ingress_num_cpus, ingress_max_ongoing_requests: for the Ingress deployment of the split layout
            (``single_deployment=false``); unused by the default layout.
        single_deployment: the layout. True (default): one deployment (named ``Detector``) is the HTTP ingress
            and holds the model(s): no Ray call between the HTTP front and the model, and multiplexed ``models``
            loaded by each replica (Serve's proxy routes a model's requests to a replica that holds it; behind
            HAProxy each replica loads what it is asked for, LRU). False: an ``Ingress`` deployment in front of a
            ``Detector`` deployment, called through its handle, so that the two scale apart (the ``ingress_*``
            options apply); it costs one Ray call per request.
        max_body_bytes, max_image_pixels: request limits (413 above them); an image may also decode to at most
            ``4 x max_image_pixels`` bytes (a 16-bit image counts twice its pixels, see serve/images.py).
        max_request_decoded_bytes: what all images of one request may decode to together (width x height x
            channels x bytes per sample, read from their headers before any is decoded; 413 above it). One KServe
            request carries up to 64 images, each within ``max_image_pixels``, and its images are decoded at the
            same time: the default admits a batch of 64 4K frames (3840 x 2160 x 3 bytes each, ~1.6 GB), which
            a GPU replica's memory holds; lower it on small CPU replicas.
        api_key_env: the environment variable holding the API key: requests to ``/v1`` and ``/v2/models`` must
            send its value in the ``x-api-key`` header (401 otherwise). When it is configured but the variable is
            unset or empty, the server refuses to start (``yolov12 serve`` before Ray starts, the application
            builder and every Ingress replica): a missing key never means an open server.
        max_track_sessions: tracking sessions (``/v1/track`` WebSockets) one Ingress replica holds at a time; one
            more is refused (close code 4429). Each session's tracker lives on the replica that accepted it.
        track_session_idle_s: a tracking session with no frame for this long is closed (code 4408).
        cache_dir: where engines built from native weights are kept (default ``$YOLOV12_CACHE/serve-engines``).
        tracking_uri: MLflow tracking/registry URI for ``models:/`` sources (default ``$MLFLOW_TRACKING_URI``).
        revision: any text; changing it (with ``serve deploy``) makes the Detector reload its sources in place,
            e.g. after ``yolov12 promote`` moved ``champion`` (only the Detector's ``user_config`` changes).
        random_weights: allow an architecture (a zoo name such as ``yolov12n.yaml`` or a model YAML) as a source:
            each replica builds it with random weights (seed 0), for smoke tests of the serving stack only; its
            detections mean nothing. Without it, ``yolov12 serve`` refuses an architecture before Ray starts.
    """

    model: str
    models: dict[str, str] = Field(default_factory=dict)
    name: str | None = None
    backend: Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"] = "auto"
    device: str = "auto"
    imgsz: int = Field(640, ge=32, le=4096)
    max_request_imgsz: int = Field(DEFAULT_MAX_REQUEST_IMGSZ, ge=32, le=4096)
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=10000)
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_timeout_s: float = Field(0.0, ge=0.0, le=10.0)
    max_ongoing_requests: int | None = Field(None, ge=1)
    num_replicas: int | None = Field(None, ge=1)
    autoscaling: AutoscalingSettings | None = None
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    threads: int | None = Field(None, ge=1)
    ingress_num_cpus: float = Field(0.5, ge=0)
    ingress_max_ongoing_requests: int = Field(64, ge=1)
    single_deployment: bool = True
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=64 * 64)
    max_request_decoded_bytes: int = Field(DEFAULT_REQUEST_DECODED_BYTES, ge=64 * 64 * 3)
    api_key_env: str | None = None
    max_track_sessions: int = Field(16, ge=1, le=10000)
    track_session_idle_s: float = Field(30.0, gt=0.0, le=86400.0)
    cache_dir: str | None = None
    tracking_uri: str | None = None
    revision: str | None = None
    random_weights: bool = False

    @field_validator("model")
    @classmethod
    def _model_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model is empty; pass a weights path or models:/NAME@alias")
        return value.strip()

    @field_validator("models", "autoscaling", mode="before")
    @classmethod
    def _mapping_from_text(cls, value: object) -> object:
        """CLI / ``serve run`` args arrive as text: accept a YAML/JSON mapping there."""
        if isinstance(value, str):
            import yaml  # noqa: PLC0415

            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                raise ValueError(f"expected a mapping such as {{a: path.safetensors}}, got {value!r}") from None
        return value

    @field_validator("models")
    @classmethod
    def _model_ids(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [key for key in value if not _MODEL_ID.match(key)]
        if bad:
            raise ValueError(f"multiplexed model ids {bad} must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: object) -> str:
        text = str(value).strip().lower()
        if text.isdigit():
            return f"cuda:{text}"
        if text in ("auto", "cpu", "cuda") or text.startswith("cuda:"):
            return text
        raise ValueError("device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a GPU index such as 0")

    @model_validator(mode="after")
    def _default_size_within_the_request_limit(self) -> ServeAppConfig:
        if self.max_request_imgsz < self.imgsz:
            raise ValueError(f"max_request_imgsz={self.max_request_imgsz} is below imgsz={self.imgsz}, the size of "
                             "requests that leave imgsz unset; raise max_request_imgsz")
        return self

    @model_validator(mode="after")
    def _ingress_options_need_the_split_layout(self) -> ServeAppConfig:
        given = sorted(key for key in INGRESS_ONLY_KEYS & self.model_fields_set  # a full dump round-trips
                       if getattr(self, key) != type(self).model_fields[key].default)
        if self.single_deployment and given:
            raise ValueError(f"{', '.join(given)} configure the separate Ingress deployment, which the default layout "
                             "does not have (the Detector is the HTTP ingress); set single_deployment=false to use "
                             "them, or drop them (num_cpus and max_ongoing_requests size the Detector)")
        return self

    @property
    def detector_max_ongoing_requests(self) -> int:
        if self.max_ongoing_requests:
            return self.max_ongoing_requests
        batching = max(16, 2 * self.max_batch_size)
        return batching + self.max_track_sessions if self.single_deployment else batching

    def source_for(self, model_id: str) -> str:
        """The source of a multiplexed model id ('' is the default model); KeyError names the known ids."""
        if not model_id or model_id == "default":
            return self.model
        if model_id not in self.models:
            raise KeyError(f"unknown model id '{model_id}'; this application serves: "
                           f"{', '.join(['default', *self.models])}")
        return self.models[model_id]


class ModelSettings(Section):
    """What the Detector reloads on ``reconfigure(user_config)``: the default model and request defaults."""

    model: str
    models: dict[str, str] = Field(default_factory=dict)
    name: str | None = None
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=10000)
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_timeout_s: float = Field(0.0, ge=0.0, le=10.0)
    revision: str | None = None  # change it to force a reload, e.g. after moving a registry alias

    @classmethod
    def from_app(cls, config: ServeAppConfig) -> ModelSettings:
        return cls(**{key: getattr(config, key) for key in cls.model_fields})


class IngressSettings(Section):
    """What the HTTP ingress needs (kept apart so that model updates never restart the ingress); the keys are
    :class:`ServeAppConfig`'s, documented there."""

    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=64 * 64)
    max_request_decoded_bytes: int = Field(DEFAULT_REQUEST_DECODED_BYTES, ge=64 * 64 * 3)
    max_request_imgsz: int = Field(DEFAULT_MAX_REQUEST_IMGSZ, ge=32, le=4096)
    api_key_env: str | None = None
    max_track_sessions: int = Field(16, ge=1, le=10000)
    track_session_idle_s: float = Field(30.0, gt=0.0, le=86400.0)

    @classmethod
    def from_app(cls, config: ServeAppConfig) -> IngressSettings:
        return cls(**{key: getattr(config, key) for key in cls.model_fields})


class MissingApiKeyError(ValueError):
    """``api_key_env`` names an environment variable that is unset or empty where the server starts."""


def configured_api_key(api_key_env: str | None) -> str | None:
    """The API key requests must send: the value of the variable ``api_key_env`` names (None: no key configured).

    Raises :class:`MissingApiKeyError` when a variable is named but unset or empty here: the server must not
    start open when its key did not reach it.
    """
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env, "")
    if not key:
        raise MissingApiKeyError(f"api_key_env={api_key_env} but the environment variable {api_key_env} is "
                                 f"{'empty' if api_key_env in os.environ else 'not set'} here; set it (from a "
                                 "secret) on every node that runs the server, or drop api_key_env to serve "
                                 "without a key")
    return key
