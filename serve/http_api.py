"""The HTTP ingress (FastAPI): ``/v1/detect`` and ``/v1/classify``, and the Open Inference Protocol (KServe v2).

Routes:
    POST /v1/detect, /v1/classify   image as the raw body (image/jpeg, image/png, image/webp, image/bmp or
                                    application/octet-stream) or multipart form-data field ``file``; ``conf``,
                                    ``iou``, ``max_det``, ``imgsz`` and ``annotate`` as query or form fields.
    GET  /v2/health/live|ready, /v2, /v2/models/{name}[/versions/{v}][/ready]
    WS   /v1/track                      a tracking session: frames in order over one WebSocket, track ids back
                                    (protocol and close codes in serve/tracking.py).
    POST /v2/models/{name}[/versions/{v}]/infer   inputs: ``images`` BYTES [B] (encoded images; base64 text in
                                    JSON) or UINT8 [B, H, W, 3] / [H, W, 3] RGB pixels; parameters conf, iou,
                                    max_det, imgsz. Outputs: ``detections`` FP32 [B, N, 6] (x1, y1, x2, y2, score,
                                    class in original pixels, zero-padded) and ``num_detections`` INT32 [B]; for
                                    classifiers ``probabilities`` FP32 [B, nc].

Every bad input is a 4xx with one line in ``{"error": "..."}``; a replica that fails mid-request is a 503 (retry).
With ``api_key_env`` configured, ``/v1`` and ``/v2/models`` require the ``x-api-key`` header (an Ingress whose
variable is unset or empty refuses to start). Before anything is sent to the model, every image's header is checked
(format, pixels, bytes its pixels decode to) and a request's images together may decode to at most
``max_request_decoded_bytes`` (413); ``imgsz`` is at most ``max_request_imgsz`` (422). The documented schema of
requests and answers is in serve/schemas.py (``/openapi.json``).
Which model: the ``serve_multiplexed_model_id`` header (Serve's own), else the default.

Two layouts (``ServeAppConfig.single_deployment``). By default the Ingress holds the Detector itself (same class,
same batching, called in-process): a request crosses no Ray call after the HTTP front, and multiplexed models are
loaded (LRU) by the in-process Detector, whose loader reports them to Serve so that its proxy routes a model's
requests to a replica that holds it. With ``single_deployment=false`` the Ingress calls a separate ``Detector``
deployment through its handle, so that ingress and model replicas scale apart (one Ray call more per request).
"""

# No `from __future__ import annotations` here: FastAPI must see real types (`Request`) on the methods that
# `serve.ingress` rewraps, and string annotations are not resolved there (they become query parameters).

import asyncio
import base64
import binascii
import hmac
import logging
import time
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import Field, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile

from serve import kserve, schemas, tracking
from serve.config import IngressSettings, configured_api_key
from serve.images import ImageError, check_image, check_request_budget, decode_image
from serve.metrics import serving_metrics
from serve.model_deployment import Detector
from serve.runtime import InferenceRequest, Prediction, RequestError, UnknownModelError
from yolov12.config.base import Section, format_validation_error
from yolov12.infer.results import Boxes, Results

logger = logging.getLogger("ray.serve")

MODEL_HEADER = "serve_multiplexed_model_id"
API_KEY_HEADER = "x-api-key"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/x-ms-bmp", "application/octet-stream")
DETECTOR_TIMEOUT_S = 60.0
MAX_LENGTH_DIGITS = 18  # a Content-Length below 10**18 bytes

api = FastAPI(title="YOLOv12 inference", version="1", docs_url="/docs", openapi_url="/openapi.json")


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DetectParams(Section):
    """Per-request options (query string or form fields); defaults come from the app config."""

    conf: float | None = Field(None, ge=0.0, le=1.0)
    iou: float | None = Field(None, ge=0.0, le=1.0)
    max_det: int | None = Field(None, ge=1, le=10000)
    imgsz: int | None = Field(None, ge=32, le=4096)
    annotate: bool = False


@api.exception_handler(ApiError)
async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    serving_metrics().errors.inc(tags={"status": str(exc.status), "route": request.url.path.split("/")[1]})
    return JSONResponse({"error": exc.message}, status_code=exc.status)


