"""KServe v2 helpers against the real client library's own encoder/decoder (tritonclient), no server."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.http._utils import _get_inference_request
from tritonclient.utils import deserialize_bytes_tensor

from serve.kserve import HEADER_LENGTH, ProtocolError, encode_infer_response, parse_infer_request


def client_body(inputs: list[httpclient.InferInput], outputs=None, parameters=None) -> tuple[bytes, str | None]:
    """The exact body (and header length) tritonclient would POST."""
    body, json_size = _get_inference_request(inputs=inputs, request_id="r1", outputs=outputs, sequence_id=0,
                                             sequence_start=False, sequence_end=False, priority=0, timeout=None,
                                             custom_parameters=parameters)
    return body, None if json_size is None else str(json_size)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", ["UINT8", "FP32", "INT64"])
def test_numeric_tensors_round_trip_from_tritonclient(binary: bool, dtype: str) -> None:
    from tritonclient.utils import triton_to_np_dtype

    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(triton_to_np_dtype(dtype))
    tensor = httpclient.InferInput("x", list(array.shape), dtype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    body, header = client_body([tensor], parameters={"conf": 0.4})
    parsed = parse_infer_request(body, header)
    assert parsed.id == "r1" and parsed.parameters["conf"] == 0.4
    np.testing.assert_array_equal(parsed.inputs["x"], array)
    assert parsed.inputs["x"].dtype == array.dtype and (("x" in parsed.binary_inputs) == binary)


def test_bytes_tensor_round_trips_binary() -> None:
    images = [b"\xff\xd8\xffabc", b"", b"\x00" * 10]
    tensor = httpclient.InferInput("images", [3], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=object), binary_data=True)
    body, header = client_body([tensor])
    assert header is not None
    assert list(parse_infer_request(body, header).inputs["images"]) == images


def test_response_is_read_back_by_tritonclient_binary_and_json() -> None:
    detections = np.random.default_rng(0).random((2, 3, 6)).astype(np.float32)
    counts = np.array([3, 1], dtype=np.int32)
    for binary in ({"detections", "num_detections"}, {"detections"}, set()):
        body, headers = encode_infer_response("m", "7", "r1", {"detections": detections, "num_detections": counts},
                                              binary)
        result = httpclient.InferResult.from_response_body(body, header_length=(
            int(headers[HEADER_LENGTH]) if HEADER_LENGTH in headers else None))
        np.testing.assert_array_equal(result.as_numpy("detections"), detections)
        np.testing.assert_array_equal(result.as_numpy("num_detections"), counts)
        assert result.get_response()["model_version"] == "7" and result.get_response()["id"] == "r1"


def test_bytes_output_encoding_matches_the_client_decoder() -> None:
    body, headers = encode_infer_response("m", "1", None, {"s": np.array([b"ab", b"cde"], dtype=object)}, {"s"})
    offset = int(headers[HEADER_LENGTH])
    assert list(deserialize_bytes_tensor(body[offset:])) == [b"ab", b"cde"]


@pytest.mark.parametrize(("body", "header", "fragment"), [
    (b"{nope", None, "not valid JSON"),
    (b'{"inputs": []}', None, "non-empty 'inputs'"),
    (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}', None, "do not fill"),
    (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}', None, "non-negative"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}', None, "unknown datatype"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]}', None, "FP32 numbers"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}', None, "neither 'data'"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]}\x00',
     "json-part", "runs past"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}', "abc", "must be the byte count"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}', "9999", "does not fit"),
])
def test_malformed_requests_raise_protocol_errors(body: bytes, header: str | None, fragment: str) -> None:
    if header == "json-part":
        header = str(body.rindex(b"}") + 1)
    with pytest.raises(ProtocolError, match=fragment) as error:
        parse_infer_request(body, header)
    assert 400 <= error.value.status < 500


def test_truncated_bytes_elements_and_unclaimed_binary_data_are_refused() -> None:
    head = json.dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 6}}]}).encode()
    with pytest.raises(ProtocolError, match="runs past the end"):
        parse_infer_request(head + b"\x09\x00\x00\x00ab", str(len(head)))
    with pytest.raises(ProtocolError, match="not claimed"):
        parse_infer_request(head + b"\x02\x00\x00\x00ab" + b"extra", str(len(head)))
    huge = b'{"inputs": [{"name": "x", "shape": [100000, 100000, 100], "datatype": "UINT8", "data": [1]}]}'
    with pytest.raises(ProtocolError) as error:
        parse_infer_request(huge)
    assert error.value.status == 413
