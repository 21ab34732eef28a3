"""The test tree itself: test folders have no ``__init__.py``, so pytest imports each test module by its file name
and two modules of the same name in different folders stop the collection of the second ("import file mismatch")."""

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_two_test_modules_share_a_file_name() -> None:
    folders: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        folders[path.name].append(str(path.parent.relative_to(TESTS)))
    shared = {name: places for name, places in folders.items() if len(places) > 1}
    assert not shared, f"rename one of each: {shared}"
