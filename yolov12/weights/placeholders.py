"""Inert stand-ins for the classes a foreign pickle names, and readers that turn them into plain data.

A foreign checkpoint (Ultralytics, official YOLOv12) pickles whole ``nn.Module`` trees of classes we do not import.
The restricted unpickler replaces each such class by a :class:`Placeholder` subclass of the same qualified name that
only records what the pickle hands it (constructor arguments, ``__setstate__`` state, appended items). No foreign
code runs; the recorded ``nn.Module`` state (``_parameters``, ``_buffers``, ``_modules``) is enough to rebuild the
state dict.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

import torch

from yolov12.models.architecture import BatchNormSettings
from yolov12.weights.budget import MAX_NESTING_DEPTH, MIN_BUDGET_BYTES, AllocationBudget, short_repr
from yolov12.weights.errors import CorruptCheckpointError

SMALL_TENSOR_ELEMENTS = 16  # tensors in training arguments up to this size become lists, larger ones a description
MAX_MODULE_DEPTH = 64  # real module trees are under 10 levels deep
# Bytes counted against the file's budget for what these readers build (Python objects, not tensors):
ITEM_BYTES = 128  # one constructor argument of a placeholder, one item a container constructor copies
STATE_ENTRY_BYTES = 512  # one state-dict entry besides its key: the slot and the detached tensor (measured ~450)
MODULE_VISIT_BYTES = 256  # one module of the tree, each time it is reached (a tree may share modules)
PLAIN_VALUE_BYTES = 64  # one converted plain-data value, besides its characters
BATCH_NORM_ENTRY_BYTES = 256  # one BatchNorm's recorded settings besides its path (slot, dataclass, two floats)
BATCH_NORM_PREFIX = "torch.nn.modules.batchnorm."  # BatchNorm1d/2d/3d, SyncBatchNorm
# Converted values go one level down into the metadata document (its training_args), which nests at most
# MAX_NESTING_DEPTH levels; so they nest two levels less.
MAX_PLAIN_DEPTH = MAX_NESTING_DEPTH - 2

# The budget of the load in progress on this thread: placeholders count the arguments a pickle passes them (one
# large tuple handed to many constructors would otherwise be copied each time).
_LOAD_BUDGET: ContextVar[AllocationBudget | None] = ContextVar("yolov12_placeholder_budget", default=None)


@contextmanager
def counting_arguments(budget: AllocationBudget) -> Iterator[None]:
    """While active (on this thread), every placeholder built counts its constructor arguments against ``budget``."""
    token = _LOAD_BUDGET.set(budget)
    try:
        yield
    finally:
        _LOAD_BUDGET.reset(token)


class Placeholder:
    """Records how a pickle builds an object of a class we never import.

    Attributes:
        qualified_name: ``module.Class`` named by the pickle (class attribute).
        args / kwargs: arguments of the constructor call (``REDUCE`` / ``NEWOBJ``).
        state: what ``BUILD`` passed (an ``nn.Module``'s ``__dict__``), None when nothing was.
        items / mapping: what ``APPENDS`` / ``SETITEMS`` added (list and dict subclasses).
    """

    qualified_name: str = "<placeholder>"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        budget = _LOAD_BUDGET.get()
        if budget is not None:
            budget.charge(ITEM_BYTES * (len(args) + len(kwargs)), f"the argument list of {cls.qualified_name}")
        obj = super().__new__(cls)
        obj.args, obj.kwargs = args, kwargs
        obj.state, obj.items, obj.mapping = None, [], {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # arguments were recorded by __new__
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.mapping[key] = value

    def append(self, value: Any) -> None:
        self.items.append(value)

    def extend(self, values: Any) -> None:
        self.items.extend(values)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<placeholder {self.qualified_name}>"

    def attribute(self, name: str, default: Any = None) -> Any:
        """An entry of the recorded ``__dict__`` state (e.g. ``yaml``, ``names`` of a model), or ``default``."""
        state = self.state[0] if isinstance(self.state, tuple) and self.state else self.state
        return state.get(name, default) if isinstance(state, dict) else default


@functools.lru_cache(maxsize=1024)
def placeholder_class(qualified_name: str) -> type[Placeholder]:
    """The placeholder class for ``module.Class`` (one class per name, cached)."""
    short = qualified_name.rsplit(".", 1)[-1] or "Placeholder"
    return type(short, (Placeholder,), {"qualified_name": qualified_name, "__module__": __name__})


def is_module_placeholder(obj: Any) -> bool:
    """True for a placeholder whose recorded state looks like an ``nn.Module`` ``__dict__``."""
    return isinstance(obj, Placeholder) and isinstance(obj.attribute("_modules"), dict)


def placeholder_state_dict(
    module: Placeholder, prefix: str = "", *, budget: AllocationBudget | None = None, origin: str = "checkpoint",
) -> OrderedDict[str, torch.Tensor]:
    """Flat state dict of a placeholder ``nn.Module`` tree, keyed exactly as ``module.state_dict()`` would be.

    Order and content follow ``nn.Module.state_dict``: a module's parameters, then its persistent buffers (names in
    ``_non_persistent_buffers_set`` are skipped), then each child under ``<name>.`` (ModuleList / Sequential
    children are named ``0``, ``1``...). ``None`` entries are skipped.

    Args:
        module: the root placeholder.
        prefix: prepended to every key.
        budget: counts the keys built (default: a fresh ``MIN_BUDGET_BYTES`` budget).
        origin: the checkpoint, named in errors.

    Raises:
        TypeError: ``module`` is not a placeholder module.
        CorruptCheckpointError: the tree contains itself, nests deeper than ``MAX_MODULE_DEPTH`` or holds something
            other than tensors and modules.

    Example:
        >>> model = read_foreign_checkpoint("yolo12n.pt")["model"]  # doctest: +SKIP
        >>> placeholder_state_dict(model)["model.0.conv.weight"].shape  # doctest: +SKIP
        torch.Size([16, 3, 3, 3])
    """
    if not is_module_placeholder(module):
        raise TypeError(f"expected a placeholder nn.Module (with recorded _modules), got {short_repr(module)}")
    walk = _StateDictWalk(budget or AllocationBudget(MIN_BUDGET_BYTES, origin), origin)
    entries, visits = walk.measure(module, prefix, set())
    walk.budget.charge(entries * STATE_ENTRY_BYTES + visits * MODULE_VISIT_BYTES,
                       f"the state dict ({entries} entries over {visits} module visits)")
    walk.collect(module, prefix)
    return walk.result


def placeholder_batch_norms(
    module: Placeholder, *, budget: AllocationBudget | None = None, origin: str = "checkpoint",
) -> dict[str, BatchNormSettings]:
    """``eps`` and ``momentum`` of every BatchNorm in a placeholder ``nn.Module`` tree, keyed by module path.

    Paths are those of ``named_modules()`` (``model.0.bn``), i.e. the state-dict prefix of the module's tensors, so
    they map onto our model as its weights do. Only BatchNorms that hold tensors are reported (those the state dict
    reaches); one that records no ``eps`` or ``momentum`` is left out.

    Raises:
        TypeError: ``module`` is not a placeholder module.
        CorruptCheckpointError: a malformed tree (see :func:`placeholder_state_dict`), or an ``eps`` / ``momentum``
            of the wrong type or out of range.

    Example:
        >>> placeholder_batch_norms(read_foreign_checkpoint("yolo12n-cls.pt")["model"])["model.0.bn"]  # doctest: +SKIP
        BatchNormSettings(eps=1e-05, momentum=0.1)
    """
    if not is_module_placeholder(module):
        raise TypeError(f"expected a placeholder nn.Module (with recorded _modules), got {short_repr(module)}")
    walk = _StateDictWalk(budget or AllocationBudget(MIN_BUDGET_BYTES, origin), origin)
    _, visits = walk.measure(module, "", set())
    walk.budget.charge(visits * MODULE_VISIT_BYTES, f"the BatchNorm settings ({visits} module visits)")
    found: dict[str, BatchNormSettings] = {}
    walk.collect_batch_norms(module, "", found)
    return found


class _StateDictWalk:
    """Collects the tensors of a placeholder module tree.

    :meth:`measure` first walks each distinct module once, refusing cycles, deep trees and malformed entries, and
    counts the entries and visits the full walk will make: a tree may share a module (Ultralytics shares one SiLU
    among all its convs), so a few KB of pickle can describe 2**40 paths, which are refused before any is walked.
    """

    def __init__(self, budget: AllocationBudget, origin: str) -> None:
        self.budget, self.origin = budget, origin
        self.result: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.sizes: dict[int, tuple[int, int]] = {}  # id(module) -> (entries, visits) of its subtree

    def measure(self, module: Placeholder, prefix: str, ancestors: set[int]) -> tuple[int, int]:
        """``(entries, visits)`` of the subtree under ``module``, each distinct module examined once."""
        if id(module) in ancestors:
            self._fail(prefix, "contains itself (the module tree has a cycle)")
        if id(module) in self.sizes:
            return self.sizes[id(module)]
        if len(ancestors) >= MAX_MODULE_DEPTH:
            self._fail(prefix, f"is nested deeper than {MAX_MODULE_DEPTH} modules")
        entries, visits = len(self._tensors(module, prefix)), 1
        ancestors.add(id(module))
        for name, child in self._entries(module, "_modules", prefix):
            if not is_module_placeholder(child):
                self._fail(prefix + name, f"is {short_repr(child)}, not a module")
            child_entries, child_visits = self.measure(child, f"{prefix}{name}.", ancestors)
            entries, visits = entries + child_entries, visits + child_visits
        ancestors.discard(id(module))
        self.sizes[id(module)] = entries, visits
        return entries, visits

    def collect(self, module: Placeholder, prefix: str) -> None:
        """Add the tensors under ``module`` (already measured) to :attr:`result`, keyed as ``state_dict`` would."""
        for name, value in self._tensors(module, prefix):
            key = prefix + name
            self.budget.charge(len(key), "the text of the state-dict keys")
            self.result[key] = value.detach()
        for name, child in self._entries(module, "_modules", prefix):
            if self.sizes[id(child)][0]:  # subtrees without tensors (shared activations) are not walked again
                self.collect(child, f"{prefix}{name}.")

    def collect_batch_norms(self, module: Placeholder, prefix: str, found: dict[str, BatchNormSettings]) -> None:
        """Add the settings of each BatchNorm under ``module`` (already measured) that holds tensors to ``found``."""
        if module.qualified_name.startswith(BATCH_NORM_PREFIX):
            settings = self._batch_norm_settings(module, prefix)
            if settings is not None:
                path = prefix.rstrip(".")
                self.budget.charge(BATCH_NORM_ENTRY_BYTES + len(path), "the BatchNorm settings")
                found[path] = settings
        for name, child in self._entries(module, "_modules", prefix):
            if self.sizes[id(child)][0]:
                self.collect_batch_norms(child, f"{prefix}{name}.", found)

    def _batch_norm_settings(self, module: Placeholder, prefix: str) -> BatchNormSettings | None:
        """The recorded ``eps`` and ``momentum`` of a BatchNorm; None when either is not recorded."""
        missing = object()
        eps, momentum = module.attribute("eps", missing), module.attribute("momentum", missing)
        if eps is missing or momentum is missing:
            return None
        try:
            return BatchNormSettings(eps, momentum)
        except ValueError as exc:
            self._fail(prefix, f"has an invalid setting ({exc})")

    def _tensors(self, module: Placeholder, prefix: str) -> list[tuple[str, torch.Tensor]]:
        """The module's parameters, then its persistent buffers (``None`` entries skipped)."""
        skipped = module.attribute("_non_persistent_buffers_set") or set()
        if not isinstance(skipped, (set, frozenset)):
            self._fail(prefix, f"has a _non_persistent_buffers_set that is a {type(skipped).__name__}")
        found = self._entries(module, "_parameters", prefix)
        found += [(name, value) for name, value in self._entries(module, "_buffers", prefix) if name not in skipped]
        for name, value in found:
            if not isinstance(value, torch.Tensor):
                self._fail(prefix + name, f"is {type(value).__name__}, not a tensor")
        return found

    def _entries(self, module: Placeholder, attribute: str, prefix: str) -> list[tuple[str, Any]]:
        """The non-None ``(name, value)`` pairs of a recorded ``_parameters`` / ``_buffers`` / ``_modules`` dict."""
        entries = module.attribute(attribute) or {}
        if not isinstance(entries, dict) or not all(isinstance(k, str) for k in entries):
            self._fail(prefix, f"has {attribute} that is not a dict of names")
        return [(k, v) for k, v in entries.items() if v is not None]

    def _fail(self, key: str, problem: str) -> NoReturn:
        where = f"'{key.rstrip('.')}'" if key else "the root module"
        raise CorruptCheckpointError(f"{self.origin}: {where} {problem}; the checkpoint's module tree is malformed")


