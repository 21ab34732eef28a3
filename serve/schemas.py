"""What the HTTP API takes and answers, for its OpenAPI document (``/openapi.json``, ``/docs``).

The routes read their bodies themselves (raw images, multipart forms, KServe JSON with binary tensors after it), so
FastAPI cannot infer these: the request bodies and parameters are declared here as OpenAPI (``openapi_extra``) and
the answers as models (``responses``). The schema tests (tests/serve/test_openapi_schema.py) generate requests from
this document and check every answer against it, so it has to say what the code does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

DATATYPE_NAMES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
                  "FP64", "BYTES"]
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")


class ErrorBody(BaseModel):
    """Every refused request: one line saying what is wrong and how to fix it."""

    error: str


class EngineSummary(BaseModel):
    """The engine that answered: artifact format, precision, sha256, device (and GPU), library versions."""

    format: str
    precision: str
    sha256: str
    device: str
    gpu: str | None = None
    builder: dict[str, str]


class ModelInfo(BaseModel):
    name: str
    version: str
    backend: str
    engine: EngineSummary | None = None


class ImageSize(BaseModel):
    width: int
    height: int


class Detection(BaseModel):
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in original pixels")
    score: float
    class_id: int
    class_name: str


class ClassScore(BaseModel):
    class_id: int
    class_name: str
    score: float


class AnnotatedImage(BaseModel):
    format: Literal["jpeg"]
    base64: str


class PredictionBody(BaseModel):
    """``/v1/detect`` (``detections``) and ``/v1/classify`` (``classes``, the top 5)."""

    model: ModelInfo
    image: ImageSize
    imgsz: int
    timing_ms: dict[str, float]
    detections: list[Detection] | None = None
    classes: list[ClassScore] | None = None
    annotated_image: AnnotatedImage | None = None


class LiveBody(BaseModel):
    live: bool


class ReadyBody(BaseModel):
    ready: bool
    error: str | None = None


class ServerMetadataBody(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataBody(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any]


class ModelReadyBody(BaseModel):
    name: str
    ready: bool


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferResponseBody(BaseModel):
    """The JSON part of an infer response (binary outputs follow it, sized by ``parameters.binary_data_size``)."""

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[OutputTensor]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


REFUSED = _error("a bad request (400, 401 missing key, 404 unknown model, 413 too large, 415 not an image, "
                 "422 bad option): one line saying what is wrong")
UNAVAILABLE = _error("the model replica is unavailable or did not answer in time; retry")


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


API_KEY = _header("x-api-key", {"type": "string"}, "the API key, when the server is configured with one")
MODEL_ID = _header("serve_multiplexed_model_id", {"type": "string"}, "which served model (default: the default one)")
OPTIONS = {
    "conf": {"type": "number", "minimum": 0, "maximum": 1},
    "iou": {"type": "number", "minimum": 0, "maximum": 1},
    "max_det": {"type": "integer", "minimum": 1, "maximum": 10000},
    "imgsz": {"type": "integer", "minimum": 32, "maximum": 4096},
    "annotate": {"type": "boolean"},
}
BINARY = {"schema": {"type": "string", "format": "binary"}}

PREDICT_ROUTE: dict[str, Any] = {
    "responses": {200: {"model": PredictionBody, "description": "the prediction"}, "4XX": REFUSED,
                  503: UNAVAILABLE},
    "openapi_extra": {
        "parameters": [*(_query(name, schema, "request option (default: the server's)")
                         for name, schema in OPTIONS.items()), API_KEY, MODEL_ID],
        "requestBody": {
            "required": True,
            "description": "one image (JPEG, PNG, WebP, BMP) as the body, or a multipart form with the image in "
                           "'file' and the options as fields",
            "content": {
                **{media_type: BINARY for media_type in IMAGE_MEDIA_TYPES},
                "multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}, **OPTIONS},
                }},
            },
        },
    },
}

INFER_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {key: OPTIONS[key] for key in ("conf", "iou", "max_det",
                                                                                        "imgsz")}},
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 256},
                "shape": {"type": "array", "maxItems": 32, "items": {"type": "integer", "minimum": 0}},
                "datatype": {"type": "string", "enum": DATATYPE_NAMES},
                "data": {"type": "array", "description": "row-major values (BYTES: base64 text of encoded images)"},
                "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer",
                                                                                     "minimum": 0}}},
            },
        }},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 256},
                           "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}},
        }},
    },
}

INFER_ROUTE: dict[str, Any] = {
    "responses": {200: {"model": InferResponseBody, "description": "the outputs (JSON, or with the binary extension "
                                                                   "a JSON header then raw tensors)",
                        "content": {"application/octet-stream": BINARY}},
                  "4XX": REFUSED, 503: UNAVAILABLE},
    "openapi_extra": {
        "parameters": [API_KEY,
                       _header("Inference-Header-Content-Length", {"type": "integer", "minimum": 0},
                               "binary extension: the byte length of the JSON part at the start of the body")],
        "requestBody": {
            "required": True,
            "description": "inputs 'images': BYTES [B] encoded images or UINT8 [B, H, W, 3] / [H, W, 3] RGB pixels",
            "content": {"application/json": {"schema": INFER_REQUEST_SCHEMA},
                        "application/octet-stream": BINARY},
        },
    },
}



def model_route(answer: type[BaseModel]) -> dict[str, Any]:
    """``responses`` and ``openapi_extra`` of a ``/v2/models/{name}`` route that answers ``answer``."""
    return {"responses": {200: {"model": answer, "description": "the model"}, "4XX": REFUSED, 503: UNAVAILABLE},
            "openapi_extra": {"parameters": [API_KEY]}}


READY_ROUTE: dict[str, Any] = {
    "responses": {200: {"model": ReadyBody, "description": "ready"},
                  503: {"model": ReadyBody, "description": "the model deployment is not answering"}},
}
