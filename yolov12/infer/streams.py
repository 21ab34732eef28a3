"""Live sources through OpenCV's FFmpeg backend: ``rtsp://`` and ``http(s)://`` streams (MJPEG over HTTP, HLS,
remote videos) and webcams (``source=0``), read one frame at a time, with reconnection.

A stream that stalls (no frame within ``timeout_s``) or drops is reported in one log line and reopened after a
delay that doubles from ``reconnect_delay_s`` (at most :data:`MAX_RECONNECT_DELAY_S`), up to ``reconnect_attempts``
times in a row; then :class:`SourceError` ends it. A stream that cannot be opened at all fails at once. Frames are
read synchronously: nothing is buffered here beyond the frame being handed out, so a slow consumer reads the stream
late rather than dropping frames (FFmpeg and the network buffer what arrives meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from yolov12.infer.image_io import SourceError, check_decoded, decoded_byte_limit, to_bgr_uint8

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
MAX_RECONNECT_DELAY_S = 8.0


@dataclass(frozen=True)
class StreamSettings:
    """How long a stream may stay silent, and how often and how soon it is reopened.

    Attributes:
        timeout_s: seconds to open the stream and to wait for each frame before it counts as stalled.
        reconnect_attempts: reopen attempts in a row before the stream is given up (0: never reopen).
        reconnect_delay_s: wait before the first reopen attempt; it doubles with each failed attempt.
    """

    timeout_s: float = 10.0
    reconnect_attempts: int = 5
    reconnect_delay_s: float = 0.5


@dataclass(frozen=True)
class LiveSource:
    """A stream URL or a webcam index, as found in a prediction source."""

    target: str | int

    @property
    def display(self) -> str:
        """The name used in frame names and messages: ``webcam0``, or the URL with any password masked."""
        return f"webcam{self.target}" if isinstance(self.target, int) else redact_url(self.target)


def is_live_source(source: object) -> bool:
    """Whether ``source`` is a stream URL, a webcam index (``0``) or its text (``"0"``)."""
    if isinstance(source, bool):
        return False
    if isinstance(source, int):
        return True
    return isinstance(source, str) and (source.lower().startswith(STREAM_SCHEMES) or source.isdigit())


def live_source(source: str | int) -> LiveSource:
    """The :class:`LiveSource` of a source that :func:`is_live_source` accepts; a negative index is refused."""
    if isinstance(source, int) or source.isdigit():
        index = int(source)
        if index < 0:
            raise SourceError(f"webcam index {index} is negative; use 0 for the first camera")
        return LiveSource(index)
    return LiveSource(source)


def redact_url(url: str) -> str:
    """``rtsp://user:secret@host/path`` -> ``rtsp://user:***@host/path``, so passwords stay out of logs and names."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))


def live_frames(source: LiveSource, settings: StreamSettings, max_pixels: int,
                max_bytes: int | None) -> Iterator[tuple[str, np.ndarray]]:
    """Frames of a stream or webcam as (``<display>:frame<i>``, (H, W, 3) BGR uint8), ``i`` counting across
    reconnects; endless until the stream is lost for good (:class:`SourceError`) or the caller stops iterating."""
    capture = open_capture(source, settings)
    if capture is None:
        raise SourceError(f"cannot open stream {source.display}: nothing answered within {settings.timeout_s:g} s "
                          "or it is not a video stream; check the URL (or camera index) and that it is reachable")
    index, failures = 0, 0
    try:
        check_capture_size(capture, f"stream {source.display}", max_pixels, max_bytes)
        while True:
            ok, frame = capture.read() if capture is not None else (False, None)
            if ok:
                name = f"{source.display}:frame{index}"
                check_decoded(frame, name, max_pixels, max_bytes)
                yield name, to_bgr_uint8(frame, name)
                index, failures = index + 1, 0
                continue
            failures += 1
            if capture is not None:
                capture.release()
            capture = _reopen(source, settings, index, failures)
    finally:
        if capture is not None:
            capture.release()


def _reopen(source: LiveSource, settings: StreamSettings, frames: int, failures: int) -> cv2.VideoCapture | None:
    """Wait, then reopen a stream that stalled or dropped; raise once ``reconnect_attempts`` have failed in a row."""
    if failures > settings.reconnect_attempts:
        tried = f"{settings.reconnect_attempts} reconnect attempts failed" if settings.reconnect_attempts else \
            "reconnect_attempts=0"
        raise SourceError(f"stream {source.display} was lost after {frames} frames ({tried}); check the source, or "
                          "raise reconnect_attempts / stream_timeout_s")
    delay = min(settings.reconnect_delay_s * 2 ** (failures - 1), MAX_RECONNECT_DELAY_S)
    logger.warning("stream %s stalled or dropped after %d frames; reconnecting in %.1f s (attempt %d of %d)",
                   source.display, frames, delay, failures, settings.reconnect_attempts)
    time.sleep(delay)
    return open_capture(source, settings)


def open_capture(source: LiveSource, settings: StreamSettings) -> cv2.VideoCapture | None:
    """An opened ``cv2.VideoCapture`` with open and read timeouts, or None when it cannot be opened."""
    timeout_ms = max(1, int(settings.timeout_s * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    backend = cv2.CAP_ANY if isinstance(source.target, int) else cv2.CAP_FFMPEG
    try:
        capture = cv2.VideoCapture(source.target, backend, params)
    except cv2.error as exc:
        logger.debug("OpenCV cannot open %s: %s", source.display, str(exc).strip().splitlines()[-1])
        return None
    if not capture.isOpened():
        capture.release()
        return None
    return capture


def check_capture_size(capture: cv2.VideoCapture, label: str, max_pixels: int, max_bytes: int | None) -> None:
    """Refuse a video or stream whose frames (8-bit BGR, size as the container or stream announces it) are over the
    limits, before one is decoded; a source that announces no size is checked frame by frame."""
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frame_bytes, limit = width * height * 3, decoded_byte_limit(max_bytes)
    if width * height > max_pixels:
        raise SourceError(f"{label} has {width}x{height} frames ({width * height} pixels), above the limit of "
                          f"{max_pixels} pixels; downscale it first")
    if frame_bytes > limit:
        raise SourceError(f"{label} has {width}x{height} frames, {frame_bytes} bytes a frame, above the limit of "
                          f"{limit} bytes; downscale it first, or raise max_bytes")
