"""Hostile HTTP clients against the serving code in this process (no Ray): malformed KServe v2 requests, bodies
that decode to far more memory than they take, odd headers and API keys. Every one is a 4xx with one line that
names what is wrong; none reaches the model."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import asgi_client, in_process_ingress, png_claiming

from serve.images import ImageError, check_image
from serve.kserve import HEADER_LENGTH, ProtocolError, parse_infer_request

MODEL = "yolov12n-random"
INFER = f"/v2/models/{MODEL}/infer"


def one_input(**spec: Any) -> bytes:
    """A JSON infer request with one input: ``images`` UINT8 [1] = [1], fields overridden by ``spec``."""
    return json.dumps({"inputs": [{"name": "images", "shape": [1], "datatype": "UINT8", "data": [1], **spec}]}).encode()


def binary_request(elements: list[bytes], name: str = "images") -> tuple[bytes, str]:
    """A binary-extension request carrying ``elements`` as one BYTES tensor: (body, header length)."""
    raw = b"".join(struct.pack("<I", len(element)) + element for element in elements)
    header = json.dumps({"inputs": [{"name": name, "shape": [len(elements)], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return header + raw, str(len(header))


def nested(depth: int) -> bytes:
    return b'{"inputs": [{"name": "deep", "shape": [1], "datatype": "FP32", "data": ' + b"[" * depth + b"1" + \
        b"]" * depth + b"}]}"


# (id, body, Inference-Header-Content-Length, a fragment the one-line error must contain)
HOSTILE: list[tuple[str, bytes, str | None, str]] = [
    ("zero then 2**70", one_input(shape=[0, 2**70, 3], data=[]), None, "input 'images'"),
    ("a 401-digit dimension", one_input(shape=[10**400]), None, "input 'images'"),
    ("a dimension of 2**70 in binary", json.dumps({"inputs": [{"name": "x", "shape": [0, 2**70], "datatype": "UINT8",
                                                              "parameters": {"binary_data_size": 0}}]}).encode(),
     "json", "input 'x'"),
    ("BYTES zero then 2**70", one_input(datatype="BYTES", shape=[0, 2**70], data=[]), None, "input 'images'"),
    ("70 dimensions", one_input(shape=[1] * 70), None, "dimensions"),
    ("100k open brackets", b"[" * 100_000, None, "nested"),
    ("data nested 100k deep", nested(100_000), None, "nested"),
    ("data nested 500 deep", nested(500), None, "input 'deep'"),
    ("shape nested 900 deep", b'{"inputs": [{"name": "images", "datatype": "UINT8", "data": [1], "shape": '
     + b"[" * 900 + b"]" * 900 + b"}]}", None, "input 'images': shape"),
    ("a negative dimension", one_input(shape=[-1]), None, "non-negative"),
    ("fewer values than the shape", one_input(shape=[2]), None, "do not fill"),
    ("more elements than the body can hold", one_input(shape=[2**27]), None, "more than"),
    ("datatype a list", one_input(datatype=["UINT8"]), None, "unknown datatype"),
    ("datatype an object", one_input(datatype={"x": 1}), None, "unknown datatype"),
    ("datatype lower case", one_input(datatype="uint8"), None, "unknown datatype"),
    ("input parameters a list", one_input(parameters=[1]), None, "'parameters' of input 'images'"),
    ("binary_data_size true", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8",
                                                      "parameters": {"binary_data_size": True}}]}).encode() + b"\x01",
     "json", "binary_data_size"),
    ("outputs a number", json.dumps({"inputs": json.loads(one_input())["inputs"], "outputs": 5}).encode(), None,
     "'outputs'"),
    ("output parameters a list", json.dumps({"inputs": json.loads(one_input())["inputs"],
                                             "outputs": [{"name": "detections", "parameters": [1]}]}).encode(), None,
     "output 'detections'"),
    ("an input twice", json.dumps({"inputs": json.loads(one_input())["inputs"] * 2}).encode(), None,
     "input 'images' appears twice"),
    ("a 5000-digit header length", one_input(), "9" * 5000, HEADER_LENGTH),
    ("a superscript header length", one_input(), "\u00b2", HEADER_LENGTH),
    ("a negative header length", one_input(), "-5", HEADER_LENGTH),
    ("INT8 out of range", one_input(datatype="INT8", data=[10**400]), None, "INT8 numbers"),
]


def header_for(body: bytes, header: str | None) -> str | None:
    return str(body.index(b"}]}") + 3) if header == "json" else header


def assert_one_line_4xx(status: int, message: str, fragment: str) -> None:
    assert status in (400, 413), (status, message)
    assert "\n" not in message and len(message) < 400, message
    assert fragment in message, message


@pytest.mark.parametrize(("body", "header", "fragment"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_infer_requests_are_protocol_errors(body: bytes, header: str | None, fragment: str) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_infer_request(body, header_for(body, header))
    assert_one_line_4xx(error.value.status, str(error.value), fragment)


def test_shapes_are_checked_against_the_body_before_anything_is_allocated() -> None:
    # 2**28 one-byte elements claimed by a body of a few dozen bytes: refused by arithmetic, not by numpy
    header = json.dumps({"inputs": [{"name": "x", "shape": [2**14, 2**14], "datatype": "UINT8",
                                     "parameters": {"binary_data_size": 4}}]}).encode()
    with pytest.raises(ProtocolError, match="input 'x'"):
        parse_infer_request(header + b"\x00" * 4, str(len(header)))
    header = json.dumps({"inputs": [{"name": "b", "shape": [2**20], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": 8}}]}).encode()
    with pytest.raises(ProtocolError, match="input 'b'.*more than"):
        parse_infer_request(header + b"\x00" * 8, str(len(header)))


# -- through the HTTP app ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return in_process_ingress(tmp_path_factory.mktemp("hostile-cache"))


@pytest.fixture(scope="module")
def client(ingress: Any) -> Iterator[Any]:
    with asgi_client(ingress) as test_client:
        yield test_client


@pytest.fixture
def detector_calls(ingress: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every request that reaches the model (none must, for a refused request)."""
    calls: list[Any] = []
    predict = ingress.local.predict

    async def recorded(request: Any, model_id: str | None = None) -> Any:
        calls.append(request)
        return await predict(request, model_id)

    monkeypatch.setattr(ingress.local, "predict", recorded)
    return calls