@api.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own parameter checks answer like every other bad input: 422 with one ``error`` line."""
    problems = "; ".join(f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
                         for error in exc.errors()[:3])
    return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)


@api.exception_handler(404)
async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"no route {request.method} {request.url.path}; see /docs"}, status_code=404)


@api.exception_handler(405)
async def _bad_method(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, status_code=405,
                        headers=getattr(exc, "headers", None))  # Starlette's Allow header names the methods


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` header as a number (None when absent); 400 unless it is a decimal byte count."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not (declared.isascii() and declared.isdigit() and len(declared) <= MAX_LENGTH_DIGITS):
        raise ApiError(400, f"bad Content-Length {kserve.brief(declared)}: send the body's size in bytes")
    return int(declared)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without reading them all."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise ApiError(413, f"the body is {declared} bytes; the limit is {limit} bytes (max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than the limit of {limit} bytes (max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def image_and_options(request: Request, limit: int) -> tuple[bytes, dict[str, Any]]:
    """(image bytes, raw options) from a raw-body or multipart request."""
    body = await read_body(request, limit)
    options: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await Request(request.scope, _replay(body)).form(max_files=4, max_fields=32)
        except Exception as exc:  # noqa: BLE001 - starlette/python-multipart raise several types for bad forms
            raise ApiError(400, f"cannot parse the multipart form: {exc}") from None
        items = form.multi_items()
        files = [value for _, value in items if isinstance(value, UploadFile)]
        if len(files) != 1:
            raise ApiError(400, f"send exactly one image file in the form (field 'file'), got {len(files)}")
        options.update({key: value for key, value in items if isinstance(value, str)})
        return await files[0].read(), options
    if content_type and content_type not in IMAGE_TYPES:
        raise ApiError(415, f"unsupported Content-Type {content_type!r}; send an image ({', '.join(IMAGE_TYPES)}) "
                            "or multipart/form-data")
    return body, options


def parse_params(options: dict[str, Any]) -> DetectParams:
    try:
        return DetectParams.model_validate(options)
    except ValidationError as exc:
        raise ApiError(422, format_validation_error(exc)) from None


def model_header(headers: Any) -> str:
    """The multiplexed model id a request names: Serve's ``serve_multiplexed_model_id`` header, or the same name with
    dashes (what proxies that drop underscored headers let through); '' for the default model."""
    return headers.get(MODEL_HEADER) or headers.get(MODEL_HEADER.replace("_", "-")) or ""


def api_key_from(settings: IngressSettings) -> str | None:
    """The key requests must send: the value of ``settings.api_key_env`` on this replica (None: none configured);
    :class:`~serve.config.MissingApiKeyError` when it is configured but unset or empty here."""
    return configured_api_key(settings.api_key_env)


def check_api_key(sent: str | None, expected: str | None) -> None:
    """401 unless no key is configured or ``sent`` equals it (constant-time comparison)."""
    if expected and not hmac.compare_digest((sent or "").encode(), expected.encode()):
        raise ApiError(401, f"missing or wrong {API_KEY_HEADER} header")


def detection_json(prediction: Prediction) -> list[dict[str, Any]]:
    """Detections as JSON objects; boxes rounded to 0.01 px, scores to 1e-5 (rounded as arrays: a model that
    detects everywhere returns 300 rows, and rounding value by value in Python cost more than the JSON encoding)."""
    rows = prediction.detections.astype(np.float64)
    boxes, scores = np.round(rows[:, :4], 2).tolist(), np.round(rows[:, 4], 5).tolist()
    return [{"box": box, "score": score, "class_id": class_id, "class_name": name}
            for box, score, class_id, name in zip(boxes, scores, rows[:, 5].astype(np.int64).tolist(),
                                                  prediction.class_names)]


def classification_json(prediction: Prediction, top: int = 5) -> list[dict[str, Any]]:
    order = np.argsort(-prediction.probs, kind="stable")[:top]
    return [{"class_id": int(i), "class_name": prediction.class_names[i], "score": round(float(prediction.probs[i]),
                                                                                         5)} for i in order]


def annotated_jpeg(image: np.ndarray, prediction: Prediction) -> str:
    """The image with the prediction drawn by the library's ``Results.plot``, as base64 JPEG."""
    import cv2  # noqa: PLC0415

    names = {int(row[5]): name for row, name in zip(prediction.detections, prediction.class_names)}
    if prediction.task == "classify":
        from yolov12.infer.results import Probs  # noqa: PLC0415

        result = Results(image, "upload", dict(enumerate(prediction.class_names)),
                         probs=Probs(np.asarray(prediction.probs)))
    else:
        import torch  # noqa: PLC0415

        result = Results(image, "upload", names, boxes=Boxes(torch.from_numpy(prediction.detections), image.shape[:2]))
    ok, encoded = cv2.imencode(".jpg", result.plot())
    return base64.b64encode(encoded.tobytes()).decode() if ok else ""


