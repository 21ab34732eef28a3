"""Named model variants: ``yolov12n.yaml`` and friends resolve to a bundled config file plus a scale.

Names follow both ecosystems users come from:

=====================  ==========================================  =========================
name                   architecture                                 bundled config
=====================  ==========================================  =========================
``yolov12{s}``         YOLOv12 turbo (official repository, main)    ``yolov12.yaml``
``yolov12{s}-v1``      YOLOv12 paper release v1.0                   ``yolov12-v1.yaml``
``yolo12{s}``          Ultralytics' YOLO12 (= v1.0 architecture)    ``yolov12-v1.yaml``
``yolov12{s}-turbo``   alias of ``yolov12{s}``                      ``yolov12.yaml``
``yolov12{s}-cls``     YOLOv12 classifier                           ``yolov12-cls.yaml``
``yolo11{s}``          YOLO11 detection                             ``yolo11.yaml``
``yolov8{s}``          YOLOv8 detection                             ``yolov8.yaml``
``yolov12{s}-aff``     turbo with the AFF neck                      ``yolov12-aff.yaml``
``yolov12{s}-dyhead``  turbo with Dynamic Head v3                   ``yolov12-dyhead.yaml``
``yolov12{s}-aff-dyhead``  turbo with both                          ``yolov12-aff-dyhead.yaml``
``yolov12{s}-v1-aff``  (and ``-v1-dyhead``, ``-v1-aff-dyhead``)     ``yolov12-v1-aff.yaml`` ...
=====================  ==========================================  =========================

``{s}`` is one of n/s/m/l/x; a ``.yaml`` suffix is optional.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from yolov12.models.architecture import ArchitectureConfig

SCALES = ("n", "s", "m", "l", "x")


@dataclass(frozen=True)
class ZooEntry:
    """A model family in the zoo: the config file it is built from and its display name pattern."""

    config_file: str
    display: str  # format string taking the scale letter


ZOO: dict[str, ZooEntry] = {
    "yolov12": ZooEntry("yolov12.yaml", "yolov12{}"),
    "yolov12-turbo": ZooEntry("yolov12.yaml", "yolov12{}"),
    "yolov12-v1": ZooEntry("yolov12-v1.yaml", "yolov12{}-v1"),
    "yolo12": ZooEntry("yolov12-v1.yaml", "yolo12{}"),
    "yolov12-cls": ZooEntry("yolov12-cls.yaml", "yolov12{}-cls"),
    "yolo11": ZooEntry("yolo11.yaml", "yolo11{}"),
    "yolov11": ZooEntry("yolo11.yaml", "yolo11{}"),
    "yolov8": ZooEntry("yolov8.yaml", "yolov8{}"),
    **{f"yolov12{release}-{variant}": ZooEntry(f"yolov12{release}-{variant}.yaml", f"yolov12{{}}{release}-{variant}")
       for release in ("", "-v1") for variant in ("aff", "dyhead", "aff-dyhead")},
}

_NAME = re.compile(r"^(?P<base>yolov?\d+)(?P<scale>[nsmlx])?(?P<suffix>(?:-[a-z0-9.]+)*)$")


class UnknownModelError(ValueError):
    """The name is neither a zoo model nor an existing model file."""


def config_path(file_name: str) -> Path:
    """Path of a bundled architecture YAML."""
    return Path(str(resources.files("yolov12.models") / "configs" / file_name))


def zoo_names() -> list[str]:
    """Every name the zoo resolves, e.g. ``yolov12n``, ``yolo11x``."""
    return [entry.display.format(s) for key, entry in ZOO.items() if key not in ("yolov12-turbo", "yolov11")
            for s in SCALES]


def resolve_zoo_name(name: str) -> ArchitectureConfig | None:
    """Config for a zoo name such as ``yolov12n.yaml`` (None when ``name`` is not a zoo name)."""
    stem = Path(name).name.removesuffix(".yaml").removesuffix(".yml").lower()
    match = _NAME.match(stem)
    if not match:
        return None
    key = match["base"] + (match["suffix"] or "")
    scale = match["scale"]
    if key == "yolov12-v1.0":
        key = "yolov12-v1"
    entry = ZOO.get(key)
    if entry is None:
        return None
    if scale is None:
        raise UnknownModelError(f"'{name}' names no scale; use one of {[entry.display.format(s) for s in SCALES]}")
    config = ArchitectureConfig.from_yaml(config_path(entry.config_file), scale=scale)
    return dataclasses.replace(config, name=entry.display.format(scale))


def load_architecture(name_or_path: str | Path) -> ArchitectureConfig:
    """Resolve a zoo name or read a model YAML file (the file wins when both exist)."""
    path = Path(name_or_path)
    if path.is_file():
        config = ArchitectureConfig.from_yaml(path)
        match = _NAME.match(path.stem.lower())
        if match and match["scale"] and config.scales and match["scale"] in config.scales:
            config = config.with_overrides(scale=match["scale"])
        return config
    config = resolve_zoo_name(str(name_or_path))
    if config is not None:
        return config
    close = difflib.get_close_matches(path.name.removesuffix(".yaml"), zoo_names(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"'{name_or_path}' is neither a model file nor a zoo model.{hint} Zoo models: yolov12{{n,s,m,l,x}}, "
        "yolov12{n..x}-v1, yolo12{n..x}, yolov12{n..x}-cls, yolo11{n..x}, yolov8{n..x}, "
        "yolov12{n..x}[-v1]-{aff,dyhead,aff-dyhead}"
    )
