"""scripts/gpu_check.sh on a machine without what it checks: one table, every row saying in one line what is
missing, a non-zero exit, and no model built (fast). The rows' assembly is checked with stand-in checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # scripts/ is a folder of the repository, not an installed package

from scripts import gpu_check  # noqa: E402

NO_CUDA = not torch.cuda.is_available()
CHECK_NAMES = [name for name, _, _ in gpu_check.CHECKS]


@pytest.mark.skipif(not NO_CUDA, reason="checks the report of a machine without CUDA")
def test_without_cuda_every_row_says_what_is_missing_and_the_exit_is_non_zero() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode != 0, done.stdout
    assert time.perf_counter() - started < 60  # nothing is built when CUDA is absent
    lines = done.stdout.strip().splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["check", "result", "figure", "seconds"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[2:]]
    assert [row[0] for row in rows] == CHECK_NAMES and len(lines) == 2 + len(CHECK_NAMES)  # one table, nothing else
    for check, result, figure, seconds in rows:
        assert result == "missing" and figure.startswith("no CUDA") and float(seconds) == 0.0, (check, figure)
    by_name = {row[0]: row[2] for row in rows}
    if gpu_check.missing(("tensorrt",)):
        assert "no tensorrt" in by_name["tensorrt fp16 parity"]
    if gpu_check.missing(("flash_attn",)):
        assert "no flash_attn" in by_name["flash attention vs sdpa"]


def test_one_failing_check_does_not_stop_the_others(monkeypatch) -> None:
    def broken() -> str:
        raise RuntimeError("kernel launch failed\nsecond line")

    def wrong() -> str:
        raise gpu_check.CheckFailed("median box err 3.1 px (bound 0.5 px)")

    monkeypatch.setitem(gpu_check.REQUIREMENTS, "cuda", lambda: None)
    monkeypatch.setattr(gpu_check, "CHECKS", (("a", ("cuda",), broken), ("b", ("cuda",), wrong),
                                              ("c", ("cuda",), lambda: "max err 1e-4")))
    rows = [gpu_check.run_check(*check) for check in gpu_check.CHECKS]
    assert [(r.result, r.figure) for r in rows] == [("FAIL", "RuntimeError: kernel launch failed"),
                                                    ("FAIL", "median box err 3.1 px (bound 0.5 px)"),
                                                    ("ok", "max err 1e-4")]
    assert gpu_check.main() == 1
