"""Load weights files one after another in this process and report, per file, the error and the peak memory.

    python memory_probe.py < cases.json      # [{"path": ..., "max_bytes": null}, ...]; "warmup": paths loaded first

Before the cases, the probe loads the warm-up files and builds one detector on the meta device: the first model of
a process imports and initialises the layer code (~80 MiB, once), which is not what a file costs.

Prints one JSON object per case: ``{"path", "errors" (the exception's class and base class names, [] when it
loaded), "message", "peak_bytes"}``. The peak is the growth of the resident set over what the process held before
the case (the high-water mark is reset through ``/proc/self/clear_refs``). The address space is capped a few GiB
above the start, so a loader that allocates without bound fails here instead of exhausting the machine.
"""

from __future__ import annotations

import inspect
import json
import resource
import sys
from pathlib import Path

ADDRESS_SPACE_ALLOWANCE = 3 * 2**30


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _load(path: str, max_bytes: int | None) -> None:
    from yolov12.weights import load_weights  # noqa: PLC0415 - imported after the caller chose sys.path

    if max_bytes is not None and "max_bytes" in inspect.signature(load_weights).parameters:
        load_weights(path, max_bytes=max_bytes)
    else:
        load_weights(path)


def _initialise_layers() -> None:
    import torch  # noqa: PLC0415

    from yolov12.models import load_architecture  # noqa: PLC0415
    from yolov12.models.model import YOLOModel  # noqa: PLC0415

    with torch.device("meta"):
        YOLOModel(load_architecture("yolov12n"))


def run_case(path: str, max_bytes: int | None) -> dict:
    """Load one file; its error (class names along the MRO) and the resident-set growth while loading it."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current resident set
    before = _status("VmRSS")
    errors, message = [], ""
    try:
        _load(path, max_bytes)
    except BaseException as exc:  # noqa: BLE001 - the probe reports whatever the loader raised
        errors, message = [cls.__name__ for cls in type(exc).__mro__], str(exc)
    return {"path": path, "errors": errors, "message": message, "peak_bytes": _status("VmHWM") - before}


def main() -> None:
    request = json.load(sys.stdin)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _status("VmSize") + ADDRESS_SPACE_ALLOWANCE
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    for path in request.get("warmup", []):
        run_case(path, None)
    _initialise_layers()
    for case in request["cases"]:
        print(json.dumps(run_case(case["path"], case.get("max_bytes"))), flush=True)


if __name__ == "__main__":
    main()
