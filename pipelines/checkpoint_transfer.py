"""What the Ray Train workers upload each epoch and how they restore it: the resume unit, once per node.

Each epoch rank 0 hands Ray only the files a restart needs (:data:`RESUME_UNIT`: ``weights/last.*`` with their
manifest, ``best.safetensors`` and ``results.csv``), plus the periodic ``epochN.safetensors`` written that epoch; the
rest of the run folder (plots, earlier periodic weights) is uploaded once, with the final report. The files are
hard-linked into a staging folder first: the engine replaces checkpoint files by renaming new ones into place, so a
link keeps the bytes of this epoch whatever the next epoch writes, and nothing is copied on the local disk.

On a restart, the first worker of each node (local rank 0) downloads the checkpoint into a folder of the node and
every worker of the node links (or copies) its run folder from there, instead of each rank downloading the whole
checkpoint from shared storage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yolov12.engine.checkpoint import MANIFEST_NAME, STATE_NAME, WEIGHTS_NAME

RESUME_UNIT = (f"weights/{WEIGHTS_NAME}", f"weights/{STATE_NAME}", f"weights/{MANIFEST_NAME}",
               "weights/best.safetensors", "results.csv")  # relative to the run folder; missing ones are skipped


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (its folder made), copying when the two are on different filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def link_tree(source: Path, target: Path) -> None:
    """Every file under ``source`` at the same relative path under ``target`` (see :func:`link_or_copy`)."""
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        link_or_copy(path, target / path.relative_to(source))


@contextmanager
def staged_resume_unit(run_dir: Path, extra: Iterable[Path] = ()):
    """A temporary folder beside ``run_dir`` holding (links to) :data:`RESUME_UNIT` and ``extra`` files of the run
    folder, at their relative paths; removed on exit. Yields its path."""
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}-checkpoint-", dir=run_dir.parent))
    try:
        names = [*RESUME_UNIT, *(str(Path(p).relative_to(run_dir)) for p in extra)]
        for name in dict.fromkeys(names):
            if (run_dir / name).is_file():
                link_or_copy(run_dir / name, staging / name)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def node_restore_dir(checkpoint_path: str, node: str) -> Path:
    """The folder that one checkpoint is downloaded to on a node (``node``: the run and the node, the same for every
    worker of the node and distinct between nodes, also when they share a machine)."""
    key = hashlib.sha256(f"{node}\0{checkpoint_path}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"yolov12-restore-{key}"


def restore_once_per_node(checkpoint: Any, run_dir: Path, node: str, local_rank: int,
                          barrier: Callable[[], None]) -> None:
    """Fill ``run_dir`` with ``checkpoint`` (a ``ray.train.Checkpoint``), downloaded once per node.

    Every worker calls it with its local rank; ``barrier`` waits for all workers of the job (a process-group
    barrier): the first one lets local rank 0 finish the download, the second lets every worker finish its copy
    before local rank 0 removes the node's folder.
    """
    shared = node_restore_dir(str(checkpoint.path), node)
    if local_rank == 0:
        shutil.rmtree(shared, ignore_errors=True)  # a folder left by an attempt that died mid-download
        checkpoint.to_directory(str(shared))
    barrier()
    link_tree(shared, run_dir)
    barrier()
    if local_rank == 0:
        shutil.rmtree(shared, ignore_errors=True)


def process_group_barrier(device: str) -> Callable[[], None]:
    """A barrier over the job's process group (set up by Ray Train), naming this worker's GPU for NCCL; a no-op
    without a process group."""
    import torch  # noqa: PLC0415 - the workers have it; the driver imports this module without needing it
    import torch.distributed as dist  # noqa: PLC0415

    if not (dist.is_available() and dist.is_initialized()):
        return lambda: None
    index = torch.device(device).index
    if dist.get_backend() == "nccl" and index is not None:
        return lambda: dist.barrier(device_ids=[index])
    return dist.barrier
