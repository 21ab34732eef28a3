"""The ``Detector`` deployment: holds a :class:`ServingModel`, batches requests, swaps models without downtime.

- Dynamic batching: :meth:`Detector.predict` (one image) feeds :meth:`Detector._predict_batch` through a
  :class:`~serve.batching.ContinuousBatcher` (each batch takes what queued while the previous forward ran; see there
  why not ``@serve.batch``); the forward runs in a worker thread so the replica keeps accepting requests (and
  health checks) meanwhile.
- Encoded images (what the HTTP ingress sends: ~70 KB of JPEG instead of ~0.8 MB of pixels, which Ray would pickle
  and move through its object store) are decoded here, in a worker thread as each request arrives, so the decode
  of the next batch overlaps the running forward; an undecodable image is answered alone (:class:`ImageError`).
- Updates: ``reconfigure(user_config)`` (a :class:`ModelSettings` dict) loads the new model first, then swaps the
  reference; batches already running keep the model they started with. ``models:/NAME@alias`` is resolved again
  on each reconfigure, so after moving the alias, redeploying the same config (or bumping ``revision``) loads the
  new version.
- Multiplexing: a request with the ``serve_multiplexed_model_id`` header names one of ``models``; those are loaded
  (LRU, three per replica) by the ``@serve.multiplexed`` loader, which also tells Serve which replica holds which
  model, so Serve's proxy and handles send a model's requests to a replica that has it loaded. That works the same
  when the replica is the HTTP ingress itself (the single-deployment layout, see serve/http_api.py).
- Readiness: every engine the replica may need (the default model's and the multiplexed models') is built in the
  constructor, so a TensorRT build of minutes delays readiness, never a request (see :meth:`Detector.__init__`).
- Health: ``check_health`` raises when the model failed to load or the last forwards failed, so Serve replaces
  the replica.
- Smoke tests: with ``random_weights=true`` an architecture source (``yolov12n.yaml``) is built with random weights
  (seed 0) into a native checkpoint under the cache folder, then served like any weights file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from serve.batching import ContinuousBatcher
from serve.config import ModelSettings, ServeAppConfig
from serve.images import ImageError, decode_image
from serve.metrics import serving_metrics
from serve.runtime import (
    InferenceRequest,
    ModelSource,
    Prediction,
    RequestError,
    ServingModel,
    UnknownModelError,
    cache_root,
    default_threads,
    load_serving_model,
    prepare_engine,
    resolve_source,
)

logger = logging.getLogger("ray.serve")

DEFAULT_MODEL_ID = "default"
FAILURES_BEFORE_UNHEALTHY = 3


@serve.deployment(name="Detector", max_ongoing_requests=16, health_check_period_s=5, health_check_timeout_s=30,
                  graceful_shutdown_timeout_s=10)
class Detector:
    """A replica serving one default model (plus multiplexed ones) with dynamic batching."""

    def __init__(self, app_config: dict[str, Any]) -> None:
        self.app_config = ServeAppConfig.model_validate(app_config)
        self.settings = ModelSettings.from_app(self.app_config)
        self.threads = self.app_config.threads or default_threads(self.app_config.num_cpus)
        # Engines are built here, in the constructor, never on a request: Serve routes no traffic to a replica (and
        # runs no health check on it) until its constructor returns, and keeps the old replicas serving meanwhile
        # during an update, so a TensorRT build of minutes only delays this replica's readiness. The alternative, a
        # background build behind a not-ready health answer, does not fit Serve: a failing check_health gets the
        # replica replaced, so the build would restart forever. The multiplexed models' engines are built (not
        # loaded: they are loaded, LRU, on their first request) so that first request only deserializes.
        self.model: ServingModel = self._load(self.app_config.model, self.settings.name)
        self._prepare_engines(self.app_config.models)
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self._reload_lock = asyncio.Lock()
        self._batcher: ContinuousBatcher[tuple[str, InferenceRequest], Prediction | RequestError] = \
            ContinuousBatcher(self._predict_batch, self.settings.max_batch_size, self.settings.batch_wait_timeout_s)

    # -- loading ------------------------------------------------------------------------------------------------------
    def _source(self, source: str) -> str:
        """``source``, or for an architecture under ``random_weights=true`` the checkpoint built from it."""
        from yolov12.preflight import model_source_kind  # noqa: PLC0415

        if self.app_config.random_weights and model_source_kind(source) == "architecture":
            return str(random_weights_checkpoint(source, self.app_config.cache_dir))
        return source

    def _load(self, source: str | ModelSource, name: str | None = None) -> ServingModel:
        config = self.app_config
        if isinstance(source, str):
            source = self._source(source)
        return load_serving_model(source, backend=config.backend, device=config.device, imgsz=config.imgsz,
                                  max_batch=config.max_batch_size, threads=self.threads, cache_dir=config.cache_dir,
                                  tracking_uri=config.tracking_uri, name=name)

    def _prepare_engines(self, models: dict[str, str]) -> None:
        """Build (or find cached) the engines of the multiplexed ``models`` (id -> source) without loading them; a
        source that fails is one warning here and fails its own requests later, with the full reason."""
        config = self.app_config
        for model_id, source in models.items():
            try:
                prepare_engine(self._source(source), backend=config.backend, device=config.device,
                               imgsz=config.imgsz, max_batch=config.max_batch_size, cache_dir=config.cache_dir,
                               tracking_uri=config.tracking_uri)
            except Exception as exc:  # noqa: BLE001 - one model's source must not keep the others from serving
                logger.warning("could not build the engine of model '%s' (%s) ahead: %s: %s", model_id, source,
                               type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply :class:`ModelSettings`. The source is resolved again (a registry alias may have moved); a new
        version is loaded beside the old one and then swapped in, so batches already running finish on the old one.
        """
        settings = ModelSettings.model_validate({**ModelSettings.from_app(self.app_config).model_dump(),
                                                 **(user_config or {})})
        async with self._reload_lock:
            current = self.model
            resolved = await asyncio.to_thread(lambda: resolve_source(self._source(settings.model),
                                                                      self.app_config.tracking_uri,
                                                                      self.app_config.cache_dir))
            changed = (resolved != current.source or settings.name != self.settings.name
                       or settings.revision != self.settings.revision)
            if changed:
                candidate = await asyncio.to_thread(self._load, resolved, settings.name)
                logger.info("model %s v%s -> %s v%s", current.name, current.version, candidate.name,
                            candidate.version)
                self.model = candidate
            added = {k: v for k, v in settings.models.items() if self.app_config.models.get(k) != v}
            await asyncio.to_thread(self._prepare_engines, added)  # before the new ids can be asked for
            self.app_config = self.app_config.model_copy(update={"models": settings.models})
            self.settings = settings
            self._batcher.configure(settings.max_batch_size, settings.batch_wait_timeout_s)
            self.consecutive_failures, self.last_error = 0, None

    @serve.multiplexed(max_num_models_per_replica=3)
    async def _multiplexed_model(self, model_id: str) -> ServingModel:
        try:
            source = self.app_config.source_for(model_id)
        except KeyError as exc:
            raise UnknownModelError(str(exc.args[0])) from None
        return await asyncio.to_thread(self._load, source, model_id)

    async def _model_for(self, model_id: str) -> ServingModel:
        if not model_id or model_id == DEFAULT_MODEL_ID:
            return self.model
        if model_id not in self.app_config.models:  # refused here, before Serve's loader counts it as a model
            raise UnknownModelError(f"unknown model id '{model_id}'; this application serves: "
                                    f"{', '.join([DEFAULT_MODEL_ID, *self.app_config.models])}")
        return await self._multiplexed_model(model_id)

    # -- requests -----------------------------------------------------------------------------------------------------
    async def predict(self, request: InferenceRequest,
                      model_id: str | None = None) -> Prediction | RequestError | ImageError:
        """One image (pixels or encoded bytes) in, one :class:`Prediction` (or the :class:`RequestError` /
        :class:`ImageError` that explains a 4xx) out. ``model_id``: a multiplexed model ('' or ``default``: the
        default one); None takes the request's ``serve_multiplexed_model_id``, as Serve routed it."""
        if model_id is None:
            model_id = serve.get_multiplexed_model_id()
        settings = self.settings
        decode_ms = None
        if isinstance(request.image, bytes):
            started = time.perf_counter()
            try:
                pixels = await asyncio.to_thread(decode_image, request.image, self.app_config.max_image_pixels)
            except ImageError as exc:
                return exc
            decode_ms = (time.perf_counter() - started) * 1000
            request = replace(request, image=pixels)
        outcome = await self._batcher.submit((model_id, request.with_defaults(settings.conf, settings.iou,
                                                                              settings.max_det)))
        if decode_ms is not None and isinstance(outcome, Prediction):
            outcome.timing["decode"] = decode_ms
            serving_metrics().record_stages({"decode": decode_ms}, outcome.model)
        return outcome

    async def _predict_batch(self, items: list[tuple[str, InferenceRequest]]) -> list[Prediction | RequestError]:
        outcomes: list[Prediction | RequestError | None] = [None] * len(items)
        by_model: dict[str, list[int]] = {}
        for index, (model_id, _) in enumerate(items):
            by_model.setdefault(model_id, []).append(index)
        for model_id, indices in by_model.items():
            try:
                model = await self._model_for(model_id)
            except RequestError as exc:
                for index in indices:
                    outcomes[index] = exc
                continue
            predictions = await self._run(model, [items[i][1] for i in indices])
            for index, prediction in zip(indices, predictions):
                outcomes[index] = prediction
        return outcomes  # type: ignore[return-value]

    async def _run(self, model: ServingModel, requests: list[InferenceRequest]) -> list[Prediction | RequestError]:
        try:
            predictions = await asyncio.to_thread(model.predict, requests)
        except Exception as exc:
            self.consecutive_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("forward of %d image(s) on %s failed", len(requests), model.name)
            raise
        self.consecutive_failures = 0
        metrics = serving_metrics()
        for prediction in predictions:
            if isinstance(prediction, Prediction):
                metrics.images.inc(tags={"model": model.name, "task": model.task})
                if len(prediction.detections):  # Ray counters refuse inc(0)
                    metrics.detections.inc(len(prediction.detections), tags={"model": model.name})
                metrics.record_stages(prediction.timing, model.name)
        metrics.batch_size.observe(len(requests), tags={"model": model.name})
        return predictions

    async def metadata(self, model_id: str = DEFAULT_MODEL_ID) -> dict[str, Any]:
        """What ``GET /v2/models/{name}`` and responses report: name, version, backend, task, classes."""
        model = await self._model_for(model_id)
        described = model.describe()
        described["max_batch_size"] = self.settings.max_batch_size
        described["models"] = [DEFAULT_MODEL_ID, *self.app_config.models]
        return described

    async def check_health(self) -> None:
        """Raise (so Serve restarts the replica) when the engine keeps failing."""
        if self.consecutive_failures >= FAILURES_BEFORE_UNHEALTHY:
            raise RuntimeError(f"the last {self.consecutive_failures} forwards failed: {self.last_error}")

    async def ping(self) -> dict[str, Any]:
        """Readiness probe of the ingress: this replica's process id, model and version."""
        return {"pid": os.getpid(), "model": self.model.name, "version": self.model.version, "time": time.time()}


def random_weights_checkpoint(spec: str, cache_dir: str | None = None) -> Path:
    """A native checkpoint of architecture ``spec`` with random weights (seed 0), written once under the cache.

    Every replica builds the same weights (the seed is fixed; the global random state is left as it was), so
    replicas agree; the file name ends in ``-random`` so that responses show what is served.
    """
    import torch  # noqa: PLC0415

    from yolov12.models import load_model  # noqa: PLC0415
    from yolov12.weights import save_checkpoint  # noqa: PLC0415

    path = Path(spec).expanduser()
    content = path.read_bytes() if path.is_file() else b""
    key = hashlib.sha256(spec.encode() + b"\0" + content).hexdigest()[:16]
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    target = cache_root(cache_dir) / "random-weights" / key / f"{stem}-random.safetensors"
    if not target.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = load_model(spec).eval()
        save_checkpoint(model, target, overwrite=True)  # atomic: replicas racing here write the same file
    logger.warning("serving %s with RANDOM weights (random_weights=true, a smoke test): detections mean nothing",
                   spec)
    return target
