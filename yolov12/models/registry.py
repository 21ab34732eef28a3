"""Registry of the layer types a model YAML may name, with how each one's channels are resolved."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from torch import nn

from yolov12 import nn as blocks
from yolov12.nn.aff import AFFusion
from yolov12.nn.dyhead import DyHeadV3

ChannelRule = Literal["scaled", "concat", "same", "detect", "classify", "fuse"]


@dataclass(frozen=True)
class LayerType:
    """How a YAML module name becomes a layer.

    Attributes:
        factory: the nn.Module class.
        channels: ``scaled`` (args[0] is c2, scaled by width), ``concat`` (sum of inputs), ``same`` (as input),
            ``detect`` (head over several inputs), ``classify`` (args[0] is the class count), ``fuse`` (args[0] is
            c2, scaled by width; the layer also receives every input's channels first, e.g. the AFF fusion node).
        repeatable: the repeat count is passed to the block as its third argument instead of stacking copies.
    """

    factory: type[nn.Module]
    channels: ChannelRule
    repeatable: bool = False


LAYER_TYPES: dict[str, LayerType] = {
    "Conv": LayerType(blocks.Conv, "scaled"),
    "DWConv": LayerType(blocks.DWConv, "scaled"),
    "Bottleneck": LayerType(blocks.Bottleneck, "scaled"),
    "C3": LayerType(blocks.C3, "scaled", repeatable=True),
    "C3k": LayerType(blocks.C3k, "scaled", repeatable=True),
    "C2f": LayerType(blocks.C2f, "scaled", repeatable=True),
    "C3k2": LayerType(blocks.C3k2, "scaled", repeatable=True),
    "A2C2f": LayerType(blocks.A2C2f, "scaled", repeatable=True),
    "C2PSA": LayerType(blocks.C2PSA, "scaled", repeatable=True),
    "SPPF": LayerType(blocks.SPPF, "scaled"),
    "Concat": LayerType(blocks.Concat, "concat"),
    "Upsample": LayerType(nn.Upsample, "same"),
    "Detect": LayerType(blocks.Detect, "detect"),
    "DyHeadV3": LayerType(DyHeadV3, "detect"),
    "AFFusion": LayerType(AFFusion, "fuse"),
    "Classify": LayerType(blocks.Classify, "classify"),
}


class UnknownLayerError(KeyError):
    """A model YAML names a module that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0])


def lookup_layer_type(name: str, where: str = "") -> LayerType:
    """Resolve a YAML module name (``nn.Upsample`` and ``Upsample`` are the same) or raise with close matches."""
    key = name.removeprefix("torch.").removeprefix("nn.")
    if key in LAYER_TYPES:
        return LAYER_TYPES[key]
    close = difflib.get_close_matches(key, list(LAYER_TYPES), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    registered = ", ".join(sorted(LAYER_TYPES))
    raise UnknownLayerError(f"{where}unknown module '{name}'{hint} Registered modules: {registered}")


def register_layer_type(name: str, layer_type: LayerType) -> None:
    """Make a new block available to model YAMLs (extensions such as the AFF neck register here)."""
    if name in LAYER_TYPES:
        raise ValueError(f"module name '{name}' is already registered")
    LAYER_TYPES[name] = layer_type
