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
from typing import Any

import torch

SMALL_TENSOR_ELEMENTS = 16  # tensors in training arguments up to this size become lists, larger ones a description


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


def placeholder_state_dict(module: Placeholder, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """Flat state dict of a placeholder ``nn.Module`` tree, keyed exactly as ``module.state_dict()`` would be.

    Order and content follow ``nn.Module.state_dict``: a module's parameters, then its persistent buffers (names in
    ``_non_persistent_buffers_set`` are skipped), then each child under ``<name>.`` (ModuleList / Sequential
    children are named ``0``, ``1``...). ``None`` entries are skipped.

    Example:
        >>> model = read_foreign_checkpoint("yolo12n.pt")["model"]  # doctest: +SKIP
        >>> placeholder_state_dict(model)["model.0.conv.weight"].shape  # doctest: +SKIP
        torch.Size([16, 3, 3, 3])
    """
    if not is_module_placeholder(module):
        raise TypeError(f"expected a placeholder nn.Module (with recorded _modules), got {module!r}")
    result: OrderedDict[str, torch.Tensor] = OrderedDict()
    _collect(module, prefix, result)
    return result


def _collect(module: Placeholder, prefix: str, out: OrderedDict[str, torch.Tensor]) -> None:
    skipped = module.attribute("_non_persistent_buffers_set") or set()
    for name, value in (module.attribute("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = _as_tensor(value, prefix + name)
    for name, value in (module.attribute("_buffers") or {}).items():
        if value is not None and name not in skipped:
            out[prefix + name] = _as_tensor(value, prefix + name)
    for name, child in module.attribute("_modules").items():
        if child is None:
            continue
        if not is_module_placeholder(child):
            raise TypeError(f"'{prefix}{name}' is {child!r}, not a module; the checkpoint's module tree is malformed")
        _collect(child, f"{prefix}{name}.", out)


def _as_tensor(value: Any, key: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"'{key}' is {type(value).__name__}, not a tensor; the checkpoint's module tree is malformed")
    return value.detach()


def plain_data(value: Any) -> Any:
    """Convert a value read from a foreign pickle into JSON-safe plain data.

    Containers are converted recursively (dict keys become strings when they are not str/int/float/bool/None),
    paths become strings, namespaces become dicts, small tensors become lists and any other placeholder its
    qualified name in angle brackets.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {_plain_key(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain_data(v) for v in value), key=str)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= SMALL_TENSOR_ELEMENTS else f"<tensor {tuple(value.shape)}>"
    if isinstance(value, Placeholder):
        return _plain_placeholder(value)
    return str(value)


def _plain_key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(plain_data(key))


def _plain_placeholder(value: Placeholder) -> Any:
    module, _, name = value.qualified_name.rpartition(".")
    if module.startswith("pathlib") and all(isinstance(a, str) for a in value.args):
        pure = pathlib.PureWindowsPath if "Windows" in name else pathlib.PurePosixPath
        return str(pure(*value.args))
    if name in ("Namespace", "SimpleNamespace", "IterableSimpleNamespace") and isinstance(value.state, dict):
        return {str(k): plain_data(v) for k, v in value.state.items()}
    return f"<{value.qualified_name}>"
