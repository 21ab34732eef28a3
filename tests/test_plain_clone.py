"""A plain clone is self-contained: the tests that read files outside `tests/` pass in a copy with nothing beside it.

Our own machines keep a `shared/` folder beside the checkout; a user's clone has none. The copy holds exactly what
a clone holds (tracked files, plus files not yet committed that git does not ignore) in an otherwise empty folder,
and runs the tests that read the repository's own files (infra manifests and CRDs, docs, configs) there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_READING_REPO_FILES = [
    "tests/infra",
    "tests/test_docs.py",
    "tests/pipelines/test_pipeline_config.py",
    "tests/tune/test_tune_config.py",
]
# The folder our own machines keep beside the checkout; a reference to it is a relative path up one level, or
# a `.parent` / `parents[N]` join with its name. The name is assembled so that this file does not match itself.
SIBLING_FOLDER = "sha" + "red"
OUTSIDE_REFERENCE = re.compile(
    r"\.\./" + SIBLING_FOLDER + r"\b|parents?(\[\d+\])?\s*/\s*[\"']" + SIBLING_FOLDER + r"[\"']")
SCANNED_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".txt"}


def _clone_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def _require_git_checkout() -> None:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")


def test_no_file_points_outside_the_repository() -> None:
    _require_git_checkout()
    offenders = []
    for name in _clone_files():
        path = REPO_ROOT / name
        if path.suffix not in SCANNED_SUFFIXES:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "files that read a folder beside the repository:\n" + "\n".join(offenders)


@pytest.mark.slow
def test_repository_tests_pass_in_a_copy_with_nothing_beside_it(tmp_path: Path) -> None:
    _require_git_checkout()
    clone = tmp_path / "clone"
    for name in _clone_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clone"]
    env = {key: value for key, value in os.environ.items() if key != "KUBERAY_CRDS_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS_READING_REPO_FILES],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-2000:]
