"""Search spaces: YAML -> validated :class:`Parameter` objects -> Ray Tune domains, and back onto a training config.

Keys are training keys (``lr0``, ``momentum``, ``mosaic``, ``hsv_s``, ...) or AutoAlbument-Lite policy keys
``policy.<Op>.p`` / ``policy.<Op>.magnitude`` (``<Op>`` from the policy op table) and ``policy.schedule.start|end``.
Each value names one distribution::

    lr0: {loguniform: [1.0e-4, 1.0e-1]}
    optimizer: {choice: [SGD, AdamW]}
    close_mosaic: {randint: [0, 3]}          # both ends included
    policy.Blur.p: {uniform: [0.0, 0.5]}

Which ops a policy holds is searched too, in two ways (they combine):

    policy.ops: {choose: 3, from: [Blur, CLAHE, ToGray, GaussNoise]}   # a set of exactly 3 of these 4 ops
    policy.Sharpen.enabled: {choice: [true, false]}                   # this op in or out

``policy.ops`` is one categorical parameter over every k-subset of ``from``; a sample is the chosen names joined by
``+`` in ``from`` order (``"Blur+CLAHE+ToGray"``), which every search algorithm and PBT handle like any choice. With
it, a trial's policy holds exactly the chosen ops (plus ops switched on by ``enabled``); ``enabled: false`` takes an
op out. A chosen op keeps its base-policy ``p``/``magnitude``/``params``, else takes its searched values, else
``p`` 0.5 and ``magnitude`` 0.5; the ``p``/``magnitude`` sampled for an op left out are ignored.

Everything is checked before a trial starts (unknown key with a close match, low > high, negative probability,
loguniform with low <= 0, values the training config rejects); each error names the key.

Example:
    >>> space = SearchSpace.from_dict({"lr0": {"loguniform": [1e-4, 1e-1]}, "policy.Blur.p": {"uniform": [0, 0.5]}})
    >>> sorted(space.keys())
    ['lr0', 'policy.Blur.p']
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from yolov12.config.base import ConfigError
from yolov12.config.train import COMMON_MISTAKES, KEY_TO_SECTION, TrainConfig
from yolov12.data.augment.policy import AugmentPolicy, PolicyOp
from yolov12.data.augment.policy_ops import OPS

TUNABLE_SECTIONS = ("augment", "optim", "loss")
NOT_TUNABLE = frozenset({"augment_policy", "freeze"})  # the policy is tuned through policy.* keys; freeze: layers
TRAIN_KEYS: tuple[str, ...] = tuple(k for k, s in KEY_TO_SECTION.items() if s in TUNABLE_SECTIONS
                                    and k not in NOT_TUNABLE)
PROBABILITY_KEYS = frozenset({"fliplr", "flipud", "mosaic", "mixup", "copy_paste"})
POLICY_PREFIX = "policy."
POLICY_OP_FIELDS = ("p", "magnitude", "enabled")
POLICY_SCHEDULE_FIELDS = ("start", "end")
POLICY_OPS_KEY = "policy.ops"
OPS_SEPARATOR = "+"
MAX_OP_SETS = 10_000  # policy.ops: more k-subsets than this is not a search a sweep can cover
Kind = Literal["uniform", "loguniform", "choice", "randint"]


class SearchSpaceError(ConfigError):
    """A search-space entry is invalid; the message names the key and the fix."""


class Parameter(BaseModel):
    """One searched key: a distribution over ``[low, high]`` (``randint``: both ends included) or ``values``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    pool: tuple[str, ...] = ()  # policy.ops: the ops its subsets are drawn from

    @property
    def is_policy(self) -> bool:
        return self.key.startswith(POLICY_PREFIX)

    @property
    def selects_ops(self) -> bool:
        """True for ``policy.ops`` and ``policy.<Op>.enabled``: the sample says which ops are in the policy."""
        return self.key == POLICY_OPS_KEY or self.key.endswith(".enabled")

    def candidates(self) -> list[Any]:
        """The values every sample must be valid for: the two ends, or every choice."""
        if self.kind == "choice":
            return list(self.values)
        low, high = (int(self.low), int(self.high)) if self.kind == "randint" else (self.low, self.high)
        return [low, high]

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.values
        return self.low <= float(value) <= self.high

    def to_tune(self) -> Any:
        """The Ray Tune domain (imported here: building a space must not need Ray)."""
        from ray import tune  # noqa: PLC0415

        return DOMAINS[self.kind](tune, self)

    def clip(self, value: Any) -> Any:
        """``value`` moved into ``[low, high]`` (``randint``: rounded); a choice is returned as is."""
        if self.kind == "choice":
            return value
        clipped = min(max(float(plain(value)), self.low), self.high)
        return int(round(clipped)) if self.kind == "randint" else clipped


