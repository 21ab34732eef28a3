"""The configuration reference, generated from the config objects themselves (so the docs cannot drift).

Each section becomes a Markdown table: key, type, default, allowed values, and the description from the section's
``Attributes:`` docstring block (``name: text`` or ``a, b: text`` lines). ``docs/configuration.md`` is written by
``scripts/config_reference.py``; a test checks that the file matches what this renders.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterable

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_ATTRIBUTE_LINE = re.compile(r"^ {4}([A-Za-z_][\w, ]*):\s+(.*)$")


def attribute_descriptions(model: type[BaseModel]) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` block of the class docstring (continuation lines joined)."""
    doc = inspect.getdoc(model) or ""
    if "Attributes:" not in doc:
        return {}
    found: dict[str, str] = {}
    names: list[str] = []
    for line in doc.split("Attributes:", 1)[1].splitlines():
        entry = _ATTRIBUTE_LINE.match(line)
        if entry and not line.startswith(" " * 8):
            names = [n.strip() for n in entry.group(1).split(",")]
            found.update(dict.fromkeys(names, entry.group(2).strip()))
        elif line.startswith(" " * 8) and names:
            for name in names:
                found[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return found


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        arguments = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{arguments}]".replace("Ellipsis", "...")
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _constraints(field: FieldInfo) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in field.metadata:
        for name, symbol in symbols.items():
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    return f"`{field.default!r}`"


def section_table(model: type[BaseModel]) -> str:
    """A Markdown table of ``model``'s fields."""
    descriptions = attribute_descriptions(model)
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # nested sections get their own table
        description = (field.description or descriptions.get(name, "")).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {_constraints(field)} "
                    f"| {description} |")
    return "\n".join(rows)


def render_reference(sections: Iterable[tuple[str, type[BaseModel]]], title: str = "Configuration reference") -> str:
    """The whole reference: a heading, the section's docstring summary and its table, per ``(heading, model)``."""
    parts = [f"# {title}", "", "Generated from the config objects by `scripts/config_reference.py`; do not edit.", ""]
    for heading, model in sections:
        summary = (inspect.getdoc(model) or "").split("\n\n", 1)[0].replace("\n", " ")
        parts += [f"## {heading}", "", summary, "", section_table(model), ""]
    return "\n".join(parts)
