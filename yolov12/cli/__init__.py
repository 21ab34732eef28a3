"""The ``yolov12`` command line: ``yolov12 <command> key=value ...``."""
