"""Multi-object tracking of detections over video frames: ByteTrack and BoT-SORT (``model.track(...)``).

Example:
    >>> from yolov12.track import TrackingSession, load_tracker_config
    >>> session = TrackingSession(load_tracker_config("bytetrack.yaml"))
"""

from __future__ import annotations

from yolov12.config.tracker import TrackerConfig, load_tracker_config
from yolov12.track.botsort import BoTSortTracker
from yolov12.track.bytetrack import ByteTracker, TrackOutput
from yolov12.track.registry import TRACKERS, create_tracker
from yolov12.track.session import TrackingSession, track_detections

__all__ = ["TRACKERS", "BoTSortTracker", "ByteTracker", "TrackOutput", "TrackerConfig", "TrackingSession",
           "create_tracker", "load_tracker_config", "track_detections"]
