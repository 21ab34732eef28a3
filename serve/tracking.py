"""Tracking sessions over a WebSocket (``/v1/track``): the frames of one stream, in order, through one tracker.

A session is one WebSocket connection. The connection stays on the Ingress replica that accepted it, so that
replica holds the session's tracker (ByteTrack or BoT-SORT from :mod:`yolov12.track`, the library's one
implementation) for as long as the connection lives; detection goes to the Detector like any ``/v1/detect``
request, with the same API key, body and image limits.

Protocol:
    connect   ``ws://HOST/v1/track?tracker=bytetrack&conf=0.1&imgsz=640`` with the ``x-api-key`` header when a key
              is configured. Query keys: ``tracker`` (``bytetrack`` or ``botsort``, the shipped settings), the
              detection options ``conf`` (default 0.1, so low-score boxes reach the second association, as
              ``model.track`` does), ``iou``, ``max_det``, ``imgsz``, and any tracker setting
              (``track_buffer=60``...). The server answers ``{"session": ID, "tracker": ..., "idle_timeout_s": ...}``.
    frame     each frame as one binary message (an encoded image). The answer, in order, is a text message
              ``{"frame": N, "tracks": [{"id", "box", "score", "class_id", "class_name"}], "image": {...},
              "timing_ms": {...}}``, or ``{"frame": N, "error": "...", "status": 4xx/503}`` for a frame that
              could not be used (the session goes on; the tracker skips that frame).
    end       the client closes; or the server closes with a code and a one-line reason:

    ====  =============================================================================================
    4401  missing or wrong ``x-api-key``
    4422  bad query options (unknown key, value out of range)
    4429  this replica already holds ``max_track_sessions`` sessions (retry; more replicas hold more)
    4408  the session expired: no frame for ``track_session_idle_s`` seconds
    1009  a frame above ``max_body_bytes``
    ====  =============================================================================================
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from pydantic import Field, ValidationError

from yolov12.config.base import ConfigError, Section, format_validation_error
from yolov12.config.tracker import TrackerConfig, load_tracker_config
from yolov12.track import create_tracker, track_detections

TRACKER_NAMES = ("bytetrack", "botsort")
DETECTION_KEYS = ("conf", "iou", "max_det", "imgsz")
TRACKING_CONF = 0.1  # as model.track: low-score detections feed ByteTrack's second association

CLOSE_UNAUTHORISED = 4401
CLOSE_BAD_OPTIONS = 4422
CLOSE_TOO_MANY_SESSIONS = 4429
CLOSE_EXPIRED = 4408
CLOSE_TOO_BIG = 1009
MAX_REASON_BYTES = 123  # the WebSocket protocol's limit on a close reason


class TrackingOptionsError(ValueError):
    """The query options of a tracking session are not valid (one line: key and fix)."""


class TrackDetectParams(Section):
    """Detection options of a tracking session (query keys); ``conf`` defaults to :data:`TRACKING_CONF`."""

    conf: float = Field(TRACKING_CONF, ge=0.0, le=1.0)
    iou: float | None = Field(None, ge=0.0, le=1.0)
    max_det: int | None = Field(None, ge=1, le=10000)
    imgsz: int | None = Field(None, ge=32, le=4096)


@dataclass(frozen=True)
class TrackingOptions:
    """What a session was opened with: detection options and tracker settings."""

    detect: TrackDetectParams
    tracker: TrackerConfig


def parse_tracking_options(query: dict[str, str], max_imgsz: int) -> TrackingOptions:
    """Options from the connection's query string; :class:`TrackingOptionsError` names the bad key.

    ``tracker`` names a shipped tracker only (never a path: a client must not make the server read its files).
    """
    values = dict(query)
    name = values.pop("tracker", "bytetrack").removesuffix(".yaml")
    if name not in TRACKER_NAMES:
        raise TrackingOptionsError(f"tracker={name!r}: use one of {', '.join(TRACKER_NAMES)}")
    detect_values = {key: values.pop(key) for key in DETECTION_KEYS if key in values}
    try:
        detect = TrackDetectParams.model_validate(detect_values)
    except ValidationError as exc:
        raise TrackingOptionsError(format_validation_error(exc)) from None
    if detect.imgsz is not None and detect.imgsz > max_imgsz:
        raise TrackingOptionsError(f"imgsz={detect.imgsz} is above the limit of {max_imgsz} (max_request_imgsz)")
    try:
        tracker = load_tracker_config(f"{name}.yaml", **values)
    except ConfigError as exc:
        raise TrackingOptionsError(str(exc).replace(f"tracker file {_shipped(name)}: ", "")) from None
    return TrackingOptions(detect, tracker)


def _shipped(name: str) -> str:
    from yolov12.config.tracker import ASSETS  # noqa: PLC0415

    return str(ASSETS / f"{name}.yaml")


class SessionLimitError(RuntimeError):
    """This replica holds as many sessions as it may."""


@dataclass
class SessionRegistry:
    """The open sessions of one replica, at most ``limit`` at a time."""

    limit: int
    open_sessions: dict[str, float] = field(default_factory=dict)  # id -> time opened

    @contextmanager
    def session(self) -> Iterator[str]:
        """A new session id, held until the block ends; :class:`SessionLimitError` when the replica is full."""
        if len(self.open_sessions) >= self.limit:
            raise SessionLimitError(f"this replica holds {len(self.open_sessions)} tracking sessions, its limit "
                                    "(max_track_sessions); retry, or add replicas")
        session_id = uuid.uuid4().hex
        self.open_sessions[session_id] = time.time()
        try:
            yield session_id
        finally:
            self.open_sessions.pop(session_id, None)


class FrameError(Exception):
    """A frame the session could not use; answered with ``status`` and the session goes on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DetectedFrame:
    """What the Detector found in one frame: (N, 6) x1, y1, x2, y2, score, class and the frame's metadata."""

    detections: np.ndarray
    names: dict[int, str]
    width: int
    height: int
    timing: dict[str, float]


