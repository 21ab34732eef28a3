"""Running ``python -m tune.sweep`` the way users start it, from the tune tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sweep_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``RAY_ADDRESS*`` (each sweep starts its own local Ray), plus ``extra``,
    with the repository on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_sweep_cli(arguments: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
                  timeout: float = 900) -> str:
    """Run ``python -m tune.sweep ARGUMENTS`` to the end in its own process group; its output (asserts success)."""
    result = subprocess.run([sys.executable, "-m", "tune.sweep", *arguments], cwd=cwd, env=sweep_environment(extra_env),
                            capture_output=True, text=True, timeout=timeout, start_new_session=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"python -m tune.sweep {' '.join(arguments)} failed:\n{output[-4000:]}"
    return output
