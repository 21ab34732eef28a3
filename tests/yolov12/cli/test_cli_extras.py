"""CLI commands of the upper layers without their extra: listed, and running one is one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def run_cli(hidden: str, *argv: str) -> subprocess.CompletedProcess:
    """``yolov12 ARGV`` in a fresh interpreter where the package ``hidden`` cannot be imported."""
    code = (f"import sys\nsys.modules[{hidden!r}] = None\nfrom yolov12.cli.main import main\n"
            f"sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("hidden", "argv", "line"),
    [
        ("ray", ["train-ray", "--config", "configs/sample.yaml"],
         "yolov12 train-ray: error: pipelines needs Ray: pip install 'yolov12-platform[ray]'"),
        ("ray", ["tune", "config=configs/sweeps/sample-asha.yaml"],
         "yolov12 tune: error: tune needs Ray: pip install 'yolov12-platform[ray]'"),
        ("ray", ["serve", "model=yolov12n.yaml"],
         "yolov12 serve: error: serve needs Ray: pip install 'yolov12-platform[serve]'"),
        ("mlflow", ["lineage", "models:/yolov12n-sample@champion"],
         "yolov12 lineage: error: pipelines needs MLflow: pip install 'yolov12-platform[mlflow]'"),
    ],
)
def test_a_command_without_its_extra_prints_one_line_and_exits_2(hidden: str, argv: list[str], line: str) -> None:
    done = run_cli(hidden, *argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [line]


def test_help_lists_the_commands_whose_extra_is_missing() -> None:
    done = run_cli("ray", "--help")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "(not installed) pipelines needs Ray: pip install 'yolov12-platform[ray]'" in rows["train-ray"]
    assert "[serve]" in rows["serve"] and "predict" in rows and "not installed" not in rows["predict"]
    assert done.stderr == ""