DOMAINS: dict[str, Callable[[Any, Parameter], Any]] = {
    "uniform": lambda tune, p: tune.uniform(p.low, p.high),
    "loguniform": lambda tune, p: tune.loguniform(p.low, p.high),
    "choice": lambda tune, p: tune.choice(list(p.values)),
    "randint": lambda tune, p: tune.randint(int(p.low), int(p.high) + 1),  # Ray's upper end is exclusive
}


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_key(key: str) -> None:
    """Raise :class:`SearchSpaceError` unless ``key`` is a tunable training key or a policy key."""
    if key.startswith(POLICY_PREFIX):
        parts = key.split(".")
        if key == POLICY_OPS_KEY:
            return
        if len(parts) == 3 and parts[1] == "schedule":
            if parts[2] not in POLICY_SCHEDULE_FIELDS:
                raise SearchSpaceError(f"space key '{key}': the schedule field must be one of "
                                       f"{POLICY_SCHEDULE_FIELDS}{_hint(parts[2], list(POLICY_SCHEDULE_FIELDS))}")
            return
        if len(parts) != 3:
            raise SearchSpaceError(f"space key '{key}': policy keys look like policy.<Op>.p|magnitude|enabled, "
                                   "policy.ops or policy.schedule.start|end")
        if parts[1] not in OPS:
            raise SearchSpaceError(f"space key '{key}': unknown policy op '{parts[1]}'{_hint(parts[1], list(OPS))} "
                                   f"Ops: {', '.join(sorted(OPS))}")
        if parts[2] not in POLICY_OP_FIELDS:
            raise SearchSpaceError(f"space key '{key}': a policy op is tuned by {POLICY_OP_FIELDS}"
                                   f"{_hint(parts[2], list(POLICY_OP_FIELDS))}")
        return
    if key in TRAIN_KEYS:
        return
    if key in KEY_TO_SECTION:
        raise SearchSpaceError(f"space key '{key}' is not searchable (it fixes what/how long to train); set it under "
                               "train: in the sweep config. Searchable: the augment, optim and loss keys and policy.*")
    policy_keys = [f"policy.{op}.{f}" for op in OPS for f in POLICY_OP_FIELDS]
    hint = f"; did you mean '{COMMON_MISTAKES[key]}'?" if key in COMMON_MISTAKES else _hint(key, [*TRAIN_KEYS,
                                                                                                  *policy_keys])
    raise SearchSpaceError(f"unknown space key '{key}'{hint} "
                           f"Searchable keys: {', '.join(TRAIN_KEYS)}, policy.<Op>.p|magnitude|enabled, "
                           "policy.ops, policy.schedule.start|end")


def parse_parameter(key: str, spec: Any) -> Parameter:
    """``{"loguniform": [1e-4, 0.1]}`` -> :class:`Parameter`, with every check that needs no other key."""
    check_key(key)
    if key == POLICY_OPS_KEY:
        return parse_op_sets(key, spec)
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise SearchSpaceError(f"space key '{key}': give exactly one distribution, e.g. {{uniform: [0.0, 0.5]}} "
                               f"(one of {', '.join(DOMAINS)}), got {spec!r}")
    kind, args = next(iter(spec.items()))
    if kind not in DOMAINS:
        raise SearchSpaceError(f"space key '{key}': unknown distribution '{kind}'{_hint(str(kind), list(DOMAINS))} "
                               f"Distributions: {', '.join(DOMAINS)}")
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise SearchSpaceError(f"space key '{key}': choice needs a non-empty list, got {args!r}")
        parameter = Parameter(key=key, kind=kind, values=tuple(args))
    else:
        parameter = Parameter(key=key, kind=kind, **_bounds(key, kind, args))
    _check_values(parameter)
    return parameter


