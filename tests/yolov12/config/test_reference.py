from __future__ import annotations

from typing import Literal

from pydantic import Field

from yolov12.config.base import Section
from yolov12.config.reference import attribute_descriptions, render_reference, section_table


class Example(Section):
    """An example section.

    Attributes:
        size: image size in pixels,
            rounded up to the stride.
        low, high: the range.
        mode: how to run.
    """

    size: int = Field(640, ge=32, le=4096)
    low: float = 0.0
    high: float = 1.0
    mode: Literal["fast", "exact"] = "fast"
    tags: tuple[int, ...] | None = None


def test_descriptions_come_from_the_attributes_block() -> None:
    assert attribute_descriptions(Example) == {
        "size": "image size in pixels, rounded up to the stride.", "low": "the range.", "high": "the range.",
        "mode": "how to run.",
    }


def test_table_lists_every_field_with_type_default_and_bounds() -> None:
    rows = section_table(Example).splitlines()
    assert len(rows) == 2 + len(Example.model_fields)
    assert rows[2] == "| `size` | int | `640` | ≥ 32, ≤ 4096 | image size in pixels, rounded up to the stride. |"
    assert "'fast' \\| 'exact'" in rows[5] and "tuple[int, ...] \\| None" in rows[6]


def test_reference_has_one_heading_per_section() -> None:
    text = render_reference([("one", Example), ("two", Example)])
    assert text.count("\n## ") == 2 and "An example section." in text
