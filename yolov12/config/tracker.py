"""Multi-object tracker settings: ``bytetrack.yaml`` / ``botsort.yaml`` (``model.track(tracker=...)``).

The keys are Ultralytics' (``track_high_thresh``, ``track_buffer``, ``gmc_method``...), so a tracker YAML written for
Ultralytics loads unchanged; an unknown key is refused with the closest valid one.

Example:
    >>> config = load_tracker_config("bytetrack.yaml")
    >>> config.tracker_type, config.track_buffer
    ('bytetrack', 30)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from yolov12.config.base import ConfigError, Section

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_TRACKERS = ("bytetrack.yaml", "botsort.yaml")
REID_ONLY_KEYS: dict[str, tuple[object, ...]] = {"proximity_thresh": (0.5,), "appearance_thresh": (0.8,),
                                                 "model": (None, "auto")}
"""Ultralytics' re-identification keys and the values that leave them without effect (its shipped defaults)."""


class TrackerConfig(Section):
    """Settings of a ByteTrack or BoT-SORT tracker.

    Attributes:
        tracker_type: ``bytetrack`` or ``botsort`` (ByteTrack with camera-motion compensation).
        track_high_thresh: detections scoring at least this take part in the first association.
        track_low_thresh: detections scoring above this (and below ``track_high_thresh``) take part in the second
            association, which only extends existing tracks.
        new_track_thresh: an unmatched detection scoring at least this starts a new track.
        track_buffer: frames a lost track is kept for, so an object hidden for a while gets its id back.
        match_thresh: largest association cost (1 - IoU, or 1 - IoU x score with ``fuse_score``) of a first-stage
            match.
        fuse_score: multiply IoU by the detection score in the first association.
        gmc_method: BoT-SORT's global motion compensation: ``sparseOptFlow`` (Lucas-Kanade on corners), ``ecc``
            (OpenCV's ``findTransformECC``, slower) or ``none``.
        gmc_downscale: frames are shrunk by this factor before motion compensation.
        proximity_thresh, appearance_thresh, model: Ultralytics' re-identification settings. They act only with
            re-identification, which is not implemented, so they are accepted only at the values Ultralytics ships
            in ``botsort.yaml`` (0.5, 0.8, ``auto``; an unchanged file loads) and any other value is refused.
        with_reid: must stay false (re-identification is not implemented).
    """

    tracker_type: Literal["bytetrack", "botsort"] = "bytetrack"
    track_high_thresh: float = Field(0.25, ge=0.0, le=1.0)
    track_low_thresh: float = Field(0.1, ge=0.0, le=1.0)
    new_track_thresh: float = Field(0.25, ge=0.0, le=1.0)
    track_buffer: int = Field(30, ge=0, le=10000)
    match_thresh: float = Field(0.8, ge=0.0, le=1.0)
    fuse_score: bool = True
    gmc_method: Literal["sparseOptFlow", "ecc", "none"] = "sparseOptFlow"
    gmc_downscale: int = Field(2, ge=1, le=16)
    proximity_thresh: float = Field(0.5, ge=0.0, le=1.0)
    appearance_thresh: float = Field(0.8, ge=0.0, le=1.0)
    with_reid: bool = False
    model: str | None = None

    @field_validator("gmc_method", mode="before")
    @classmethod
    def _none_method(cls, value: object) -> object:
        return "none" if value is None or (isinstance(value, str) and value.lower() == "none") else value

    @model_validator(mode="after")
    def _consistent(self) -> TrackerConfig:
        if self.with_reid:
            raise ValueError("with_reid=True: re-identification is not implemented; set with_reid: false")
        for key, inert in REID_ONLY_KEYS.items():
            if getattr(self, key) not in inert:
                raise ValueError(f"{key}={getattr(self, key)!r} acts only with re-identification, which is not "
                                 f"implemented; remove {key} (or set it to {inert[-1]!r})")
        if self.track_low_thresh > self.track_high_thresh:
            raise ValueError(f"track_low_thresh={self.track_low_thresh} is above track_high_thresh="
                             f"{self.track_high_thresh}; the low threshold must not exceed the high one")
        return self


def load_tracker_config(tracker: str | Path | TrackerConfig = "bytetrack.yaml", **overrides: Any) -> TrackerConfig:
    """A :class:`TrackerConfig` from a shipped name (``bytetrack.yaml``, ``botsort.yaml``), a YAML path or a config.

    ``overrides`` replace keys of the file. Raises :class:`ConfigError` (one line naming the file and the key).
    """
    if isinstance(tracker, TrackerConfig):
        return tracker.updated(**overrides) if overrides else tracker
    path = _resolve(tracker)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"tracker file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"tracker file {path} must be a mapping of tracker settings (tracker_type: bytetrack, ...)")
    try:
        return TrackerConfig.from_overrides({**values, **overrides})
    except ConfigError as exc:
        raise ConfigError(f"tracker file {path}: {exc}") from None


def _resolve(tracker: str | Path) -> Path:
    """A YAML file that exists, else a shipped one by name (``bytetrack``, ``botsort.yaml``)."""
    path = Path(tracker).expanduser()
    if path.is_file():
        return path
    name = str(tracker) if str(tracker).endswith(".yaml") else f"{tracker}.yaml"
    if name in SHIPPED_TRACKERS:
        return ASSETS / name
    raise ConfigError(f"tracker file {tracker} does not exist; use {' or '.join(SHIPPED_TRACKERS)} or a YAML path")
