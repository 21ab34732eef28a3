"""Config section base: pydantic models that reject unknown keys with a 'did you mean' hint."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key, the bad value and what is allowed."""


class Section(BaseModel):
    """Base of every config section: frozen, strict about unknown keys, validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None = None, **kwargs: Any):
        """Build from keyword overrides (Python kwargs, CLI key=value, YAML), raising :class:`ConfigError`."""
        values = {**(overrides or {}), **kwargs}
        unknown = [k for k in values if k not in cls.model_fields]
        if unknown:
            raise ConfigError("; ".join(_unknown_key_message(k, list(cls.model_fields)) for k in unknown))
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None

    def updated(self, **changes: Any):
        """A validated copy with ``changes`` applied."""
        return type(self).from_overrides({**self.model_dump(), **changes})


def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{hint} Valid keys: {', '.join(sorted(valid))}"


def format_validation_error(exc: ValidationError) -> str:
    """One line per bad field: ``key=value: reason``."""
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "value"
        parts.append(f"{key}={error.get('input')!r}: {error['msg']}")
    return "; ".join(parts)
