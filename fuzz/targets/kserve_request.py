"""Fuzz target: bytes -> the KServe v2 request parser (:func:`serve.kserve.parse_infer_request`).

The first byte picks how the ``Inference-Header-Content-Length`` header is made (see :func:`split_input`), the rest
is the body. Allowed: :class:`~serve.kserve.ProtocolError` (a malformed request, answered 400/413). Anything else
escaping, a refusal that is not one 4xx line, a tensor larger than its bytes in the body can carry, or memory over
``MEMORY_BUDGET_MB`` is a finding: the inputs are a few KB, so a parser that allocates from a declared shape before
checking it against the bytes (a [16384, 16384] UINT8 tensor is 256 MiB) goes over the budget.
"""

from __future__ import annotations

from serve.kserve import ProtocolError, parse_infer_request

MEMORY_BUDGET_MB = 64  # tensors of a few-KB body take KBs; 2**28 elements would take 256 MiB to 2 GiB
INSTRUMENT = ("serve.kserve",)
HEADER_MODES = 4  # none, a 16-bit number, the end of the last JSON object, raw text before the first "|"



def split_input(data: bytes) -> tuple[bytes, str | None]:
    """(body, Inference-Header-Content-Length) from a fuzz input: ``data[0] % 4`` picks the header:

    0: none (a JSON-only request); 1: the number in ``data[1:3]`` (big-endian), body ``data[3:]``; 2: the length up
    to the last ``}`` of the body (a JSON part then binary tensors, as clients send them); 3: the text before the
    first ``|`` of the body, decoded as latin-1 as HTTP headers are (any header text).
    """
    if not data:
        return b"", None
    mode, rest = data[0] % HEADER_MODES, data[1:]
    if mode == 1:
        return rest[2:], str(int.from_bytes(rest[:2], "big"))
    if mode == 2:
        return rest, str(rest.rfind(b"}") + 1)
    if mode == 3:
        header, _, body = rest.partition(b"|")
        return body, header.decode("latin-1")
    return rest, None


def fuzz_one_input(data: bytes) -> None:
    """Parse ``data`` as an infer request: :class:`ProtocolError` is the expected refusal, anything else a finding."""
    body, header_length = split_input(data)
    try:
        request = parse_infer_request(body, header_length)
    except ProtocolError as exc:
        if not 400 <= exc.status < 500 or "\n" in str(exc):
            raise AssertionError(f"refusal with status {exc.status} or on several lines: {exc!r}") from None
        return
    for name, tensor in request.inputs.items():  # every element takes a byte of the body and at most 8 in memory
        if tensor.nbytes > 8 * len(body):
            raise AssertionError(f"input {name!r}: {tensor.nbytes} bytes of tensor from a {len(body)}-byte body")