@pytest.mark.parametrize(("body", "header", "fragment"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_infer_requests_get_4xx_json_from_the_app(client: Any, detector_calls: list[Any], body: bytes,
                                                          header: str | None, fragment: str) -> None:
    header = header_for(body, header)
    headers = {} if header is None else {HEADER_LENGTH: header.encode("latin-1")}
    response = client.post(INFER, content=body, headers=headers)
    assert_one_line_4xx(response.status_code, response.json()["error"], fragment)
    assert detector_calls == []


@pytest.mark.parametrize("declared", [b"\xb2", b"9" * 5000, b"-1", b"1e3", b" 12"])
def test_a_malformed_content_length_is_400(declared: bytes) -> None:
    from starlette.requests import Request

    from serve.http_api import ApiError, read_body

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"abc", "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/v1/detect", "headers": [(b"content-length",
                                                                                          declared)]}, receive)
    with pytest.raises(ApiError) as error:
        asyncio.run(read_body(request, 1024))
    assert error.value.status == 400 and "Content-Length" in error.value.message and "\n" not in error.value.message


# -- decode budgets ---------------------------------------------------------------------------------------------------
def test_a_16_bit_png_is_limited_by_the_bytes_its_pixels_decode_to() -> None:
    limit = 40_000_000
    assert check_image(png_claiming(6000, 6000), limit).decoded_bytes == 6000 * 6000 * 3
    deep = png_claiming(6000, 6000, bit_depth=16, colour_type=6)  # RGBA, 16 bits a sample: 8 bytes a pixel
    with pytest.raises(ImageError) as error:
        check_image(deep, limit)
    message = str(error.value)
    assert error.value.status == 413 and "16 bits" in message and "max_image_pixels" in message, message
    gray = check_image(png_claiming(2000, 2000, bit_depth=16, colour_type=0), limit)
    assert (gray.channels, gray.decoded_bytes) == (1, 2000 * 2000 * 3 * 2)  # decoded as colour
    assert check_image(png_claiming(100, 100, bit_depth=4, colour_type=3), limit).decoded_bytes == 100 * 100 * 3


def test_an_8_bit_image_at_the_pixel_limit_still_passes() -> None:
    limit = 40_000_000
    header = check_image(png_claiming(6000, 6000, colour_type=6), limit)  # 36 MP RGBA
    assert (header.width, header.channels, header.bits) == (6000, 4, 8)


def test_many_images_each_within_the_pixel_limit_exceed_the_request_budget(client: Any,
                                                                           detector_calls: list[Any]) -> None:
    from serve.config import IngressSettings

    images = [png_claiming(6000, 6000)] * 64  # 36 MP each, under the 40 MP limit: 6.9 GB of pixels together
    body, header = binary_request(images)
    response = client.post(INFER, content=body, headers={HEADER_LENGTH: header})
    message = response.json()["error"]
    assert response.status_code == 413, message
    limit = IngressSettings().max_request_decoded_bytes
    assert "max_request_decoded_bytes" in message and str(limit) in message, message
    assert str(64 * 6000 * 6000 * 3) in message and "\n" not in message
    assert detector_calls == []  # refused before any image was sent on (or decoded)


def test_json_base64_images_count_against_the_budget_too(tmp_path: Path) -> None:
    small = in_process_ingress(tmp_path, max_request_decoded_bytes=10_000_000)
    image = base64.b64encode(png_claiming(1500, 1500)).decode()  # 6.75 MB of pixels each
    body = json.dumps({"inputs": [{"name": "images", "shape": [2], "datatype": "BYTES", "data": [image, image]}]})
    with asgi_client(small) as small_client:
        response = small_client.post(INFER, content=body)
        assert response.status_code == 413 and "13500000" in response.json()["error"], response.text
        single = small_client.post("/v1/detect", content=png_claiming(2000, 2000),
                                   headers={"content-type": "image/png"})
        assert single.status_code == 413 and "max_request_decoded_bytes" in single.json()["error"], single.text


