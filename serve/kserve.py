"""Open Inference Protocol (KServe v2) REST helpers: tensors in and out, JSON and the binary data extension.

No web framework here: :func:`parse_infer_request` turns a request body (plus the ``Inference-Header-Content-Length``
header when the binary extension is used) into numpy tensors, and :func:`encode_infer_response` builds the response
body and headers. Binary tensors follow Triton's extension: the JSON header comes first, then each tensor's raw
little-endian bytes in order, their sizes in ``parameters.binary_data_size``; BYTES elements are each prefixed by
a 4-byte little-endian length. In JSON, BYTES elements are strings; images sent that way are base64 text.

Example:
    >>> body, headers = encode_infer_response("m", "1", "req-1", {"x": np.ones(2, np.float32)}, binary={"x"})
    >>> headers["Inference-Header-Content-Length"] == str(body.index(b"}}]}") + 4)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype(np.int8), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_NAMES = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
MAX_ELEMENTS = 1 << 28


class ProtocolError(ValueError):
    """A malformed v2 request; ``status`` is the HTTP status to answer with (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InferRequest:
    """A decoded ``/v2/models/{name}/infer`` request."""

    id: str | None
    parameters: dict[str, Any]
    inputs: dict[str, np.ndarray]
    outputs: list[str] = field(default_factory=list)
    binary_outputs: set[str] = field(default_factory=set)
    binary_default: bool = False
    binary_inputs: set[str] = field(default_factory=set)


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype name of a numpy array (object arrays are BYTES)."""
    if array.dtype == object:
        return "BYTES"
    try:
        return _NAMES[array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype]
    except KeyError:
        raise ProtocolError(f"numpy dtype {array.dtype} has no v2 datatype") from None


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in value):
        raise ProtocolError(f"input '{name}': shape must be a list of non-negative integers, got {value!r}")
    shape = tuple(value)
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise ProtocolError(f"input '{name}': shape {list(shape)} is too large", status=413)
    return shape


def decode_bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """BYTES tensor data: each element a 4-byte little-endian length then its bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ProtocolError(f"input '{name}': truncated BYTES element length at byte {offset}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ProtocolError(f"input '{name}': BYTES element of {length} bytes runs past the end of the data")
        elements.append(raw[offset:offset + length])
        offset += length
    return elements


def encode_bytes_elements(elements: Iterable[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _json_tensor(spec: dict[str, Any], name: str, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    data = spec.get("data")
    if data is None:
        raise ProtocolError(f"input '{name}' has neither 'data' nor parameters.binary_data_size")
    flat = np.asarray(data, dtype=object).ravel() if datatype == "BYTES" else None
    if datatype == "BYTES":
        if not all(isinstance(x, str) for x in flat):
            raise ProtocolError(f"input '{name}': BYTES data in JSON must be strings")
        array = np.array([x.encode("utf-8") for x in flat], dtype=object)
    else:
        try:
            array = np.asarray(data, dtype=DATATYPES[datatype]).ravel()
        except (TypeError, ValueError, OverflowError):
            raise ProtocolError(f"input '{name}': data is not a (nested) list of {datatype} numbers") from None
    if array.size != int(np.prod(shape)):
        raise ProtocolError(f"input '{name}': {array.size} values do not fill shape {list(shape)}")
    return array.reshape(shape)


def _binary_tensor(raw: bytes, name: str, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    if datatype == "BYTES":
        elements = decode_bytes_elements(raw, name)
        if len(elements) != int(np.prod(shape)):
            raise ProtocolError(f"input '{name}': {len(elements)} BYTES elements do not fill shape {list(shape)}")
        array = np.empty(len(elements), dtype=object)
        array[:] = elements
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ProtocolError(f"input '{name}': {len(raw)} bytes of binary data, expected {expected} for "
                            f"{datatype} {list(shape)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def parse_infer_request(body: bytes, header_length: str | int | None = None) -> InferRequest:
    """Decode an infer request body (JSON, or JSON + binary tensors when ``header_length`` is given)."""
    if header_length is not None:
        try:
            size = int(header_length)
        except (TypeError, ValueError):
            raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 < size <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH}={size} does not fit a body of {len(body)} bytes")
        header_bytes, binary = body[:size], memoryview(body)[size:]
    else:
        header_bytes, binary = body, memoryview(b"")
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the request is not valid JSON (binary tensors need the "
                            f"{HEADER_LENGTH} header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list) or not header["inputs"]:
        raise ProtocolError("the request needs a non-empty 'inputs' list")
    parameters = header.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("'parameters' must be an object")
    inputs, offset, binary_inputs = {}, 0, set()
    for spec in header["inputs"]:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ProtocolError("every input needs a 'name'")
        name, datatype = spec["name"], spec.get("datatype")
        if datatype not in DATATYPES:
            raise ProtocolError(f"input '{name}': unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
        shape = _shape(spec.get("shape"), name)
        size = (spec.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ProtocolError(f"input '{name}': binary_data_size={size!r} runs past the {len(binary)} bytes "
                                    "of binary data")
            inputs[name] = _binary_tensor(bytes(binary[offset:offset + size]), name, datatype, shape)
            binary_inputs.add(name)
            offset += size
        else:
            inputs[name] = _json_tensor(spec, name, datatype, shape)
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    outputs, binary_outputs = [], set()
    for spec in header.get("outputs") or []:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ProtocolError("every requested output needs a 'name'")
        outputs.append(spec["name"])
        if (spec.get("parameters") or {}).get("binary_data"):
            binary_outputs.add(spec["name"])
    request_id = header.get("id")
    return InferRequest(str(request_id) if request_id is not None else None, parameters, inputs, outputs,
                        binary_outputs, bool(parameters.get("binary_data_output")), binary_inputs)


def encode_infer_response(model_name: str, model_version: str, request_id: str | None,
                          outputs: dict[str, np.ndarray], binary: Iterable[str] = ()) -> tuple[bytes, dict[str, str]]:
    """Response body and headers; tensors named in ``binary`` go as raw bytes after the JSON header."""
    binary = set(binary)
    specs, chunks = [], []
    for name, array in outputs.items():
        spec: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        if name in binary:
            raw = (encode_bytes_elements(array.ravel()) if array.dtype == object
                   else np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
            spec["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif array.dtype == object:
            spec["data"] = [e.decode("utf-8", "replace") if isinstance(e, bytes) else str(e) for e in array.ravel()]
        else:
            spec["data"] = array.ravel().tolist()
        specs.append(spec)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": specs}
    if request_id is not None:
        response["id"] = request_id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(chunks), {"Content-Type": "application/octet-stream",
                                       HEADER_LENGTH: str(len(header))}