Detect = Callable[[bytes, TrackDetectParams], Awaitable[DetectedFrame]]
"""Runs detection on one encoded frame (the Ingress's own path: limits, Detector call); raises :class:`FrameError`."""
Decode = Callable[[bytes], Awaitable[np.ndarray]]
"""Decodes one frame to BGR pixels (only trackers that compensate camera motion need them)."""


class TrackingSession:
    """One stream's tracker; :meth:`frame` takes the frames in order."""

    def __init__(self, options: TrackingOptions, detect: Detect, decode: Decode) -> None:
        self.options = options
        self.tracker = create_tracker(options.tracker)
        self.needs_pixels = options.tracker.tracker_type == "botsort" and options.tracker.gmc_method != "none"
        self.detect, self.decode = detect, decode
        self.frames = 0

    async def frame(self, data: bytes) -> dict[str, Any]:
        """The answer for one frame (its tracks, or the error that made it unusable)."""
        self.frames += 1
        number = self.frames
        started = time.perf_counter()
        try:
            if self.needs_pixels:
                detected, pixels = await asyncio.gather(self.detect(data, self.options.detect), self.decode(data))
            else:
                detected, pixels = await self.detect(data, self.options.detect), None
        except FrameError as exc:
            return {"frame": number, "error": str(exc), "status": exc.status}
        tracking_started = time.perf_counter()
        tracked = track_detections(self.tracker, detected.detections, pixels)
        finished = time.perf_counter()
        timing = {**detected.timing, "track": (finished - tracking_started) * 1000,
                  "frame": (finished - started) * 1000}
        return {"frame": number, "tracks": tracks_json(tracked, detected.names),
                "image": {"width": detected.width, "height": detected.height},
                "timing_ms": {key: round(value, 2) for key, value in timing.items()}}


def tracks_json(tracked: np.ndarray, names: dict[int, str]) -> list[dict[str, Any]]:
    """(K, 7) tracked rows as JSON objects; boxes rounded to 0.01 px, scores to 1e-5."""
    boxes = np.round(tracked[:, :4], 2).tolist()
    ids = tracked[:, 4].astype(np.int64).tolist()
    scores = np.round(tracked[:, 5], 5).tolist()
    classes = tracked[:, 6].astype(np.int64).tolist()
    return [{"id": track_id, "box": box, "score": score, "class_id": class_id, "class_name": names.get(class_id, "")}
            for track_id, box, score, class_id in zip(ids, boxes, scores, classes)]


def hello(session_id: str, options: TrackingOptions, idle_timeout_s: float) -> bytes:
    """The first message of a session."""
    return orjson.dumps({"session": session_id, "tracker": options.tracker.tracker_type,
                         "conf": options.detect.conf, "idle_timeout_s": idle_timeout_s})


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame may carry."""
    encoded = text.encode()
    return text if len(encoded) <= MAX_REASON_BYTES else encoded[:MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
