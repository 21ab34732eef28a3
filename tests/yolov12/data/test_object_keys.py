"""Object keys as local paths: every key is refused or becomes a path strictly inside its folder, one file per key."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from yolov12.data.errors import RemoteStorageError, UnsafeObjectKeyError
from yolov12.data.object_keys import key_problem, path_inside, safe_relative_path, segment_problem

SEGMENTS = st.one_of(st.sampled_from(["", ".", "..", "a", "b.jpg", "back\\slash", "nul\x00", "bell\x07", "é",
                                      "x" * 256, " ", "..."]), st.text(max_size=8))
KEYS = st.one_of(st.text(), st.lists(SEGMENTS, max_size=6).map("/".join))


@settings(deadline=None)
@given(key=KEYS, prefix=st.sampled_from(["", "sets/", "sets/coco/"]))
@example(key="/etc/passwd", prefix="")
@example(key="a/../../b", prefix="")
@example(key="sets/", prefix="sets/")
def test_every_key_is_refused_or_a_path_strictly_inside_the_root(key: str, prefix: str) -> None:
    root = "/mirror/bucket"
    try:
        relative = safe_relative_path("bucket", key, prefix)
    except UnsafeObjectKeyError as exc:
        assert exc.key == key and exc.reason and "bucket 'bucket'" in str(exc)
        return
    joined = os.path.normpath(os.path.join(root, relative.as_posix()))
    assert joined.startswith(root + "/") and joined != root
    assert relative.as_posix() == key and key.startswith(prefix)  # nothing collapsed: one file per key
    assert not relative.is_absolute() and ".." not in relative.parts


@settings(deadline=None)  # writes files: timing depends on the machine's load
@given(key=KEYS)
def test_an_accepted_key_can_be_written_inside_a_real_folder(key: str) -> None:
    try:
        relative = safe_relative_path("bucket", key)
    except UnsafeObjectKeyError:
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "mirror"
        root.mkdir()
        target = path_inside(root, relative, bucket="bucket", key=key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
        written = [p for p in Path(folder).rglob("*") if p.is_file()]
        assert written == [target] and target.resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize(("key", "reason"), [
    ("/abs/x", "absolute"),
    ("../escape", "'..'"),
    ("a/../../b", "'..'"),
    ("a//b", "empty path segment"),
    ("./a", "'.' segment"),
    ("a\\b", "backslash"),
    ("a\x00b", "control character"),
    ("line\nbreak", "control character"),
    ("dir/", "folder marker"),
    ("", "folder marker"),
    ("x" * 256, "256 bytes long"),
    ("a/" * 600 + "b", "longer than 1024 bytes"),
    ("\ud800", "not valid UTF-8"),
])
def test_hostile_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(UnsafeObjectKeyError, match=reason) as caught:
        safe_relative_path("datasets", key)
    assert isinstance(caught.value, RemoteStorageError) and "bucket 'datasets'" in str(caught.value)


def test_the_prefix_itself_keys_outside_it_and_reserved_names_are_refused() -> None:
    assert key_problem("sets/", "sets/") is not None and "folder marker" in key_problem("sets/", "sets/")
    assert "not under the listed prefix" in key_problem("other/a.jpg", "sets/")
    assert "keeps for its own files" in key_problem(".lock", "", reserved={".lock"})
    assert "keeps for its own files" in key_problem(".partial/x", "", reserved={".partial"})
    assert safe_relative_path("b", "sub/.lock", reserved={".lock"}) == PurePosixPath("sub/.lock")
    assert safe_relative_path("b", "sets/a b/ü.jpg", "sets/") == PurePosixPath("sets/a b/ü.jpg")


def test_single_names() -> None:
    assert segment_problem("best.safetensors") is None
    assert all(segment_problem(name) for name in ["", ".", "..", "a/b", "/abs", "a\\b", "a\x00", "x" * 256])


def test_a_symbolic_link_inside_the_root_cannot_lead_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "mirror", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeObjectKeyError, match="resolves to .*outside"):
        path_inside(root, PurePosixPath("link/file"), bucket="b", key="link/file")
    assert path_inside(root, PurePosixPath("plain/file"), bucket="b", key="plain/file") == root / "plain" / "file"


def test_the_error_survives_pickling() -> None:
    error = UnsafeObjectKeyError("b", "../x", "it has a '..' segment")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.bucket, copy.key, copy.reason, str(copy)) == ("b", "../x", error.reason, str(error))
