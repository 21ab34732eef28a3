"""The import edges between the top-level packages are exactly the ones docs/architecture.md draws.

An edge that appears (or disappears) in the code fails here until the diagram and :data:`DOCUMENTED_EDGES` say
so too. Imports inside functions count: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("yolov12", "pipelines", "tune", "serve")
SCRIPTS = ("app", "main_job")
DOCUMENTED_EDGES = {
    ("app", "pipelines"), ("app", "serve"), ("app", "yolov12"),
    ("main_job", "pipelines"), ("main_job", "serve"), ("main_job", "yolov12"),
    ("tune", "pipelines"), ("tune", "yolov12"),
    ("serve", "pipelines"), ("serve", "yolov12"),
    ("pipelines", "yolov12"),
}


def _sources(unit: str) -> list[Path]:
    if unit in SCRIPTS:
        return [REPO_ROOT / f"{unit}.py"]
    return sorted((REPO_ROOT / unit).rglob("*.py"))


def _imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        units.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return units


def test_package_edges_are_the_documented_ones() -> None:
    edges = {(unit, target) for unit in (*PACKAGES, *SCRIPTS) for path in _sources(unit)
             for target in _imported_units(path) if target != unit}
    assert edges == DOCUMENTED_EDGES, (
        f"new edges {sorted(edges - DOCUMENTED_EDGES)}, gone {sorted(DOCUMENTED_EDGES - edges)}: "
        "update docs/architecture.md and DOCUMENTED_EDGES")


def test_the_diagram_names_every_edge() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    for source, target in DOCUMENTED_EDGES:
        source_name = f"{source}.py" if source in SCRIPTS else f"{source}/"
        arrow = re.compile(re.escape(source_name) + r"[^/►]*──►(?P<targets>.*)")  # the arrow leaving source_name
        line = next((match["targets"] for row in text.splitlines() if (match := arrow.search(row))), "")
        if source == "pipelines":  # drawn vertically: the library sits below it
            assert "public API only" in text
            continue
        assert f"{target}/" in line, f"docs/architecture.md draws no arrow {source_name} ──► {target}/"
