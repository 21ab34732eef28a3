"""Ray Serve inference endpoints for YOLOv12 models (``serve.app:build_app``); see serve/app.py."""
