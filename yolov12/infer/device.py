"""Device selection for inference; the implementation lives in :mod:`yolov12.utils.device` (configs use it too)."""

from yolov12.utils.device import DeviceError, best_device, device_name, normalise_device, select_device

__all__ = ["DeviceError", "best_device", "device_name", "normalise_device", "select_device"]
