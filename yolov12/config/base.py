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
            raise ConfigError(format_validation_error(exc, cls)) from None

    def updated(self, **changes: Any):
        """A validated copy with ``changes`` applied."""
        return type(self).from_overrides({**self.model_dump(), **changes})


def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{hint} Valid keys: {', '.join(sorted(valid))}"


_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per bad field: ``key=value: reason``.

    With the validated ``model``, a value outside its field's bounds names the whole range instead:
    ``translate=0.8 is out of range: use 0.0 <= translate <= 0.5``.
    """
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "value"
        bounds = allowed_range(model, error["loc"]) if model is not None and error["type"] in _BOUND_ERRORS else None
        if bounds:
            parts.append(f"{key}={error.get('input')!r} is out of range: use {bounds}")
        else:
            parts.append(f"{key}={error.get('input')!r}: {error['msg']}")
    return "; ".join(parts)


def allowed_range(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The bounds of the field at ``loc`` (nested sections followed) as ``0.0 <= translate <= 0.5``; None if none.

    Example:
        >>> from pydantic import Field
        >>> class Example(Section):
        ...     share: float = Field(0.5, ge=0.0, lt=1.0)
        >>> allowed_range(Example, ("share",))
        '0.0 <= share < 1.0'
    """
    field, owner = None, model
    for part in loc:
        fields = owner.model_fields if isinstance(owner, type) and issubclass(owner, BaseModel) else {}
        if part not in fields:
            return None
        field = fields[part]
        owner = field.annotation
    if field is None:
        return None
    lower = upper = ""
    for item in field.metadata:
        for attribute, text in (("ge", "{} <= "), ("gt", "{} < ")):
            if getattr(item, attribute, None) is not None:
                lower = text.format(getattr(item, attribute))
        for attribute, text in (("le", " <= {}"), ("lt", " < {}")):
            if getattr(item, attribute, None) is not None:
                upper = text.format(getattr(item, attribute))
    return f"{lower}{loc[-1]}{upper}" if lower or upper else None
