"""Ray Serve inference endpoints for YOLOv12 models (``serve.app:build_app``); see serve/app.py.

Needs the ``[serve]`` extra (it brings ``[mlflow]``: ``models:/`` URIs, and ``yolov12 serve`` starts Ray through
``pipelines.driver``). The checks find the packages without importing
them: Ray must not be imported before ``yolov12 serve`` has chosen its proxy (serve/cli.py).
"""

from yolov12.utils.extras import require

require("ray", extra="serve", feature="serve")
require("fastapi", extra="serve", feature="serve")  # the HTTP ingress (serve/http_api.py), with the two below
require("orjson", extra="serve", feature="serve")
require("python_multipart", extra="serve", feature="serve")
