"""Run folders: ``project/name``, incremented (exp, exp2, ...) unless ``exist_ok``; never overwrite a run silently."""

from __future__ import annotations

from pathlib import Path


def new_run_dir(project: str | Path, name: str, exist_ok: bool = False) -> Path:
    """Create and return a fresh run folder (``name``, then ``name2``, ``name3``... when taken)."""
    base = Path(project) / name
    if exist_ok or not base.exists():
        base.mkdir(parents=True, exist_ok=True)
        return base
    index = 2
    while (candidate := Path(project) / f"{name}{index}").exists():
        index += 1
    candidate.mkdir(parents=True)
    return candidate
