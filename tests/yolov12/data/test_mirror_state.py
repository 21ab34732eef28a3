"""A mirror's bookkeeping: the journal of a killed sync is folded into the manifest, a torn last line ignored."""

from __future__ import annotations

import json
from pathlib import Path

from yolov12.data.mirror_state import JOURNAL_NAME, MANIFEST_NAME, PARTIAL_NAME, bucket_lock, read_manifest


def test_the_journal_of_a_killed_sync_is_folded_in_and_a_torn_line_ignored(tmp_path: Path) -> None:
    saved = {"old": {"etag": "e0", "size": 1}, "gone": {"etag": "e", "size": 2}}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(saved))
    lines = [{"key": "a", "etag": "e1", "size": 3}, {"key": "gone", "removed": True},
             {"key": "a", "etag": "e2", "size": 4}]
    (tmp_path / JOURNAL_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"key": "b", "et')
    assert read_manifest(tmp_path) == {"old": {"etag": "e0", "size": 1}, "a": {"etag": "e2", "size": 4}}


def test_releasing_the_lock_saves_the_manifest_and_drops_the_journal(tmp_path: Path) -> None:
    (tmp_path / PARTIAL_NAME).mkdir()
    (tmp_path / PARTIAL_NAME / "part-left-by-a-kill").write_bytes(b"half")
    with bucket_lock(tmp_path) as mirror:
        assert list((tmp_path / PARTIAL_NAME).iterdir()) == []
        mirror.record("a", "e1", 3)
        assert json.loads((tmp_path / JOURNAL_NAME).read_text()) == {"key": "a", "etag": "e1", "size": 3}
        mirror.forget("a")
        mirror.record("b", "e2", 4)
    assert not (tmp_path / JOURNAL_NAME).exists()
    assert json.loads((tmp_path / MANIFEST_NAME).read_text()) == {"b": {"etag": "e2", "size": 4}}


def test_an_unreadable_manifest_starts_empty(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("[1, 2")
    assert read_manifest(tmp_path) == {}
    (tmp_path / MANIFEST_NAME).write_text("[1, 2]")
    assert read_manifest(tmp_path) == {}
