"""Scale- and version-dependent rules applied when a layer is built (not written in the YAML layer table).

These are the published conventions (Ultralytics' parser and the official YOLOv12 releases), kept in one visible place:

- C3k2 uses C3k inner blocks at scales m/l/x (YOLO11 and YOLOv12).
- YOLOv12 detection A2C2f at scales l/x: residual with layer scale, MLP ratio 1.2 (v1.0) or 1.5 (turbo).
- YOLOv12 turbo classification (the official Cls release): every A2C2f is residual; MLP ratio 1.5 at l/x, 2.0
  otherwise (this reproduces the published classifier sizes). Ultralytics' v1.0 YOLO12-cls follows the detection rule.
- YOLOv12 attention layout follows the version (v1.0: fused qkv; turbo: qk + v).
"""

from __future__ import annotations

from typing import Any

from yolov12.models.architecture import ArchitectureConfig

LARGE_SCALES = frozenset("lx")
C3K_SCALES = frozenset("mlx")


def detection_a2c2f_mlp_ratio(version: str | None) -> float:
    return 1.5 if version == "turbo" else 1.2


def block_keyword_arguments(module: str, config: ArchitectureConfig) -> dict[str, Any]:
    """Extra keyword arguments for ``module`` implied by the config's scale, version and task."""
    scale = config.scale or ""
    if module == "C3k2" and scale in C3K_SCALES and config.family in ("yolo11", "yolov12"):
        return {"c3k": True}
    if module != "A2C2f":
        return {}
    kwargs: dict[str, Any] = {"layout": config.version or "v1.0"}
    if config.task == "classify" and config.version == "turbo":
        kwargs.update(residual=True, mlp_ratio=1.5 if scale in LARGE_SCALES else 2.0)
    elif scale in LARGE_SCALES:
        kwargs.update(residual=True, mlp_ratio=detection_a2c2f_mlp_ratio(config.version))
    return kwargs


def uses_legacy_detect_head(config: ArchitectureConfig) -> bool:
    """YOLOv8 keeps the original class branch (two 3x3 convs); later generations use depth-wise convs."""
    return config.family == "yolov8"
