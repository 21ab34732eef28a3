"""Parsing of Ultralytics-style ``key=value`` command-line arguments."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import yaml


class CommandLineError(ValueError):
    """A command-line argument is malformed or unknown; printed as one line."""


def parse_value(text: str) -> Any:
    """Type a CLI value the way YAML would (``0.3`` -> float, ``true`` -> bool, ``[0, 2]`` -> list, ``{decode: 1}``
    -> dict); else keep text. Only a braced mapping becomes a dict: ``a: b`` stays the text it was typed as."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, dict):
        return value if text.lstrip().startswith("{") else text
    return text if value is None and text.lower() not in ("null", "none", "~") else value


def parse_key_values(arguments: Iterable[str], valid_keys: Iterable[str], positional: tuple[str, ...] = (),
                     hints: dict[str, str] | None = None) -> dict:
    """``["model=a.yaml", "conf=0.3"]`` -> ``{"model": "a.yaml", "conf": 0.3}``.

    Bare words fill ``positional`` keys in order. Unknown keys raise :class:`CommandLineError` naming the closest
    valid key and listing all of them.
    """
    valid = list(valid_keys)
    values: dict[str, Any] = {}
    free = list(positional)
    for argument in arguments:
        if "=" not in argument:
            if not free:
                keys = ", ".join(valid)
                raise CommandLineError(f"unexpected argument '{argument}': use key=value, valid keys: {keys}")
            values[free.pop(0)] = argument
            continue
        key, _, text = argument.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if key not in valid:
            close = [hints[key]] if hints and key in hints else difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise CommandLineError(f"unknown key '{key}'{hint} Valid keys: {', '.join(valid)}")
        values[key] = parse_value(text.strip())
    return values
