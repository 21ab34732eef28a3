"""Seed corpora of the fuzz targets: ``python -m fuzz.seeds.NAME [folder]`` rewrites ``fuzz/corpus/NAME/``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

CORPUS_ROOT = Path(__file__).resolve().parent.parent / "corpus"


def write_corpus(folder: Path, seeds: Mapping[str, bytes | Callable[[], bytes]]) -> None:
    """Write each seed (bytes, or a function making them) to ``folder/<name>``; other files there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in seeds.items():
        (folder / name).write_bytes(seed() if callable(seed) else seed)


def command_line(name: str, write_seeds: Callable[[Path], None]) -> None:
    """``python -m fuzz.seeds.NAME [folder]``: write the seeds into ``folder`` (default: the committed corpus)."""
    write_seeds(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS_ROOT / name)
