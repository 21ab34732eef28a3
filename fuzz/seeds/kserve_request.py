"""Seed inputs of the ``kserve_request`` fuzz target: valid JSON and binary-extension infer requests, and the hostile
ones the parser must refuse in one 4xx line (huge or negative dimensions, deep nesting, mismatched data, wrong
datatypes, odd header lengths). Each input is a header-mode byte then the body (see
``fuzz.targets.kserve_request.split_input``).

    python -m fuzz.seeds.kserve_request            # rewrites fuzz/corpus/kserve_request/
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

from fuzz.seeds import command_line, write_corpus

NO_HEADER, NUMBER, JSON_END, RAW_HEADER = b"\x00", b"\x01", b"\x02", b"\x03"
# the smallest valid PNG (1x1 gray): BYTES images carry encoded files
PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJ"
                           "RU5ErkJggg==")


def request(inputs: list[dict], **extra: object) -> bytes:
    return json.dumps({"inputs": inputs, **extra}, separators=(",", ":")).encode()


def tensor(name: str = "images", shape: object = (1,), datatype: object = "UINT8", **fields: object) -> dict:
    return {"name": name, "shape": list(shape) if isinstance(shape, tuple) else shape, "datatype": datatype, **fields}


def binary(inputs: list[tuple[dict, bytes]], **extra: object) -> bytes:
    """A binary-extension body: the JSON part (sizes in ``binary_data_size``) then the raw tensors."""
    specs = [{**spec, "parameters": {"binary_data_size": len(raw)}} for spec, raw in inputs]
    return request(specs, **extra) + b"".join(raw for _, raw in inputs)


def bytes_elements(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def valid() -> dict[str, bytes]:
    pixels = list(range(2 * 2 * 3))
    return {
        "json-uint8-pixels": NO_HEADER + request([tensor(shape=(1, 2, 2, 3), data=pixels)],
                                                 parameters={"conf": 0.3, "imgsz": 320}, id="r1"),
        "json-bytes-base64": NO_HEADER + request([tensor(datatype="BYTES", data=[base64.b64encode(PNG_1PX).decode()])],
                                                 outputs=[{"name": "detections", "parameters": {"binary_data": True}}]),
        "json-fp32-nested": NO_HEADER + request([tensor("x", (2, 2), "FP32", data=[[1.5, -2], [3e3, 0]])]),
        "json-bool-int64": NO_HEADER + request([tensor("b", (2,), "BOOL", data=[True, False]),
                                                tensor("i", (1,), "INT64", data=[-(2**63)])]),
        "binary-bytes-images": JSON_END + binary([(tensor(shape=(2,), datatype="BYTES"),
                                                   bytes_elements(PNG_1PX, b"\xff\xd8\xff"))],
                                                 parameters={"binary_data_output": True}),
        "binary-uint8-pixels": JSON_END + binary([(tensor(shape=(1, 2, 2, 3)), bytes(range(12)))]),
        "binary-two-inputs": JSON_END + binary([(tensor("a", (2,), "FP16"), b"\x00<\x00@"),
                                                (tensor("b", (1,), "UINT32"), b"\x01\x00\x00\x00")]),
    }


def crashes() -> dict[str, bytes]:
    """Inputs that crashed the parser before it checked them (an exception other than ProtocolError escaped)."""
    return {
        "crash-shape-zero-then-2pow70": NO_HEADER + request([tensor(shape=[0, 2**70, 3], data=[])]),
        "crash-shape-401-digit-dimension": NO_HEADER + request([tensor(shape=[10**400], data=[1])]),
        "crash-shape-70-dimensions": NO_HEADER + request([tensor(shape=[1] * 70, data=[1])]),
        "crash-nested-2000-brackets": NO_HEADER + b"[" * 2000,
        "crash-nested-data-2000": NO_HEADER + b'{"inputs":[{"name":"d","shape":[1],"datatype":"FP32","data":'
                                  + b"[" * 2000 + b"1" + b"]" * 2000 + b"}]}",
        "crash-datatype-list": NO_HEADER + request([tensor(datatype=["UINT8"])]),
        # found by this target in 40 s against that parser: a datatype that is a list (unhashable)
        "crash-datatype-nested-list-fuzzed": NO_HEADER + b'{"inputs":[{"name":"x","shape":[2,2],"datatype":'
                                             b'[[1.5,-2],[0.0,0]]}]}',
        "crash-parameters-not-objects": NO_HEADER + request([tensor(parameters=[1])], outputs=[{"name": "o",
                                                                                                 "parameters": 7}]),
    }


def hostile() -> dict[str, bytes]:
    return {
        "shape-negative": NO_HEADER + request([tensor(shape=[-1], data=[1])]),
        "shape-nested-900": NO_HEADER + b'{"inputs":[{"name":"s","datatype":"UINT8","data":[1],"shape":'
                            + b"[" * 900 + b"]" * 900 + b"}]}",
        "shape-bool-and-float": NO_HEADER + request([tensor(shape=[True, 1.0], data=[1])]),
        "shape-more-than-the-body": NO_HEADER + request([tensor(shape=[2**27], data=[1])]),
        "binary-shape-2pow28": JSON_END + binary([(tensor("x", (2**14, 2**14)), b"\x00" * 4)]),
        "binary-bytes-count-2pow20": JSON_END + binary([(tensor("b", (2**20,), "BYTES"), b"\x00" * 8)]),
        "data-short-of-shape": NO_HEADER + request([tensor(shape=[2], data=[1])]),
        "data-ragged": NO_HEADER + request([tensor("x", (2, 2), "FP32", data=[[1], [2, 3]])]),
        "data-int8-overflow": NO_HEADER + request([tensor(datatype="INT8", data=[10**40])]),
        "datatype-unknown": NO_HEADER + request([tensor(datatype="FLOAT", data=[1])]),
        "binary-size-true": JSON_END + request([tensor("x", parameters={"binary_data_size": True})]) + b"\x01",
        "binary-runs-past": JSON_END + request([tensor("x", parameters={"binary_data_size": 99})]) + b"\x01",
        "binary-unclaimed": JSON_END + binary([(tensor("x"), b"\x01")]) + b"extra",
        "bytes-truncated-length": JSON_END + binary([(tensor("b", (1,), "BYTES"), b"\x09\x00\x00\x00ab")]),
        "header-length-5000-digits": RAW_HEADER + b"9" * 5000 + b"|" + request([tensor(data=[1])]),
        "header-length-superscript": RAW_HEADER + b"\xb2|" + request([tensor(data=[1])]),
        "header-length-number": NUMBER + b"\xff\xff" + request([tensor(data=[1])]),
        "input-twice": NO_HEADER + request([tensor(data=[1]), tensor(data=[2])]),
        "not-json": NO_HEADER + b"\xff\xfe{nope",
    }


def seeds() -> dict[str, bytes]:
    """Every seed by file name."""
    return {**valid(), **hostile(), **crashes()}


def write_seeds(folder: Path) -> None:
    """Write every seed into ``folder`` (created); crash inputs already there (``crash-*``) are kept."""
    write_corpus(folder, seeds())


if __name__ == "__main__":
    command_line("kserve_request", write_seeds)
