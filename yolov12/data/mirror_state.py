"""The bookkeeping of a local object-store mirror: its lock, manifest, journal and folder of partial downloads.

One folder per bucket holds, besides the mirrored objects:

- ``.lock``: an exclusive file lock; processes on one machine (DDP ranks, Ray workers) take turns holding it.
- ``.yolov12-s3-manifest.json``: key -> ``{etag, size}`` of every mirrored object, rewritten atomically.
- ``.yolov12-s3-journal.jsonl``: one line per object finished (or forgotten) since the manifest was last written,
  appended and flushed at once. It is folded into the manifest when the lock is released and deleted; a process
  killed while holding the lock leaves it behind, and the next holder folds it in first, so finished work is kept.
- ``.yolov12-partial/``: downloads in progress, emptied whenever the lock is taken (nobody else writes there then).

A flushed journal line survives a killed process, not a power cut; an entry whose file did not survive is
downloaded again, because a mirror checks the file's size as well as the recorded ETag.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".yolov12-s3-manifest.json"
LOCK_NAME = ".lock"
JOURNAL_NAME = ".yolov12-s3-journal.jsonl"
PARTIAL_NAME = ".yolov12-partial"
RESERVED_NAMES = frozenset({MANIFEST_NAME, LOCK_NAME, JOURNAL_NAME, PARTIAL_NAME})  # no object may take these


class MirrorState:
    """A mirror folder while its lock is held: the manifest (key -> ``{etag, size}``) and the journal of changes.

    Only the thread that holds the lock calls :meth:`record` and :meth:`forget`; :meth:`partial_file` is thread-safe.
    """

    def __init__(self, folder: Path, manifest: dict[str, dict], journal: IO[str]) -> None:
        self.folder, self.manifest, self._journal = folder, manifest, journal

    def record(self, key: str, etag: str, size: int) -> None:
        """The object ``key`` is in place: remember it now, durably against a killed process."""
        self.manifest[key] = {"etag": etag, "size": size}
        self._append({"key": key, "etag": etag, "size": size})

    def forget(self, key: str) -> None:
        """The object ``key`` left the store."""
        self.manifest.pop(key, None)
        self._append({"key": key, "removed": True})

    def partial_file(self) -> Path:
        """A new empty file in the partial folder (same file system as the mirror, so the final move is atomic)."""
        handle, name = tempfile.mkstemp(prefix="part-", dir=self.folder / PARTIAL_NAME)
        os.close(handle)
        return Path(name)

    def _append(self, entry: dict) -> None:
        # one write per line, flushed at once: the operating system keeps it even if this process is killed next
        self._journal.write(json.dumps(entry) + "\n")
        self._journal.flush()


@contextlib.contextmanager
def bucket_lock(folder: Path) -> Iterator[MirrorState]:
    """Hold ``folder``'s file lock; yields its :class:`MirrorState`, whose manifest is saved atomically on exit.

    Example:
        >>> with bucket_lock(cache / "s3" / "datasets") as mirror:  # doctest: +SKIP
        ...     mirror.record("sets/a.jpg", '"9b2c..."', 1234)
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_NAME).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(folder)
        shutil.rmtree(folder / PARTIAL_NAME, ignore_errors=True)  # left by a killed process
        (folder / PARTIAL_NAME).mkdir()
        journal_path = folder / JOURNAL_NAME
        with journal_path.open("a", encoding="utf-8") as journal:
            try:
                yield MirrorState(folder, manifest, journal)
            finally:
                _write_manifest(folder, manifest)
                journal_path.unlink(missing_ok=True)


def read_manifest(folder: Path) -> dict[str, dict]:
    """The saved manifest of ``folder`` with the journal of an interrupted sync folded in."""
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (ValueError, UnicodeDecodeError):
        manifest = None
    if not isinstance(manifest, dict):
        logger.warning("s3 manifest %s is unreadable; every object will be downloaded again", path)
        manifest = {}
    journal = folder / JOURNAL_NAME
    if journal.exists():
        replayed = _replay_journal(journal, manifest)
        logger.info("s3 mirror %s: an interrupted sync had recorded %d change(s); resuming after them", folder,
                    replayed)
    return manifest


def _replay_journal(path: Path, manifest: dict[str, dict]) -> int:
    """Apply the journal's entries in order; a line cut short by a kill is ignored. Returns the entries applied."""
    applied = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            if entry.get("removed"):
                manifest.pop(entry["key"], None)
            else:
                manifest[entry["key"]] = {"etag": entry["etag"], "size": int(entry["size"])}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        applied += 1
    return applied


def _write_manifest(folder: Path, manifest: dict[str, dict]) -> None:
    handle, temporary = tempfile.mkstemp(prefix="manifest-", dir=folder / PARTIAL_NAME)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=0, sort_keys=True)
    os.replace(temporary, folder / MANIFEST_NAME)
