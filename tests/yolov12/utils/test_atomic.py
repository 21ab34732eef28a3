"""atomic_write: the target is replaced whole on success and untouched (no temporary left) on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolov12.utils.atomic import atomic_write


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_the_file_whole(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "sub" / "a.json"
    with atomic_write(target, "w", durable=durable) as stream:
        stream.write("{}")
    assert target.read_text() == "{}" and sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as stream:
        stream.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
