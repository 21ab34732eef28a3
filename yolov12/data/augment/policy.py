"""AutoAlbument-Lite: an augmentation policy as data, with a magnitude schedule over epochs.

A policy is a list of ops ``{name, p, magnitude, params}`` (``name`` from :data:`~.policy_ops.OPS`, ``p`` and
``magnitude`` in [0, 1]) plus a :class:`MagnitudeSchedule`. It round-trips through dicts, YAML, JSON and a flat form
(``{"op0.name": "Blur", "op0.p": 0.3, ...}``) that a Ray Tune search space can use key by key, and compiles to one
``A.Compose`` that keeps boxes (and polygons, as keypoints) consistent.

:func:`load_policy` reads ``augment_policy``: a YAML/JSON file, or the name of a policy shipped in the package
(``yolov12/assets/policies/<name>.yaml``, listed by :func:`shipped_policies`), e.g.
``augment_policy=sample-photo-best``.

Example:
    >>> policy = AugmentPolicy.from_dict({
    ...     "ops": [{"name": "Blur", "p": 0.2, "magnitude": 0.5}, {"name": "CLAHE", "p": 0.1, "magnitude": 1.0}],
    ...     "schedule": {"kind": "linear", "start": 0.2, "end": 1.0},
    ... })
    >>> AugmentPolicy.from_flat(policy.to_flat()) == policy
    True
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from yolov12.data.augment.policy_ops import OPS

logger = logging.getLogger(__name__)

ScheduleKind = Literal["constant", "linear", "cosine"]
SCHEDULE_KINDS: tuple[str, ...] = ("constant", "linear", "cosine")
OP_KEYS: tuple[str, ...] = ("name", "p", "magnitude", "params")
SCHEDULE_KEYS: tuple[str, ...] = ("kind", "start", "end")


class PolicyError(ValueError):
    """A policy (or one of its ops) is malformed; the message names the op, the key and the fix."""


class UnknownPolicyOpError(PolicyError):
    """A policy names an op that is not in the table."""


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _check_keys(given: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in given if key not in allowed]
    if unknown:
        key = unknown[0]
        raise PolicyError(f"{where}: unknown key {key!r}{_did_you_mean(key, list(allowed))} Allowed: {allowed}")


def _unit_interval(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PolicyError(f"{what} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        raise PolicyError(f"{what} must be in [0, 1], got {value!r}")
    return number


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    return value


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_lists_to_tuples(v) for v in value)
    return value


@dataclass(frozen=True)
class PolicyOp:
    """One op of a policy: an albumentations transform applied with probability ``p`` at ``magnitude``.

    Attributes:
        name: key of :data:`~yolov12.data.augment.policy_ops.OPS` (an albumentations transform name).
        p: probability of applying it, in [0, 1].
        magnitude: strength in [0, 1], mapped to the transform's parameters by the op table.
        params: extra keyword arguments for the transform; they override the magnitude mapping.
    """

    name: str
    p: float = 0.5
    magnitude: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in OPS:
            raise UnknownPolicyOpError(
                f"unknown augmentation op {self.name!r}{_did_you_mean(self.name, list(OPS))} "
                f"Supported ops: {', '.join(sorted(OPS))}"
            )
        object.__setattr__(self, "p", _unit_interval(self.p, f"op {self.name!r}: p"))
        object.__setattr__(self, "magnitude", _unit_interval(self.magnitude, f"op {self.name!r}: magnitude"))
        if not isinstance(self.params, Mapping):
            raise PolicyError(f"op {self.name!r}: params must be a mapping, got {type(self.params).__name__}")
        if "p" in self.params:
            raise PolicyError(f"op {self.name!r}: give the probability as the op's 'p', not inside params")
        object.__setattr__(self, "params", {str(k): _lists_to_tuples(v) for k, v in self.params.items()})

    def transform_kwargs(self, magnitude_scale: float = 1.0) -> dict[str, Any]:
        """Keyword arguments for the albumentations class at ``magnitude * magnitude_scale`` (clipped to [0, 1])."""
        spec = OPS[self.name]
        magnitude = min(1.0, max(0.0, self.magnitude * magnitude_scale))
        return {**spec.fixed, **spec.by_magnitude(magnitude), **self.params, "p": self.p}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, not tuples), safe for YAML and JSON."""
        return {"name": self.name, "p": self.p, "magnitude": self.magnitude, "params": _tuples_to_lists(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "op") -> PolicyOp:
        """Build from ``{name, p?, magnitude?, params?}``, rejecting unknown keys."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where} must be a mapping like {{'name': 'Blur', 'p': 0.5}}, got {data!r}")
        _check_keys(data, OP_KEYS, where)
        if "name" not in data:
            raise PolicyError(f"{where}: missing 'name' (one of {', '.join(sorted(OPS))})")
        return cls(
            name=data["name"],
            p=data.get("p", 0.5),
            magnitude=data.get("magnitude", 0.5),
            params=dict(data.get("params") or {}),
        )


@dataclass(frozen=True)
class MagnitudeSchedule:
    """A factor on every op's magnitude as training goes on.

    ``constant`` keeps ``end``; ``linear`` and ``cosine`` go from ``start`` at the first epoch to ``end`` at the last.

    Example:
        >>> MagnitudeSchedule("linear", start=0.0, end=1.0).factor(epoch=5, total_epochs=11)
        0.5
    """

    kind: ScheduleKind = "constant"
    start: float = 1.0
    end: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise PolicyError(
                f"unknown schedule kind {self.kind!r}{_did_you_mean(str(self.kind), list(SCHEDULE_KINDS))} "
                f"Allowed: {SCHEDULE_KINDS}"
            )
        object.__setattr__(self, "start", _unit_interval(self.start, "schedule start"))
        object.__setattr__(self, "end", _unit_interval(self.end, "schedule end"))

    def factor(self, epoch: int, total_epochs: int) -> float:
        """The magnitude factor at 0-based ``epoch`` of ``total_epochs``."""
        if self.kind == "constant":
            return self.end
        progress = min(1.0, max(0.0, epoch / max(1, total_epochs - 1)))
        if self.kind == "cosine":
            progress = (1.0 - math.cos(math.pi * progress)) / 2.0
        return self.start + (self.end - self.start) * progress

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MagnitudeSchedule:
        _check_keys(data, SCHEDULE_KEYS, "schedule")
        return cls(**dict(data))


@dataclass(frozen=True)
class AugmentPolicy:
    """A validated list of :class:`PolicyOp` plus a :class:`MagnitudeSchedule`. Immutable; compare with ``==``."""

    ops: tuple[PolicyOp, ...] = ()
    schedule: MagnitudeSchedule = field(default_factory=MagnitudeSchedule)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    @property
    def is_geometric(self) -> bool:
        """True when some op moves pixels (with a non-zero probability)."""
        return any(OPS[op.name].geometric and op.p > 0 for op in self.ops)

    # --- plain data -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"ops": [...], "schedule": {...}}`` with lists only (YAML/JSON safe)."""
        return {"ops": [op.to_dict() for op in self.ops], "schedule": self.schedule.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | list[Any]) -> AugmentPolicy:
        """From :meth:`to_dict` output; a bare list is taken as the ops with a constant schedule."""
        if isinstance(data, list):
            data = {"ops": data}
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a mapping with 'ops' (and 'schedule'), got {type(data).__name__}")
        _check_keys(data, ("ops", "schedule"), "policy")
        ops = data.get("ops") or []
        if not isinstance(ops, list):
            raise PolicyError(f"policy 'ops' must be a list, got {type(ops).__name__}")
        parsed = tuple(PolicyOp.from_dict(op, where=f"ops[{i}]") for i, op in enumerate(ops))
        return cls(parsed, MagnitudeSchedule.from_dict(data.get("schedule") or {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> AugmentPolicy:
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> AugmentPolicy:
        return cls.from_dict(yaml.safe_load(text) or {})

    @classmethod
    def load(cls, path: str | Path) -> AugmentPolicy:
        """Read a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        text = path.read_text()
        return cls.from_json(text) if path.suffix.lower() == ".json" else cls.from_yaml(text)

    def save(self, path: str | Path) -> None:
        """Write YAML, or JSON when the suffix is ``.json``."""
        path = Path(path)
        path.write_text(self.to_json() if path.suffix.lower() == ".json" else self.to_yaml())

    # --- flat form for search spaces ------------------------------------------------------------------------------
    def to_flat(self) -> dict[str, Any]:
        """``{"op0.name": ..., "op0.p": ..., "op0.magnitude": ..., "op0.params.KEY": ..., "schedule.kind": ...}``."""
        flat: dict[str, Any] = {}
        for index, op in enumerate(self.ops):
            data = op.to_dict()
            for key in ("name", "p", "magnitude"):
                flat[f"op{index}.{key}"] = data[key]
            for key, value in data["params"].items():
                flat[f"op{index}.params.{key}"] = value
        for key, value in self.schedule.to_dict().items():
            flat[f"schedule.{key}"] = value
        return flat

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> AugmentPolicy:
        """Inverse of :meth:`to_flat`; numbers may be numpy scalars (as Ray Tune samples them)."""
        ops: dict[int, dict[str, Any]] = {}
        schedule: dict[str, Any] = {}
        for key, value in flat.items():
            value = value.item() if hasattr(value, "item") else value
            head, _, rest = key.partition(".")
            if head == "schedule" and rest:
                schedule[rest] = value
            elif head.startswith("op") and head[2:].isdigit() and rest:
                op = ops.setdefault(int(head[2:]), {})
                if rest.startswith("params."):
                    op.setdefault("params", {})[rest.removeprefix("params.")] = value
                else:
                    op[rest] = value
            else:
                raise PolicyError(f"flat policy key {key!r} is not of the form 'op<i>.<field>' or 'schedule.<field>'")
        missing = sorted(set(range(max(ops, default=-1) + 1)) - set(ops))
        if missing:
            raise PolicyError(f"flat policy has no keys for op index(es) {missing}; ops must be numbered 0..n-1")
        return cls.from_dict({"ops": [ops[i] for i in sorted(ops)], "schedule": schedule})


SHIPPED_SUFFIX = ".yaml"


def _shipped_folder() -> Any:
    """The package folder of shipped policies (an importlib.resources Traversable)."""
    return importlib.resources.files("yolov12") / "assets" / "policies"


def shipped_policies() -> list[str]:
    """Names of the policies shipped in the package, sorted (``augment_policy=<name>`` loads one)."""
    folder = _shipped_folder()
    if not folder.is_dir():
        return []
    return sorted(item.name.removesuffix(SHIPPED_SUFFIX) for item in folder.iterdir()
                  if item.name.endswith(SHIPPED_SUFFIX))


def load_policy(reference: AugmentPolicy | Mapping[str, Any] | list[Any] | str | Path) -> AugmentPolicy:
    """A policy from an object, its dict form, a ``.yaml``/``.yml``/``.json`` file, or a shipped policy's name.

    A path that exists wins over a shipped name.

    Raises:
        PolicyError: when a string is neither an existing file nor a shipped name (the message lists the shipped
            names), or the policy itself is malformed.

    Example:
        >>> load_policy("sample-photo-best").ops[0].name in OPS
        True
    """
    if isinstance(reference, AugmentPolicy):
        return reference
    if not isinstance(reference, (str, Path)):
        return AugmentPolicy.from_dict(reference)
    path = Path(reference)
    if path.is_file():
        return AugmentPolicy.load(path)
    names = shipped_policies()
    if str(reference) in names:
        return AugmentPolicy.from_yaml((_shipped_folder() / f"{reference}{SHIPPED_SUFFIX}").read_text())
    raise PolicyError(f"augment_policy={str(reference)!r} is neither a policy file nor a shipped policy"
                      f"{_did_you_mean(str(reference), names)} Give a .yaml/.json path or a shipped name: "
                      f"{', '.join(names) or '(none shipped)'}")