def plain_data(value: Any, *, budget: AllocationBudget | None = None, origin: str = "checkpoint") -> Any:
    """Convert a value read from a foreign pickle into JSON-safe plain data.

    Containers are converted recursively (dict keys become strings when they are not str/int/float/bool/None),
    paths become strings, namespaces become dicts, small tensors become lists and any other placeholder its
    qualified name in angle brackets.

    Raises:
        CorruptCheckpointError: the value nests deeper than ``MAX_PLAIN_DEPTH`` (or contains itself).
        CheckpointTooLargeError: the converted value would not fit ``budget`` (a pickle can share one list many
            times over, so the copy can be far larger than the file).
    """
    return _PlainConverter(budget or AllocationBudget(MIN_BUDGET_BYTES, origin), origin).convert(value, 0)


class _PlainConverter:
    """:func:`plain_data` with its depth and size limits."""

    def __init__(self, budget: AllocationBudget, origin: str) -> None:
        self.budget, self.origin = budget, origin

    def convert(self, value: Any, depth: int) -> Any:
        if depth > MAX_PLAIN_DEPTH:
            raise CorruptCheckpointError(
                f"{self.origin}: a value nests deeper than {MAX_PLAIN_DEPTH} levels (or contains itself); the "
                "checkpoint is damaged or hostile")
        size = len(value) if isinstance(value, (str, bytes, bytearray)) else 0
        self.budget.charge(PLAIN_VALUE_BYTES + size, "the plain-data copy of the checkpoint's arguments")
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, dict):
            return {self.key(k, depth): self.convert(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.convert(v, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            return sorted((self.convert(v, depth + 1) for v in value), key=str)
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, torch.Tensor):
            return value.tolist() if value.numel() <= SMALL_TENSOR_ELEMENTS else f"<tensor {tuple(value.shape)}>"
        if isinstance(value, Placeholder):
            return self.placeholder(value, depth)
        return str(value) if isinstance(value, (complex, torch.dtype, torch.device)) else short_repr(value)

    def key(self, key: Any, depth: int) -> Any:
        if key is None or isinstance(key, (str, int, float, bool)):
            return key
        return str(self.convert(key, depth + 1))

    def placeholder(self, value: Placeholder, depth: int) -> Any:
        module, _, name = value.qualified_name.rpartition(".")
        if module.startswith("pathlib") and all(isinstance(a, str) for a in value.args):
            self.budget.charge(sum(map(len, value.args)), "a path")
            pure = pathlib.PureWindowsPath if "Windows" in name else pathlib.PurePosixPath
            return str(pure(*value.args))
        if name in ("Namespace", "SimpleNamespace", "IterableSimpleNamespace") and isinstance(value.state, dict):
            return {str(self.key(k, depth)): self.convert(v, depth + 1) for k, v in value.state.items()}
        return f"<{value.qualified_name}>"