# How long a stopping Ingress replica may finish the requests it holds. When an update replaces both deployments,
# Serve stops the old Detector of a one-replica deployment at once and starts the new one; requests already at the
# old Ingress wait on its handle until the new Detector is up (model download, engine build: 22 s seen under load on
# 2 cores), and Serve's default of 20 s force-killed that Ingress with two requests in flight (HTTP 500). An idle
# replica stops at once; this only bounds the wait of requests it holds.
INGRESS_DRAIN_TIMEOUT_S = 120.0


@serve.deployment(name="Ingress", max_ongoing_requests=64, graceful_shutdown_timeout_s=INGRESS_DRAIN_TIMEOUT_S)
@serve.ingress(api)
class Ingress:
    """HTTP front: validates requests (options, image headers), sends the encoded images to the Detector (which
    decodes them), formats answers."""

    def __init__(self, detector: DeploymentHandle | None, settings: dict[str, Any],
                 model_config: dict[str, Any] | None = None) -> None:
        """``detector``: the handle of a separate Detector deployment; or None and ``model_config`` (the Detector's
        app config), and this replica holds the Detector itself (``single_deployment``)."""
        if (detector is None) == (model_config is None):
            raise ValueError("pass either a Detector handle or the model config of an in-process Detector")
        self.config = IngressSettings.model_validate(settings)
        self.api_key = api_key_from(self.config)  # raises when configured but missing: never serve open
        self.detector = detector
        self.local: Any = None if model_config is None else Detector.func_or_class(model_config)
        self.sessions = tracking.SessionRegistry(self.config.max_track_sessions)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Model updates of an in-process Detector (``single_deployment``), as :meth:`Detector.reconfigure`."""
        if self.local is None:
            raise ValueError("the Ingress takes no user_config; set it on the Detector deployment")
        await self.local.reconfigure(user_config)

    async def check_health(self) -> None:
        if self.local is not None:
            await self.local.check_health()

    async def ping(self) -> dict[str, Any]:
        """The Detector's :meth:`~serve.model_deployment.Detector.ping` (this process's when it holds the model)."""
        return await self._call("", "ping")

    # -- helpers ------------------------------------------------------------------------------------------------------
    def _authorise(self, request: Request) -> None:
        check_api_key(request.headers.get(API_KEY_HEADER), self.api_key)

    def _handle(self, model_id: str) -> DeploymentHandle:
        return self.detector.options(multiplexed_model_id=model_id) if model_id else self.detector

    async def _call(self, model_id: str, method: str, *args: Any) -> Any:
        """``method`` of the Detector: the one in this process (single deployment), else through the handle, routed
        to a replica that has ``model_id`` loaded."""
        local = self.local is not None
        try:
            pending = (getattr(self.local, method)(*args) if local
                       else getattr(self._handle(model_id), method).remote(*args))
            return await asyncio.wait_for(pending, DETECTOR_TIMEOUT_S)
        except UnknownModelError as exc:  # raised by the Detector when a multiplexed id is unknown
            raise ApiError(404, str(exc)) from None
        except asyncio.TimeoutError:
            raise ApiError(503, f"the model did not answer within {DETECTOR_TIMEOUT_S:.0f}s; retry") from None
        except Exception as exc:  # noqa: BLE001 - replica died / restarting: a retriable error, never a hang
            if local:
                raise  # this process's own failure: Serve answers 500 and logs it
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UnknownModelError):
                raise ApiError(404, str(cause)) from None
            logger.warning("detector call failed: %s", exc)
            raise ApiError(503, f"the model replica is unavailable ({type(exc).__name__}); retry") from None

    async def _predict(self, model_id: str, image: np.ndarray | bytes, params: DetectParams) -> Prediction:
        """The Detector's prediction for pixels or an encoded image (checked with :meth:`_checked` first)."""
        request = InferenceRequest(image, conf=params.conf, iou=params.iou, max_det=params.max_det, imgsz=params.imgsz)
        outcome = await self._call(model_id, "predict", request, model_id)
        if isinstance(outcome, ImageError):  # the header was fine but the pixels are not
            raise ApiError(outcome.status, str(outcome))
        if isinstance(outcome, RequestError):
            raise ApiError(404 if isinstance(outcome, UnknownModelError) else 422, str(outcome))
        return outcome

    def _params(self, options: dict[str, Any]) -> DetectParams:
        """The request options, 422 when invalid or when ``imgsz`` is above ``max_request_imgsz``."""
        params = parse_params(options)
        limit = self.config.max_request_imgsz
        if params.imgsz is not None and params.imgsz > limit:
            raise ApiError(422, f"imgsz={params.imgsz} is above the limit of {limit} (max_request_imgsz): the "
                                "memory of a forward grows fast with the input size; send a smaller imgsz")
        return params

    def _checked(self, images: list[bytes | np.ndarray]) -> list[bytes | np.ndarray]:
        """``images`` (one request's) if each header is a supported image within the per-image limits and all of
        them together decode to at most ``max_request_decoded_bytes``: read from the headers, before the Detector
        decodes any. Pixels (already decoded) count with their size."""
        try:
            sizes = [image.nbytes if isinstance(image, np.ndarray) else
                     check_image(image, self.config.max_image_pixels).decoded_bytes for image in images]
            check_request_budget(sizes, self.config.max_request_decoded_bytes)
        except ImageError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return images

    def _decode(self, data: bytes) -> np.ndarray:
        try:
            return decode_image(data, self.config.max_image_pixels)
        except ImageError as exc:
            raise ApiError(exc.status, str(exc)) from None

    # -- /v1 ----------------------------------------------------------------------------------------------------------
    @api.post("/v1/detect", **schemas.PREDICT_ROUTE)
    async def detect(self, request: Request) -> Response:
        return await self._v1(request, "detect")

    @api.post("/v1/classify", **schemas.PREDICT_ROUTE)
    async def classify(self, request: Request) -> Response:
        return await self._v1(request, "classify")

    async def _v1(self, request: Request, task: str) -> Response:
        started = time.perf_counter()
        self._authorise(request)
        data, options = await image_and_options(request, self.config.max_body_bytes)
        params = self._params(options)
        (image,) = self._checked([data])
        prediction = await self._predict(model_header(request.headers), image, params)
        if prediction.task != task:
            raise ApiError(400, f"model {prediction.model} is a {prediction.task} model; use /v1/{prediction.task}")
        timing = {**prediction.timing, "request": (time.perf_counter() - started) * 1000}
        serving_metrics().record_stages({"request": timing["request"]}, prediction.model)
        body: dict[str, Any] = {
            "model": {"name": prediction.model, "version": prediction.version, "backend": prediction.backend,
                      "engine": prediction.engine},
            "image": {"width": prediction.width, "height": prediction.height}, "imgsz": prediction.imgsz,
            "timing_ms": {key: round(value, 2) for key, value in timing.items()},
        }
        if task == "detect":
            body["detections"] = detection_json(prediction)
        else:
            body["classes"] = classification_json(prediction)
        if params.annotate:  # the only route that needs the pixels here
            body["annotated_image"] = {"format": "jpeg", "base64": annotated_jpeg(self._decode(data), prediction)}
        # orjson, not JSONResponse's json.dumps: 0.5 vs 2.7 ms for 300 detections (measured; CPU a replica's
        # engine threads would otherwise get)
        return Response(orjson.dumps(body), media_type="application/json")

    # -- /v1/track (WebSocket) ----------------------------------------------------------------------------------------
    @api.websocket("/v1/track")
    async def track(self, websocket: WebSocket) -> None:
        """A tracking session (see serve/tracking.py): accepted first, so that a refusal carries its reason."""
        await websocket.accept()
        try:
            check_api_key(websocket.headers.get(API_KEY_HEADER), self.api_key)
            options = tracking.parse_tracking_options(dict(websocket.query_params), self.config.max_request_imgsz)
            with self.sessions.session() as session_id:
                await self._run_session(websocket, session_id, options, model_header(websocket.headers))
        except ApiError as exc:
            await websocket.close(tracking.CLOSE_UNAUTHORISED, tracking.close_reason(exc.message))
        except tracking.TrackingOptionsError as exc:
            await websocket.close(tracking.CLOSE_BAD_OPTIONS, tracking.close_reason(str(exc)))
        except tracking.SessionLimitError as exc:
            await websocket.close(tracking.CLOSE_TOO_MANY_SESSIONS, tracking.close_reason(str(exc)))
        except WebSocketDisconnect:
            return

    async def _run_session(self, websocket: WebSocket, session_id: str, options: tracking.TrackingOptions,
                           model_id: str) -> None:
        idle_s, limit = self.config.track_session_idle_s, self.config.max_body_bytes

        async def detect(data: bytes, params: tracking.TrackDetectParams) -> tracking.DetectedFrame:
            return await self._detect_frame(model_id, data, params)

        session = tracking.TrackingSession(options, detect, self._decode_frame)
        await websocket.send_text(tracking.hello(session_id, options, idle_s).decode())
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle_s)
            except asyncio.TimeoutError:
                await websocket.close(tracking.CLOSE_EXPIRED, f"session expired: no frame for {idle_s:g} s "
                                                              "(track_session_idle_s)")
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                answer = {"frame": session.frames, "status": 415,
                          "error": "send each frame as a binary message holding the encoded image"}
            elif len(data) > limit:
                await websocket.close(tracking.CLOSE_TOO_BIG, f"a frame of {len(data)} bytes is above the limit of "
                                                              f"{limit} bytes (max_body_bytes)")
                return
            else:
                answer = await session.frame(data)
            await websocket.send_text(orjson.dumps(answer).decode())

    async def _detect_frame(self, model_id: str, data: bytes,
                            params: tracking.TrackDetectParams) -> tracking.DetectedFrame:
        """One frame through the same checks and Detector call as ``/v1/detect``."""
        try:
            (image,) = self._checked([data])
            prediction = await self._predict(model_id, image, DetectParams(**params.model_dump()))
        except ApiError as exc:
            raise tracking.FrameError(exc.status, exc.message) from None
        if prediction.task != "detect":
            raise tracking.FrameError(400, f"model {prediction.model} is a {prediction.task} model; tracking needs "
                                           "a detection model")
        names = {int(row[5]): name for row, name in zip(prediction.detections, prediction.class_names)}
        return tracking.DetectedFrame(prediction.detections, names, prediction.width, prediction.height,
                                      prediction.timing)

    async def _decode_frame(self, data: bytes) -> np.ndarray:
        try:
            return await asyncio.to_thread(self._decode, data)
        except ApiError as exc:
            raise tracking.FrameError(exc.status, exc.message) from None

    # -- KServe v2 ----------------------------------------------------------------------------------------------------
    @api.get("/v2/health/live", responses={200: {"model": schemas.LiveBody, "description": "live"}})
    async def live(self) -> JSONResponse:
        return JSONResponse({"live": True})

    @api.get("/v2/health/ready", **schemas.READY_ROUTE)
    async def ready(self) -> JSONResponse:
        try:
            await asyncio.wait_for(self.ping(), 10)
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse({"ready": False, "error": "the model deployment is not answering"}, status_code=503)
        return JSONResponse({"ready": True})

    @api.get("/v2", responses={200: {"model": schemas.ServerMetadataBody, "description": "the server"}})
    async def server_metadata(self) -> JSONResponse:
        return JSONResponse({"name": "yolov12-platform", "version": "0.1.0", "extensions": ["binary_tensor_data"]})

    async def _model(self, name: str, version: str | None, request: Request) -> tuple[str, dict[str, Any]]:
        """(multiplexed model id, metadata) for a v2 model name; 404 when unknown."""
        self._authorise(request)
        default = await self._call("", "metadata")
        others = [model for model in default["models"] if model != "default"]
        model_id = "" if name in (default["name"], "default") else name if name in others else None
        if model_id is None:
            raise ApiError(404, f"unknown model '{name}'; this server has: {', '.join([default['name'], *others])}")
        metadata = default if not model_id else await self._call(model_id, "metadata", model_id)
        if version is not None and version != metadata["version"]:
            raise ApiError(404, f"model '{name}' has no version '{version}' loaded; serving {metadata['version']}")
        return model_id, metadata

    @api.get("/v2/models/{name}", **schemas.model_route(schemas.ModelMetadataBody))
    @api.get("/v2/models/{name}/versions/{version}", **schemas.model_route(schemas.ModelMetadataBody))
    async def model_metadata(self, name: str, request: Request, version: str | None = None) -> JSONResponse:
        _, metadata = await self._model(name, version, request)
        outputs = ([{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(metadata["names"])]}]
                   if metadata["task"] == "classify" else
                   [{"name": "detections", "datatype": "FP32", "shape": [-1, -1, 6]},
                    {"name": "num_detections", "datatype": "INT32", "shape": [-1]}])
        return JSONResponse({
            "name": name, "versions": [metadata["version"]], "platform": f"yolov12_{metadata['backend']}",
            "inputs": [{"name": "images", "datatype": "BYTES", "shape": [-1]},
                       {"name": "images", "datatype": "UINT8", "shape": [-1, -1, -1, 3]}],
            "outputs": outputs,
            "parameters": {"model_name": metadata["name"],
                           **{key: metadata[key] for key in ("task", "backend", "device", "imgsz", "source", "names")},
                           "engine": metadata.get("engine")},
        })

    @api.get("/v2/models/{name}/ready", **schemas.model_route(schemas.ModelReadyBody))
    @api.get("/v2/models/{name}/versions/{version}/ready", **schemas.model_route(schemas.ModelReadyBody))
    async def model_ready(self, name: str, request: Request, version: str | None = None) -> JSONResponse:
        await self._model(name, version, request)
        return JSONResponse({"name": name, "ready": True})

    @api.post("/v2/models/{name}/infer", **schemas.INFER_ROUTE)
    @api.post("/v2/models/{name}/versions/{version}/infer", **schemas.INFER_ROUTE)
    async def infer(self, name: str, request: Request, version: str | None = None) -> Response:
        model_id, metadata = await self._model(name, version, request)
        body = await read_body(request, self.config.max_body_bytes)
        try:
            parsed = kserve.parse_infer_request(body, request.headers.get(kserve.HEADER_LENGTH))
        except kserve.ProtocolError as exc:
            raise ApiError(exc.status, str(exc)) from None
        images = self._checked(self._v2_images(parsed))
        params = self._params({k: v for k, v in parsed.parameters.items() if k in DetectParams.model_fields})
        predictions = await asyncio.gather(*(self._predict(model_id, image, params) for image in images))
        outputs = self._v2_outputs(metadata["task"], predictions)
        wanted = parsed.outputs or list(outputs)
        unknown = [output for output in wanted if output not in outputs]
        if unknown:
            raise ApiError(400, f"unknown output(s) {unknown[:4]}; this model has {list(outputs)}")
        binary = parsed.binary_outputs | (set(wanted) if parsed.binary_default else set())
        first = predictions[0]
        content, headers = kserve.encode_infer_response(name, first.version, parsed.id,
                                                        {key: outputs[key] for key in wanted}, binary)
        return Response(content, headers=headers)

    def _v2_images(self, parsed: kserve.InferRequest) -> list[np.ndarray | bytes]:
        """Encoded images (decoded by the Detector) or RGB pixels turned into BGR."""
        if len(parsed.inputs) != 1:
            raise ApiError(400, f"send one input tensor ('images'), got {len(parsed.inputs)}: "
                                f"{list(parsed.inputs)[:4]}")
        (name, tensor), = parsed.inputs.items()
        if tensor.dtype == object:
            if tensor.ndim != 1 or not 1 <= tensor.shape[0] <= 64:
                raise ApiError(400, f"input '{name}': BYTES images must have shape [B] with 1 <= B <= 64, "
                                    f"got {list(tensor.shape)}")
            return [self._bytes(element, name, binary=name in parsed.binary_inputs) for element in tensor]
        if tensor.dtype != np.uint8:
            raise ApiError(400, f"input '{name}': pixels must be UINT8 [B, H, W, 3] RGB (or encoded images as BYTES), "
                                f"got {kserve.datatype_of(tensor)}")
        batch = tensor[None] if tensor.ndim == 3 else tensor
        if batch.ndim != 4 or batch.shape[-1] != 3 or 0 in batch.shape or batch.shape[0] > 64:
            raise ApiError(400, f"input '{name}': UINT8 pixels must have shape [B, H, W, 3] (B <= 64) or "
                                f"[H, W, 3], got {list(tensor.shape)}")
        if batch.shape[1] * batch.shape[2] > self.config.max_image_pixels:
            raise ApiError(413, f"input '{name}': images above {self.config.max_image_pixels} pixels")
        return [np.ascontiguousarray(image[..., ::-1]) for image in batch]

    @staticmethod
    def _bytes(element: bytes, name: str, binary: bool) -> bytes:
        if binary:
            return element
        try:
            return base64.b64decode(element, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, f"input '{name}': BYTES images in JSON must be base64 text") from None

    @staticmethod
    def _v2_outputs(task: str, predictions: list[Prediction]) -> dict[str, np.ndarray]:
        if task == "classify":
            return {"probabilities": np.stack([p.probs for p in predictions]).astype(np.float32)}
        counts = np.array([len(p.detections) for p in predictions], dtype=np.int32)
        detections = np.zeros((len(predictions), int(counts.max(initial=0)), 6), dtype=np.float32)
        for row, prediction in zip(detections, predictions):
            row[:len(prediction.detections)] = prediction.detections
        return {"detections": detections, "num_detections": counts}

