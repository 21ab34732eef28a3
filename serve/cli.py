"""``yolov12 serve model=... [host=127.0.0.1 port=8000]``: run the Serve application in the foreground.

Registered through the ``yolov12.commands`` entry point group (pyproject:
``serve = "serve.cli:SERVE_COMMAND"``), so the core CLI finds it without importing Ray.
"""

from __future__ import annotations

import logging

from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.cli.commands import Command

logger = logging.getLogger(__name__)

SERVER_KEYS = ("host", "port", "route_prefix", "address")


def serve_command(arguments: list[str]) -> int:
    import ray  # noqa: PLC0415 - Ray only when serving
    from ray import serve  # noqa: PLC0415

    from serve.app import build_app  # noqa: PLC0415
    from serve.config import ServeAppConfig  # noqa: PLC0415

    values = parse_key_values(arguments, [*ServeAppConfig.model_fields, *SERVER_KEYS], positional=("model",))
    if "model" not in values:
        raise CommandLineError("serve needs a model: yolov12 serve model=best.safetensors (or models:/NAME@alias)")
    host, port = str(values.pop("host", "127.0.0.1")), int(values.pop("port", 8000))
    route_prefix, address = str(values.pop("route_prefix", "/")), values.pop("address", None)
    app = build_app({key: str(value) if key == "model" else value for key, value in values.items()})
    ray.init(address=address, ignore_reinit_error=True)
    serve.start(http_options={"host": host, "port": port})
    print(f"serving {values['model']} on http://{host}:{port}{route_prefix} (POST /v1/detect, KServe v2 under /v2); "
          "Ctrl-C stops")
    try:
        serve.run(app, name="yolov12", route_prefix=route_prefix, blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
    return 0


SERVE_COMMAND = Command("serve", "HTTP inference on Ray Serve: yolov12 serve model=best.safetensors port=8000",
                        serve_command)
