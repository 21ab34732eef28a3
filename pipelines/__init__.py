"""Ray pipelines on top of the ``yolov12`` library: Ray Train (``pipelines.train``), MLflow tracking and lineage.

Nothing here is imported by ``yolov12``; the ``yolov12`` CLI finds the commands through entry points.
"""
