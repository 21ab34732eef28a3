"""No import circle inside ``yolov12/``: the import graph, read with ``ast``, is acyclic.

An edge ``a -> b`` means module ``a`` imports ``b`` while it is being imported: ``import b``, ``from b import name``
(or ``from pkg import b`` when ``b`` is a submodule of ``pkg``), including a package's ``__init__`` importing its
own submodules. Imports under ``if TYPE_CHECKING:`` and names served lazily by a module-level ``__getattr__`` are
never edges.

Two graphs are checked. The module-level graph leaves out imports inside functions: a circle there breaks
``import``. The layering graph counts the imports inside functions too: a circle there means a lower layer calls
back into a higher one (the training engine loading models through the ``YOLO`` facade, a module importing a shim
that re-exports it), which works only as long as every such import stays deferred.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "yolov12"


def module_name(path: Path) -> str:
    """``yolov12/infer/letterbox.py`` -> ``yolov12.infer.letterbox``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_in(body: list[ast.stmt], in_functions: bool = False,
               top_level: bool = True) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of ``body``: those that run when the module is imported, plus with ``in_functions`` those
    inside functions; never those under ``if TYPE_CHECKING:`` or in a module-level ``__getattr__``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lazy_attribute = top_level and node.name == "__getattr__"
            if in_functions and not lazy_attribute:
                yield from imports_in(node.body, in_functions, top_level=False)
        elif isinstance(node, ast.If):
            if not _is_type_checking_guard(node.test):
                yield from imports_in(node.body, in_functions, top_level)
            yield from imports_in(node.orelse, in_functions, top_level)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(handler.body for handler in node.handlers)):
                yield from imports_in(block, in_functions, top_level)
        elif isinstance(node, ast.ClassDef):
            yield from imports_in(node.body, in_functions, top_level=False)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            yield from imports_in([*node.body, *getattr(node, "orelse", [])], in_functions, top_level)


def _absolute_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a ``from ... import`` reads from, with relative levels resolved against ``importer``."""
    if not node.level:
        return node.module or ""
    anchor = importer.split(".") if is_package else importer.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def import_graph(in_functions: bool = False) -> dict[str, set[str]]:
    """Module name -> the ``yolov12`` modules it imports at module level (and inside functions with
    ``in_functions``)."""
    sources = {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in imports_in(tree.body, in_functions):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = _absolute_base(node, name, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in sources else base)
        graph[name] = {target for target in targets if target in sources and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]``, or None when the graph is acyclic."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                stack.pop()
                continue
            if following in on_path:
                return [*path[path.index(following):], following]
            if following not in done:
                path.append(following)
                on_path.add(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_graph_covers_the_package() -> None:
    graph = import_graph()
    assert "yolov12.yolo" in graph and "yolov12.infer.predictor" in graph
    assert "yolov12.infer.predictor" in graph["yolov12.infer"], "a package's re-exports are edges"
    assert "yolov12.yolo" not in graph["yolov12"], "a lazy module __getattr__ is not an edge"
    assert "yolov12.yolo" not in import_graph(in_functions=True)["yolov12"]


def test_imports_in_skips_type_checking_and_reads_functions_on_request() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nimport a\nif TYPE_CHECKING:\n    import b\n"
                     "def f():\n    import c\nclass K:\n    import d\ndef __getattr__(name):\n    import e\n")

    def names(nodes: Iterator[ast.Import | ast.ImportFrom]) -> set[str]:
        return {alias.name for node in nodes for alias in node.names}

    assert names(imports_in(tree.body)) == {"TYPE_CHECKING", "a", "d"}
    assert names(imports_in(tree.body, in_functions=True)) == {"TYPE_CHECKING", "a", "c", "d"}


def test_yolov12_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle in yolov12/: " + " -> ".join(cycle)


def test_yolov12_has_no_import_cycle_through_deferred_imports() -> None:
    cycle = find_cycle(import_graph(in_functions=True))
    assert cycle is None, ("import circle in yolov12/ through imports inside functions (a lower layer reaching a "
                           "higher one): " + " -> ".join(cycle))


def test_find_cycle_reports_the_path() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
