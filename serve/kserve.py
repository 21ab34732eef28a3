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
import math
import reprlib
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
MAX_ELEMENTS = 1 << 28  # elements of one tensor (a 413 above it)
MAX_DIMS = 32  # dimensions of one tensor (numpy's own limit is 64)
MAX_HEADER_DIGITS = 18  # Inference-Header-Content-Length: a byte count below 10**18
MAX_NAME = 256  # characters of a tensor name


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


def _quoting() -> reprlib.Repr:
    quoting = reprlib.Repr()
    quoting.maxlevel, quoting.maxlist, quoting.maxdict = 3, 8, 4
    quoting.maxstring = quoting.maxlong = quoting.maxother = 40
    return quoting


_QUOTE = _quoting()


def brief(value: Any, limit: int = 60) -> str:
    """What a client sent, for an error message: one short line however long, deep or large the value is (a
    100-digit dimension, a list nested 900 deep, a header of 5000 characters)."""
    text = _QUOTE.repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def _shape(value: Any, name: str) -> tuple[int, ...]:
    """The shape of input ``name``: at most :data:`MAX_DIMS` non-negative integers holding at most
    :data:`MAX_ELEMENTS` elements, checked in exact integer arithmetic (a dimension may be any JSON integer)."""
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in value):
        raise ProtocolError(f"input '{name}': shape must be a list of non-negative integers, got {brief(value)}")
    if len(value) > MAX_DIMS:
        raise ProtocolError(f"input '{name}': shape has {len(value)} dimensions; at most {MAX_DIMS} are allowed")
    too_large = [d for d in value if d > MAX_ELEMENTS]
    if too_large:
        raise ProtocolError(f"input '{name}': dimension {brief(too_large[0])} is above the limit of {MAX_ELEMENTS} "
                            "elements", status=413)
    count = math.prod(value)
    if count > MAX_ELEMENTS:
        raise ProtocolError(f"input '{name}': shape {brief(value)} has {count} elements, above the limit of "
                            f"{MAX_ELEMENTS}", status=413)
    return tuple(value)


def _check_capacity(name: str, shape: tuple[int, ...], available: int, bytes_per_element: int) -> int:
    """The element count of ``shape``, refused when ``available`` bytes cannot hold that many elements (so no
    tensor is ever allocated from the shape alone)."""
    count = math.prod(shape)
    if count * bytes_per_element > available:
        raise ProtocolError(f"input '{name}': shape {list(shape)} has {count} elements, more than its {available} "
                            f"bytes of data can hold")
    return count


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


def _json_tensor(spec: dict[str, Any], name: str, datatype: str, shape: tuple[int, ...], available: int) -> np.ndarray:
    data = spec.get("data")
    if data is None:
        raise ProtocolError(f"input '{name}' has neither 'data' nor parameters.binary_data_size")
    count = _check_capacity(name, shape, available, 1)  # every JSON value takes at least one byte
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).ravel()
            if not all(isinstance(x, str) for x in flat):
                raise ProtocolError(f"input '{name}': BYTES data in JSON must be strings")
            array = np.array([x.encode("utf-8") for x in flat], dtype=object)
        else:
            array = np.asarray(data, dtype=DATATYPES[datatype]).ravel()
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"input '{name}': data is not a (nested) list of {datatype} "
                            f"{'strings' if datatype == 'BYTES' else 'numbers'}") from None
    if array.size != count:
        raise ProtocolError(f"input '{name}': {array.size} values do not fill shape {list(shape)}")
    return array.reshape(shape)


