"""`pip install yolov12-platform` without extras: the library alone, and it trains, predicts and exports ONNX.

A fresh venv (this interpreter, no pip of its own: this venv's pip installs into it with ``--python``) gets the
project from a copy of the clone's files (building in the checkout would write ``build/`` and ``*.egg-info`` there),
non-editable, constrained by the lock, as a user's ``pip install`` would. Then, inside it:
tests/support/core_smoke.py checks that no package of an extra came along, trains, predicts, exports ONNX and runs
it in ONNX Runtime; the CLI and the demo name the extra they miss in one line. ``--no-compile``: byte-compiling
every installed module (torch's thousands) would double the install time, and only the imported ones are needed.

Measured on the 2-core machine (2026-12-06): 1 min 34 s in all (install 29 s, checks 61 s) at load average 5; 3 min 20 s
(install 57 s, checks 135 s) while other jobs held it at load average 8. pip caches nothing between runs here (the
index answers without caching headers): each run downloads the ~50 MB of core wheels that are not on this disk.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = Path("requirements/lock-py311.txt")
SMOKE = Path("tests/support/core_smoke.py")
pytestmark = pytest.mark.slow


def copy_clone(target: Path) -> Path:
    """The files a clone holds (tracked, plus not-yet-committed files git does not ignore), copied to ``target``."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture(scope="module")
def core_install(tmp_path_factory) -> tuple[Path, Path]:
    """(python of a venv holding only ``yolov12-platform`` and its core dependencies, the copied clone)."""
    root = tmp_path_factory.mktemp("core-install")
    source = copy_clone(root / "clone")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
         "--disable-pip-version-check", "-c", str(source / LOCK), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"core install: {time.perf_counter() - started:.0f} s")
    return python, source


def test_the_core_install_trains_predicts_and_exports_onnx_without_any_extra(core_install, tmp_path: Path) -> None:
    python, source = core_install
    started = time.perf_counter()
    done = subprocess.run([str(python), "-I", str(source / SMOKE), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"core checks: {time.perf_counter() - started:.0f} s")
    assert "metrics/mAP50-95(B)" in report["metrics"]
    assert Path(report["best"]).is_file() and Path(report["onnx"]).is_file()


def test_the_core_install_cli_names_the_missing_extra_in_one_line(core_install, tmp_path: Path) -> None:
    python, _ = core_install
    yolov12 = python.with_name("yolov12")
    done = subprocess.run([str(yolov12), "train-ray", "--config", "configs/sample.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "yolov12 train-ray: error: pipelines needs Ray: pip install 'yolov12-platform[ray]'"]
    done = subprocess.run([str(yolov12), "zoo"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "yolov12n" in done.stdout.split(), done.stderr


def test_the_demo_without_its_extra_names_it(core_install) -> None:
    python, source = core_install
    done = subprocess.run([str(python), "-I", "app.py"], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: the demo (app.py) needs Gradio: pip install 'yolov12-platform[demo]'"
