"""``yolov12 serve model=... [host=127.0.0.1 port=8000 haproxy=true]``: run the Serve application in the foreground.

Arguments are ``key=value`` (:class:`serve.config.ServeAppConfig` keys plus ``host``, ``port``, ``route_prefix``,
``address``, ``haproxy``); a bare first word is the model and ``--port 8000`` is ``port=8000``. Before Ray starts,
the config is validated and every model source checked (:mod:`serve.preflight`): a missing file, an unknown registry
alias or an architecture without ``random_weights=true`` fails in one line.

``haproxy=true`` starts the local Ray with Ray Serve's HAProxy ingress (``RAY_SERVE_ENABLE_HA_PROXY=1``): HAProxy
forwards each request straight to an ingress replica's own HTTP server instead of through Serve's Python proxy
actor; in the default layout (``single_deployment``) that replica holds the model, so a request crosses no Ray call
at all.

Registered through the ``yolov12.commands`` entry point group (pyproject:
``serve = "serve.cli:SERVE_COMMAND"``), so the core CLI finds it without importing Ray.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.cli.commands import Command

logger = logging.getLogger(__name__)

SERVER_KEYS = ("host", "port", "route_prefix", "address", "haproxy")
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"
APP_NAME = "yolov12"


def serve_command(arguments: list[str]) -> int:
    from pipelines.arguments import normalise_options  # noqa: PLC0415 - no Ray import: HAProxy must be chosen first
    from serve.config import ServeAppConfig  # noqa: PLC0415
    from serve.preflight import check_api_key, check_serving_sources  # noqa: PLC0415

    values = parse_key_values(normalise_options(arguments), [*ServeAppConfig.model_fields, *SERVER_KEYS],
                              positional=("model",))
    if "model" not in values:
        raise CommandLineError("serve needs a model: yolov12 serve model=best.safetensors (or models:/NAME@alias)")
    values["model"] = str(values["model"])
    host, port = str(values.pop("host", "127.0.0.1")), int(values.pop("port", 8000))
    route_prefix, address = str(values.pop("route_prefix", "/")), values.pop("address", None)
    if str(values.pop("haproxy", "false")).lower() in ("1", "true", "yes"):
        if address not in (None, "local"):
            raise CommandLineError("haproxy=true applies to the local Ray this command starts; on a cluster set "
                                   f"{HAPROXY_ENV}=1 in the environment of 'ray start' on every node instead")
        os.environ[HAPROXY_ENV] = "1"  # read by Ray Serve's processes (and this one) when they import it
    config = ServeAppConfig.from_overrides(values)
    check_api_key(config)  # before Ray: a configured key that did not reach this machine is an error, not open
    check_serving_sources(config)  # config, then every model source

    from ray import serve  # noqa: PLC0415 - Ray only when serving

    from pipelines.driver import init_ray  # noqa: PLC0415
    from serve.app import build_app  # noqa: PLC0415

    app = build_app(values)
    # address=... wins, then RAY_ADDRESS, then a cluster `ray start` left running here, else a new local Ray
    owns_ray = init_ray(address, join_running=True, logging_level=logging.INFO)
    serve.start(http_options={"host": host, "port": port})
    print(f"serving {values['model']} on http://{host}:{port}{route_prefix} (POST /v1/detect, KServe v2 under /v2); "
          "Ctrl-C or SIGTERM stops")
    return run_until_stopped(app, route_prefix, owns_ray)


class StopServing(Exception):
    """Raised in the main thread by the SIGTERM / SIGINT handler of :func:`run_until_stopped`."""


def _stop(signum: int, frame: object) -> None:
    raise StopServing(signal.Signals(signum).name)


def run_until_stopped(app: object, route_prefix: str, owns_ray: bool) -> int:
    """Deploy ``app`` and serve until SIGTERM or SIGINT, then stop gracefully and return 0.

    Stopping: the application is deleted first, so its replicas finish the requests they hold (up to each
    deployment's ``graceful_shutdown_timeout_s``) while Serve's proxies are still there to deliver the answers
    (``serve.shutdown()`` alone stops the proxies at the same time as the replicas, and answers in flight are
    lost); then ``serve.shutdown()``, then the local Ray this command started.
    Further signals are ignored meanwhile, so a second Ctrl-C or SIGTERM does not cut the drain short. The
    handlers are Python's, installed after Ray started, so a SIGTERM is never left to Ray's native handler (which
    prints a stack dump and aborts).
    """
    import ray  # noqa: PLC0415
    from ray import serve  # noqa: PLC0415

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.signal(number, _stop) for number in handled}
    stopped_by = "SIGINT"
    try:
        serve.run(app, name=APP_NAME, route_prefix=route_prefix, blocking=False)
        while True:  # the handlers raise StopServing here (or in serve.run, while it still deploys)
            time.sleep(3600)
    except (StopServing, KeyboardInterrupt) as stop:
        stopped_by = str(stop) or stopped_by
    finally:
        for number in handled:
            signal.signal(number, signal.SIG_IGN)
        started = time.monotonic()
        serve.delete(APP_NAME)  # its replicas finish what they hold while the proxies still deliver the answers
        serve.shutdown()
        if owns_ray:
            ray.shutdown()
        for number, handler in previous.items():
            signal.signal(number, handler)
    logger.info("stopped serving on %s: in-flight requests drained and Serve shut down in %.1fs", stopped_by,
                time.monotonic() - started)
    return 0


SERVE_COMMAND = Command("serve", "HTTP inference on Ray Serve: yolov12 serve model=best.safetensors port=8000 "
                        "(models:/NAME@alias, exported models)", serve_command)