def _binary_tensor(raw: bytes, name: str, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    if datatype == "BYTES":
        count = _check_capacity(name, shape, len(raw), 4)  # each element has a 4-byte length
        elements = decode_bytes_elements(raw, name)
        if len(elements) != count:
            raise ProtocolError(f"input '{name}': {len(elements)} BYTES elements do not fill shape {list(shape)}")
        array = np.empty(len(elements), dtype=object)
        array[:] = elements
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ProtocolError(f"input '{name}': {len(raw)} bytes of binary data, expected {expected} for "
                            f"{datatype} {list(shape)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _header_size(header_length: str | int, body_size: int) -> int:
    """The JSON part's length from ``Inference-Header-Content-Length``: a decimal byte count within the body."""
    text = str(header_length).strip() if isinstance(header_length, (str, int)) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_HEADER_DIGITS):
        raise ProtocolError(f"{HEADER_LENGTH} must be the byte count of the JSON part, got {brief(header_length)}")
    size = int(text)
    if not 0 < size <= body_size:
        raise ProtocolError(f"{HEADER_LENGTH}={size} does not fit a body of {body_size} bytes")
    return size


def _load_header(header_bytes: bytes | memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(header_bytes))
    except RecursionError:
        raise ProtocolError("the request JSON is nested too deeply (an infer request is a few levels deep)") from None
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the request is not valid JSON (binary tensors need the "
                            f"{HEADER_LENGTH} header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list) or not header["inputs"]:
        raise ProtocolError("the request needs a non-empty 'inputs' list")
    if not isinstance(header.get("parameters") or {}, dict):
        raise ProtocolError("'parameters' must be an object")
    if header.get("id") is not None and not isinstance(header["id"], str):
        raise ProtocolError(f"'id' must be a string, got {brief(header['id'])}")
    return header


def _is_name(value: Any) -> bool:
    """A tensor name: printable text of at most :data:`MAX_NAME` characters (errors quote it on one line)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable()


def _object(value: Any, what: str) -> dict[str, Any]:
    """``value`` (None: empty) when it is a JSON object; ``what`` names it in the error."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be an object, got {brief(value)}")
    return value


def _parse_inputs(specs: list[Any], binary: memoryview, json_size: int) -> tuple[dict[str, np.ndarray], set[str]]:
    """The input tensors: JSON ``data`` or slices of ``binary`` in order (``parameters.binary_data_size``)."""
    inputs: dict[str, np.ndarray] = {}
    offset, binary_inputs = 0, set()
    for spec in specs:
        if not isinstance(spec, dict) or not _is_name(spec.get("name")):
            raise ProtocolError(f"every input needs a 'name' (printable text of 1 to {MAX_NAME} characters)")
        name, datatype = spec["name"], spec.get("datatype")
        if name in inputs:
            raise ProtocolError(f"input '{name}' appears twice; send each input once")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise ProtocolError(f"input '{name}': unknown datatype {brief(datatype)}; use one of "
                                f"{', '.join(DATATYPES)}")
        shape = _shape(spec.get("shape"), name)
        size = _object(spec.get("parameters"), f"'parameters' of input '{name}'").get("binary_data_size")
        if size is None:
            inputs[name] = _json_tensor(spec, name, datatype, shape, json_size)
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolError(f"input '{name}': binary_data_size must be a byte count, got {brief(size)}")
        if offset + size > len(binary):
            raise ProtocolError(f"input '{name}': binary_data_size={size} runs past the {len(binary)} bytes of "
                                "binary data")
        inputs[name] = _binary_tensor(bytes(binary[offset:offset + size]), name, datatype, shape)
        binary_inputs.add(name)
        offset += size
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    return inputs, binary_inputs


def _parse_outputs(specs: Any) -> tuple[list[str], set[str]]:
    """Requested output names and those asked for as binary data."""
    if specs is None:
        return [], set()
    if not isinstance(specs, list):
        raise ProtocolError(f"'outputs' must be a list of {{\"name\": ...}} objects, got {brief(specs)}")
    outputs, binary_outputs = [], set()
    for spec in specs:
        if not isinstance(spec, dict) or not _is_name(spec.get("name")):
            raise ProtocolError(f"every requested output needs a 'name' (printable text of 1 to {MAX_NAME} "
                                "characters)")
        outputs.append(spec["name"])
        if _object(spec.get("parameters"), f"'parameters' of output '{spec['name']}'").get("binary_data"):
            binary_outputs.add(spec["name"])
    return outputs, binary_outputs


def parse_infer_request(body: bytes, header_length: str | int | None = None) -> InferRequest:
    """Decode an infer request body (JSON, or JSON + binary tensors when ``header_length`` is given).

    Every malformed request raises :class:`ProtocolError` (one line naming the input and what is wrong); a tensor
    is allocated only after its shape, datatype and the bytes that carry it agree.
    """
    if header_length is not None:
        size = _header_size(header_length, len(body))
        header_bytes, binary = memoryview(body)[:size], memoryview(body)[size:]
    else:
        header_bytes, binary = memoryview(body), memoryview(b"")
    header = _load_header(header_bytes)
    inputs, binary_inputs = _parse_inputs(header["inputs"], binary, len(header_bytes))
    outputs, binary_outputs = _parse_outputs(header.get("outputs"))
    parameters = header.get("parameters") or {}
    return InferRequest(header.get("id"), parameters, inputs, outputs, binary_outputs,
                        bool(parameters.get("binary_data_output")), binary_inputs)


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
