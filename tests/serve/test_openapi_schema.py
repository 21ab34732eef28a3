"""Property-based tests of the HTTP API from its own OpenAPI document (schemathesis, in this process).

Requests are generated from ``/openapi.json`` (valid and invalid parameters, bodies of every declared media type)
and sent to the real Ingress holding a random-weights model (no Ray, see serve_support.in_process_ingress). Every
answer must be a non-5xx whose status, content type, headers and body the document declares. The ``ci`` hypothesis
profile (tests/conftest.py) derandomizes the examples.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_support import answered_by, in_process_ingress

from serve.http_api import api

MODEL = "yolov12n-random"
# Not `negative_data_rejection`: multipart fields are text on the wire, so "0" is a fine boolean `annotate` there,
# while the generator counts it as a schema violation.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

schemathesis.serializer.alias("image/bmp", "application/octet-stream")  # raw bytes, as the other image types
schema = schemathesis.openapi.from_asgi("/openapi.json", api)


@schema.hook("map_path_parameters")
def served_model(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    """Name the served model, so that requests reach the model routes' own checks (an unknown name is a plain 404)."""
    return {**path_parameters, "name": MODEL} if path_parameters and "name" in path_parameters else path_parameters


@pytest.fixture(scope="module", autouse=True)
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ingress = in_process_ingress(tmp_path_factory.mktemp("schema-cache"), max_request_imgsz=128)  # fast forwards
    with answered_by(ingress):
        yield ingress


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
def test_every_answer_is_declared_and_none_is_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def jpeg() -> bytes:
    import cv2
    import numpy as np

    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:50] = (40, 180, 220)
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.mark.parametrize(("path", "media_type", "status"), [
    ("/v1/detect", "image/jpeg", 200),
    ("/v1/classify", "image/jpeg", 400),  # a detect model: one line naming the right route
    ("/v2/models/{name}/infer", "application/json", 200),
])
def test_real_predictions_conform_to_the_document(path: str, media_type: str, status: int) -> None:
    if media_type == "application/json":
        body: Any = {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES",
                                 "data": [base64.b64encode(jpeg()).decode()]}]}
    else:
        body = jpeg()
    case = schema[path]["POST"].Case(body=body, media_type=media_type,
                                     path_parameters={"name": MODEL} if "{name}" in path else None)
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code == status, response.text
    if path.endswith("infer"):
        outputs = json.loads(response.content)["outputs"]
        assert {output["name"] for output in outputs} == {"detections", "num_detections"}
