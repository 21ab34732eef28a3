"""The per-epoch checkpoint is the resume unit of the run folder; a restart downloads it once per node."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipelines.checkpoint_transfer import (
    RESUME_UNIT,
    node_restore_dir,
    restore_once_per_node,
    staged_resume_unit,
)

RUN_FILES = [*RESUME_UNIT, "weights/epoch1.safetensors", "weights/epoch2.safetensors", "results.png",
             "confusion_matrix.png"]


def _run_folder(root: Path) -> Path:
    run_dir = root / "run"
    for name in RUN_FILES:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(f"bytes of {name}")
    return run_dir


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_the_staged_unit_holds_the_resume_files_and_this_epochs_periodic_weights(tmp_path: Path) -> None:
    run_dir = _run_folder(tmp_path)
    with staged_resume_unit(run_dir, [run_dir / "weights/epoch2.safetensors"]) as unit:
        assert _files(unit) == {*RESUME_UNIT, "weights/epoch2.safetensors"}
        state = run_dir / "weights/last.state.pt"
        assert os.path.samefile(unit / "weights/last.state.pt", state)  # linked, not copied
        replacement = state.with_suffix(".tmp")
        replacement.write_text("the next epoch")
        replacement.replace(state)  # the engine's atomic write: the staged file keeps this epoch's bytes
        assert (unit / "weights/last.state.pt").read_text() == "bytes of weights/last.state.pt"
    assert not unit.exists() and _files(run_dir) >= set(RUN_FILES) - {"weights/last.state.pt"}


def test_a_missing_best_is_left_out(tmp_path: Path) -> None:
    run_dir = _run_folder(tmp_path)
    (run_dir / "weights/best.safetensors").unlink()
    with staged_resume_unit(run_dir) as unit:
        assert _files(unit) == set(RESUME_UNIT) - {"weights/best.safetensors"}


class CountingCheckpoint:
    """Stands in for ``ray.train.Checkpoint``: a path and ``to_directory`` (counted)."""

    def __init__(self, source: Path) -> None:
        self.path, self.downloads = str(source), 0
        self.lock = threading.Lock()

    def to_directory(self, path: str) -> None:
        with self.lock:
            self.downloads += 1
        from pipelines.checkpoint_transfer import link_tree

        link_tree(Path(self.path), Path(path))


def test_the_workers_of_a_node_download_the_checkpoint_once(tmp_path: Path) -> None:
    checkpoint = CountingCheckpoint(_run_folder(tmp_path))
    barrier = threading.Barrier(3)
    targets = [tmp_path / f"rank{rank}" for rank in range(3)]
    errors: list[BaseException] = []

    def worker(local_rank: int) -> None:
        try:
            restore_once_per_node(checkpoint, targets[local_rank], "exp", local_rank, barrier.wait)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert checkpoint.downloads == 1
    assert all(_files(target) == set(RUN_FILES) for target in targets)
    assert not node_restore_dir(checkpoint.path, "exp").exists()