def test_the_budget_admits_a_request_that_fits(client: Any, detector_calls: list[Any]) -> None:
    import cv2
    import numpy as np

    png = cv2.imencode(".png", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    body, header = binary_request([png] * 3)
    response = client.post(INFER, content=body, headers={HEADER_LENGTH: header})
    assert response.status_code == 200, response.text
    assert len(detector_calls) == 3


# -- API key ----------------------------------------------------------------------------------------------------------
KEY_ENV = "YOLOV12_TEST_SERVE_KEY"


@pytest.mark.parametrize("value", [None, ""])
def test_an_ingress_with_a_configured_but_unset_key_refuses_to_start(tmp_path: Path, monkeypatch, value) -> None:
    from serve.config import MissingApiKeyError

    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(MissingApiKeyError) as error:
        in_process_ingress(tmp_path, api_key_env=KEY_ENV)
    message = str(error.value)
    assert KEY_ENV in message and "api_key_env" in message and "\n" not in message


def test_build_app_refuses_a_configured_but_unset_key(monkeypatch) -> None:
    from serve.app import build_app
    from serve.config import MissingApiKeyError

    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(MissingApiKeyError, match=KEY_ENV):
        build_app({"model": "w.safetensors", "api_key_env": KEY_ENV})
    monkeypatch.setenv(KEY_ENV, "k")
    build_app({"model": "w.safetensors", "api_key_env": KEY_ENV})


def test_yolov12_serve_refuses_an_unset_key_before_ray_starts(capsys, monkeypatch) -> None:
    from support.ray_guard import forbid_ray_start

    from yolov12.cli.main import main

    monkeypatch.delenv(KEY_ENV, raising=False)
    attempts = forbid_ray_start(monkeypatch)
    assert main(["serve", "yolov12n.yaml", "random_weights=true", f"api_key_env={KEY_ENV}"]) == 2
    assert attempts == []
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolov12 serve: error: ") and "\n" not in err and KEY_ENV in err


def test_a_set_key_is_required_on_the_model_routes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "s3cret")
    keyed = in_process_ingress(tmp_path, api_key_env=KEY_ENV)
    monkeypatch.delenv(KEY_ENV)  # read once, when the replica starts
    with asgi_client(keyed) as keyed_client:
        for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": "s3cret "}):
            assert keyed_client.post("/v1/detect", content=b"x", headers=headers).status_code == 401
            assert keyed_client.get(f"/v2/models/{MODEL}", headers=headers).status_code == 401
            assert keyed_client.post(INFER, content=one_input(), headers=headers).status_code == 401
        assert keyed_client.post("/v1/detect", content=b"x", headers={"x-api-key": "s3cret"}).status_code == 415
        assert keyed_client.get(f"/v2/models/{MODEL}", headers={"x-api-key": "s3cret"}).status_code == 200
        assert keyed_client.get("/v2/health/ready").status_code == 200  # probes need no key


# -- request options --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["/v1/detect", INFER])
def test_an_input_size_above_the_limit_is_refused_before_the_model(client: Any, ingress: Any,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   route: str) -> None:
    """Attention memory grows with the fourth power of the input size: at imgsz=4096 one forward of yolov12n on the
    torch backend asks for 8 GB, so a request may not choose it (the model is never called here)."""
    reached: list[Any] = []

    async def model_must_not_run(request: Any) -> Any:
        reached.append(request)
        raise AssertionError("the model was asked to run")

    monkeypatch.setattr(ingress.local, "predict", model_must_not_run)
    png = png_claiming(64, 64)
    if route == INFER:
        body, header = binary_request([png])
        head_size = int(header)
        head = json.loads(body[:head_size])
        head["parameters"] = {"imgsz": 4096}
        new_head = json.dumps(head).encode()
        response = client.post(route, content=new_head + body[head_size:], headers={HEADER_LENGTH: str(len(new_head))})
    else:
        response = client.post(route, content=png, params={"imgsz": "4096"}, headers={"content-type": "image/png"})
    message = response.json()["error"]
    assert response.status_code == 422 and "max_request_imgsz" in message and "4096" in message, message
    assert reached == []


def test_max_request_imgsz_must_cover_the_default_size() -> None:
    from serve.config import ServeAppConfig
    from yolov12.config.base import ConfigError

    assert ServeAppConfig(model="m").max_request_imgsz >= ServeAppConfig(model="m").imgsz
    with pytest.raises(ConfigError, match="max_request_imgsz=640 is below imgsz=1280"):
        ServeAppConfig.from_overrides({"model": "m", "imgsz": 1280, "max_request_imgsz": 640})