def _bounds(key: str, kind: str, args: Any) -> dict[str, float]:
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise SearchSpaceError(f"space key '{key}': {kind} needs [low, high], got {args!r}")
    try:
        low, high = float(args[0]), float(args[1])
    except (TypeError, ValueError):
        raise SearchSpaceError(f"space key '{key}': {kind} bounds must be numbers, got {args!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SearchSpaceError(f"space key '{key}': {kind} bounds must be finite, got {args!r}")
    if low > high:
        raise SearchSpaceError(f"space key '{key}': low {low:g} > high {high:g}; swap them")
    if kind == "loguniform" and low <= 0:
        raise SearchSpaceError(f"space key '{key}': loguniform needs low > 0, got {low:g}; use uniform or a "
                               "positive low")
    if kind == "randint" and (low != int(low) or high != int(high)):
        raise SearchSpaceError(f"space key '{key}': randint bounds must be integers, got {args!r}")
    return {"low": low, "high": high}


def parse_op_sets(key: str, spec: Any) -> Parameter:
    """``{"choose": k, "from": [ops]}`` -> a choice over every k-subset of the ops, each as ``"A+B+C"``."""
    example = "{choose: 2, from: [Blur, CLAHE, ToGray]}"
    if not isinstance(spec, Mapping) or set(spec) != {"choose", "from"}:
        raise SearchSpaceError(f"space key '{key}': give {example}, got {spec!r}")
    pool, k = spec["from"], spec["choose"]
    if not isinstance(pool, (list, tuple)) or not pool or not all(isinstance(name, str) for name in pool):
        raise SearchSpaceError(f"space key '{key}': 'from' must be a non-empty list of op names, got {pool!r}")
    for name in pool:
        if name not in OPS:
            raise SearchSpaceError(f"space key '{key}': unknown policy op '{name}'{_hint(name, list(OPS))} "
                                   f"Ops: {', '.join(sorted(OPS))}")
    repeated = sorted({name for name in pool if pool.count(name) > 1})
    if repeated:
        raise SearchSpaceError(f"space key '{key}': 'from' lists {', '.join(repeated)} more than once; list each op "
                               "once")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(pool):
        raise SearchSpaceError(f"space key '{key}': choose={k!r} must be an integer from 1 to the {len(pool)} ops in "
                               "'from'")
    if math.comb(len(pool), k) > MAX_OP_SETS:
        raise SearchSpaceError(f"space key '{key}': choose {k} of {len(pool)} ops gives {math.comb(len(pool), k)} "
                               f"sets (at most {MAX_OP_SETS}); list fewer ops in 'from'")
    sets = tuple(OPS_SEPARATOR.join(names) for names in itertools.combinations(pool, k))
    return Parameter(key=key, kind="choice", values=sets, pool=tuple(pool))


def chosen_ops(values: Mapping[str, Any]) -> tuple[set[str] | None, set[str], set[str]]:
    """(ops of ``policy.ops`` or None when it is not searched, ops switched on, ops switched off by ``enabled``)."""
    chosen = values.get(POLICY_OPS_KEY)
    chosen = set(str(plain(chosen)).split(OPS_SEPARATOR)) - {""} if chosen is not None else None
    on, off = set(), set()
    for key, value in values.items():
        if key.startswith(POLICY_PREFIX) and key.endswith(".enabled"):
            (on if plain(value) else off).add(key.split(".")[1])
    return chosen, on, off


def _check_values(parameter: Parameter) -> None:
    """Probabilities are never negative; every end/choice must be a value the training config accepts."""
    key = parameter.key
    if parameter.selects_ops:
        if parameter.kind != "choice" or not all(isinstance(v, bool) for v in parameter.values):
            raise SearchSpaceError(f"space key '{key}': an op is switched in or out by a choice of booleans, e.g. "
                                   "{choice: [true, false]}")
        return
    is_probability = parameter.is_policy or key in PROBABILITY_KEYS
    for value in parameter.candidates():
        if is_probability and isinstance(value, (int, float)) and value < 0:
            raise SearchSpaceError(f"space key '{key}': negative probability {value!r}; probabilities and "
                                   "magnitudes are in [0, 1]")
        if parameter.is_policy:
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise SearchSpaceError(f"space key '{key}': {value!r} is outside [0, 1]")
            continue
        try:
            TrainConfig.from_overrides({key: value})
        except ConfigError as exc:
            raise SearchSpaceError(f"space key '{key}': value {value!r} is not valid for training ({exc})") from None


class SearchSpace(BaseModel):
    """The validated parameters of a sweep, in declaration order."""

    model_config = ConfigDict(frozen=True)

    parameters: tuple[Parameter, ...] = ()

    @classmethod
    def from_dict(cls, space: Mapping[str, Any] | None) -> SearchSpace:
        """Parse and check every entry (the first bad key raises, named in the message)."""
        if space is None:
            space = {}
        if not isinstance(space, Mapping):
            raise SearchSpaceError(f"space must be a mapping of key: {{distribution: args}}, got {space!r}")
        if not space:
            raise SearchSpaceError("space is empty: declare at least one key, e.g. lr0: {loguniform: [1e-4, 1e-1]}")
        parsed = cls(parameters=tuple(parse_parameter(str(k), v) for k, v in space.items()))
        parsed.check_selected_ops()
        return parsed

    def check_selected_ops(self) -> None:
        """With ``policy.ops``, a ``p``/``magnitude`` key of an op it never chooses (and no ``enabled`` key turns
        on) would never reach a trial: refuse it, naming the key."""
        selection = next((p for p in self.parameters if p.key == POLICY_OPS_KEY), None)
        if selection is None:
            return
        switchable = {p.key.split(".")[1] for p in self.parameters if p.key.endswith(".enabled")}
        for parameter in self.parameters:
            parts = parameter.key.split(".")
            if parameter.is_policy and len(parts) == 3 and parts[2] in ("p", "magnitude"):
                if parts[1] not in selection.pool and parts[1] not in switchable:
                    raise SearchSpaceError(f"space key '{parameter.key}': op '{parts[1]}' is not in policy.ops' "
                                           "'from' list, so no trial's policy holds it; add it there or remove the "
                                           "key")

    def keys(self) -> list[str]:
        return [p.key for p in self.parameters]

    def to_tune(self) -> dict[str, Any]:
        """``{key: ray.tune domain}`` for ``Tuner(param_space=...)``."""
        return {p.key: p.to_tune() for p in self.parameters}

    def to_pbt_mutations(self) -> dict[str, Any]:
        """PBT's ``hyperparam_mutations``: the domain of a range, the value list of a choice.

        PBT perturbs a domain's value by multiplying it (x0.8 / x1.2), which a choice cannot take (``"SGD" * 1.2``
        fails, a numeric choice leaves its values); a list is perturbed by moving to a neighbouring value.
        """
        return {p.key: list(p.values) if p.kind == "choice" else p.to_tune() for p in self.parameters}

    def clip(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with each searched value moved back into its range (PBT's ``custom_explore_fn``).

        A x1.2 perturbation can leave the range, e.g. a probability or policy magnitude above 1, which the
        training config or the policy then rejects.
        """
        out = dict(config)
        for parameter in self.parameters:
            if parameter.key in out:
                out[parameter.key] = parameter.clip(out[parameter.key])
        return out

    def defaults(self, base: TrainConfig, policy: AugmentPolicy | None) -> dict[str, Any]:
        """Each key's value in the base training config (absent policy ops: p 0, magnitude 0.5, i.e. off)."""
        flat = base.to_flat()
        ops = {op.name: op for op in (policy.ops if policy else ())}
        out: dict[str, Any] = {}
        for parameter in self.parameters:
            key = parameter.key
            if not parameter.is_policy:
                out[key] = flat[key]
                continue
            if key == POLICY_OPS_KEY:
                out[key] = OPS_SEPARATOR.join(name for name in parameter.pool if name in ops)
                continue
            _, head, field = key.split(".")
            if head == "schedule":
                out[key] = getattr((policy or AugmentPolicy()).schedule, field)
            elif field == "enabled":
                out[key] = head in ops
            else:
                out[key] = getattr(ops.get(head, PolicyOp(head, p=0.0)), field)
        return out

    def check_defaults(self, base: TrainConfig, policy: AugmentPolicy | None) -> dict[str, Any]:
        """:meth:`defaults`, raising when one lies outside its range (it is then not a valid first trial)."""
        defaults = self.defaults(base, policy)
        for parameter in self.parameters:
            if not parameter.contains(defaults[parameter.key]):
                raise SearchSpaceError(f"space key '{parameter.key}': the base value {defaults[parameter.key]!r} is "
                                       "outside the searched range; widen it or set search.evaluate_base=false")
        return defaults


def plain(value: Any) -> Any:
    """numpy scalars (as Ray Tune samples them) -> Python numbers."""
    return value.item() if hasattr(value, "item") else value


def select_policy_ops(ops: list[dict[str, Any]], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The op dicts a trial keeps: exactly those ``policy.ops`` chose (when searched) plus ``enabled: true``, minus
    ``enabled: false``; a chosen op missing from ``ops`` is appended with ``p`` and ``magnitude`` 0.5."""
    chosen, on, off = chosen_ops(values)
    keep = (chosen | on if chosen is not None else {op["name"] for op in ops} | on) - off
    kept = [op for op in ops if op["name"] in keep]
    present = {op["name"] for op in kept}
    ordered = [*(chosen_order(values) if chosen is not None else []), *sorted(on)]
    for name in dict.fromkeys(ordered):
        if name in keep and name not in present:
            kept.append({"name": name, "p": 0.5, "magnitude": 0.5, "params": {}})
    return kept


def chosen_order(values: Mapping[str, Any]) -> list[str]:
    """The names of a ``policy.ops`` sample in their ``from`` order."""
    return [name for name in str(plain(values[POLICY_OPS_KEY])).split(OPS_SEPARATOR) if name]


def apply_policy_values(policy: AugmentPolicy | None, values: Mapping[str, Any]) -> AugmentPolicy:
    """The base policy with ``policy.<Op>.<field>`` / ``policy.schedule.<field>`` values set (missing ops appended).

    Op selection first (:func:`select_policy_ops`); the ``p``/``magnitude`` of an op left out (``enabled: false``,
    or not chosen by a searched ``policy.ops``) is ignored. Any other op named by a ``p``/``magnitude`` key and
    missing from the policy is appended with ``p`` 0 unless ``p`` is searched.
    """
    data = (policy or AugmentPolicy()).to_dict()
    chosen, on, off = chosen_ops(values)
    ops = data["ops"] = select_policy_ops(data["ops"], values)
    for key, value in values.items():
        if key == POLICY_OPS_KEY or key.endswith(".enabled"):
            continue
        _, head, field = key.split(".")
        if head != "schedule" and (head in off or (chosen is not None and head not in chosen | on)):
            continue
        if head == "schedule":
            data["schedule"][field] = plain(value)
            if data["schedule"].get("kind") == "constant" and field == "start":
                data["schedule"]["kind"] = "linear"  # a start value only means something on a ramp
            continue
        matches = [op for op in ops if op["name"] == head]
        if not matches:
            matches = [{"name": head, "p": 0.0, "magnitude": 0.5, "params": {}}]
            ops.append(matches[0])
        for op in matches:
            op[field] = plain(value)
    return AugmentPolicy.from_dict(data)


def trial_train_config(base: TrainConfig, policy: AugmentPolicy | None, values: Mapping[str, Any],
                       policy_path: str | Path) -> TrainConfig:
    """The training config of one trial: ``values`` applied to ``base``; policy values written to ``policy_path``.

    Only searched keys change; everything else is the base config (its own ``augment_policy`` included).
    """
    train = {k: plain(v) for k, v in values.items() if not k.startswith(POLICY_PREFIX)}
    policy_values = {k: v for k, v in values.items() if k.startswith(POLICY_PREFIX)}
    if policy_values:
        path = Path(policy_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        apply_policy_values(policy, policy_values).save(path)
        train["augment_policy"] = str(path.resolve())
    return base.updated(**train)
