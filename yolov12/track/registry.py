"""Trackers by name: ``tracker_type`` of a :class:`~yolov12.config.tracker.TrackerConfig` -> tracker class."""

from __future__ import annotations

from yolov12.config.tracker import TrackerConfig
from yolov12.track.botsort import BoTSortTracker
from yolov12.track.bytetrack import ByteTracker

TRACKERS: dict[str, type[ByteTracker]] = {"bytetrack": ByteTracker, "botsort": BoTSortTracker}


def create_tracker(config: TrackerConfig) -> ByteTracker:
    """A new tracker of ``config.tracker_type`` with ``config``.

    Example:
        >>> type(create_tracker(TrackerConfig(tracker_type="botsort"))).__name__
        'BoTSortTracker'
    """
    return TRACKERS[config.tracker_type](config)
