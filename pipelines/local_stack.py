"""The local services stack: an S3-compatible store (moto in server mode) and an MLflow tracking server, on loopback.

One implementation for the tests (``tests/support/services.py``), the main job and developers::

    python -m pipelines.local_stack --dir .stack --mlflow-port 5000 --s3-port 9000

starts ``moto_server`` and ``mlflow server --backend-store-uri sqlite:///<dir>/mlflow.db --artifacts-destination
s3://<bucket>/mlflow`` on 127.0.0.1, prints the environment to export and runs until Ctrl+C. When both ports already
answer (a stack started earlier), it is reused instead. moto keeps objects in memory: on a clean stop the bucket is
saved to ``<dir>/s3/`` and loaded again on the next start, so the sqlite runs and their S3 artifacts stay together
(``--no-persist`` turns this off; a killed stack loses the artifacts written since its start).

Example:
    >>> with local_stack(".stack", mlflow_port=0, s3_port=0) as stack:  # doctest: +SKIP
    ...     os.environ.update(stack.env)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yolov12.data.errors import UnsafeObjectKeyError
from yolov12.data.object_keys import key_problem, path_inside, safe_relative_path

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_BUCKET = "yolov12"
DEFAULT_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}
# mlflow server's job runner (GenAI scorers, prompt optimisation) spawns 8 processes we do not use; no telemetry
# from a loopback dev stack. Either can be turned back on through the environment.
SERVER_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
READY_TIMEOUT_S = 180.0  # mlflow server takes ~10-30 s to start on a busy 2-core machine


class StackError(RuntimeError):
    """A local service did not start or a port is taken by something else; the message says which and how to fix."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP GET of ``url`` gets any response with status < 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we build
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def port_in_use(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


@dataclass
class Service:
    """A started (or reused) HTTP service: its URL, its process when we own it, and its log file."""

    name: str
    url: str
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def owned(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate our process (never a reused one), killing it if it does not exit in ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        # the service runs in its own process group (start_new_session): signal the group, so that workers it
        # spawned (mlflow server -> uvicorn) stop with it
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout)

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def _wait_ready(service: Service, health_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process is not None and service.process.poll() is not None:
            raise StackError(f"{service.name} exited with code {service.process.returncode} while starting; "
                             f"see {service.log}: {_tail(service.log)}")
        if answers(health_url):
            return
        time.sleep(0.5)
    service.stop()
    raise StackError(f"{service.name} did not answer {health_url} within {timeout:.0f} s; see {service.log} "
                     f"(a slow machine: raise the timeout): {_tail(service.log)}")


def _tail(path: Path | None, lines: int = 3) -> str:
    if path is None or not path.is_file():
        return "(no log)"
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


def _spawn(command: list[str], log: Path, env: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    child_env = {k: v for k, v in {**os.environ, **env}.items() if k not in drop}
    with log.open("ab") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=child_env,
                                start_new_session=True)  # Ctrl+C in a terminal reaches us, and we stop it cleanly


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment for boto3, MLflow and pyarrow to talk to the S3-compatible ``endpoint``."""
    return {**DEFAULT_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}


def _s3_client(endpoint: str):
    import boto3  # noqa: PLC0415 - only needed once a stack runs

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=DEFAULT_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=DEFAULT_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        region_name=DEFAULT_CREDENTIALS["AWS_DEFAULT_REGION"])


def ensure_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on ``endpoint`` unless it exists."""
    client = _s3_client(endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


@contextlib.contextmanager
def s3_server(directory: str | Path, *, port: int = 0, bucket: str = DEFAULT_BUCKET,
              timeout: float = READY_TIMEOUT_S) -> Iterator[Service]:
    """A moto S3 server on 127.0.0.1:``port`` (0: a free port) with ``bucket``; reused when the port answers."""
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    if answers(url):
        service = Service("moto S3", url)
        logger.info("reusing the S3 endpoint already answering at %s", url)
    else:
        _refuse_taken_port(port, "--s3-port")
        log = Path(directory) / "logs" / "moto.log"
        process = _spawn([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], log, {})
        service = Service("moto S3", url, process, log)
        _wait_ready(service, url, timeout)
        logger.info("started moto S3 at %s (pid %d)", url, process.pid)
    try:
        ensure_bucket(url, bucket)
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def mlflow_server(directory: str | Path, *, s3_endpoint: str, port: int = 0, bucket: str = DEFAULT_BUCKET,
                  timeout: float = READY_TIMEOUT_S) -> Iterator[Service]:
    """``mlflow server`` on 127.0.0.1:``port``: sqlite backend in ``directory``, artifacts at s3://bucket/mlflow."""
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    if answers(f"{url}/health"):
        service = Service("mlflow server", url)
        logger.info("reusing the MLflow server already answering at %s", url)
    else:
        _refuse_taken_port(port, "--mlflow-port")
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
                   "--artifacts-destination", f"s3://{bucket}/mlflow"]
        env = {**SERVER_DEFAULTS, **{k: v for k, v in os.environ.items() if k in SERVER_DEFAULTS},
               **s3_env(s3_endpoint)}
        process = _spawn(command, directory / "logs" / "mlflow.log", env, drop=("MLFLOW_TRACKING_URI",))
        service = Service("mlflow server", url, process, directory / "logs" / "mlflow.log")
        _wait_ready(service, f"{url}/health", timeout)
        logger.info("started mlflow server at %s (pid %d)", url, process.pid)
    try:
        yield service
    finally:
        service.stop()


def _refuse_taken_port(port: int, option: str) -> None:
    if port_in_use(port):
        raise StackError(f"port {port} on {HOST} is taken by something that is not the expected service; "
                         f"stop it or choose another port with {option}")


@dataclass
class LocalStack:
    """A running stack: its endpoints and the environment a client exports to use it."""

    directory: Path
    bucket: str
    s3: Service
    mlflow: Service
    env: dict[str, str] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.url

    @property
    def s3_endpoint(self) -> str:
        return self.s3.url

    def exports(self) -> str:
        """Shell lines to export the stack's environment."""
        return "\n".join(f"export {key}={value}" for key, value in self.env.items())


@contextlib.contextmanager
def local_stack(directory: str | Path = ".stack", *, mlflow_port: int = 0, s3_port: int = 0,
                bucket: str = DEFAULT_BUCKET, persist: bool = True,
                timeout: float = READY_TIMEOUT_S) -> Iterator[LocalStack]:
    """Start (or reuse) moto S3 + MLflow on 127.0.0.1 and yield a :class:`LocalStack`; stop what we started on exit.

    Args:
        directory: state folder: ``mlflow.db``, ``logs/``, and ``s3/`` (the saved bucket when ``persist``).
        mlflow_port, s3_port: ports on 127.0.0.1; 0 picks free ones.
        bucket: the bucket MLflow stores artifacts in (``s3://bucket/mlflow``); created when missing.
        persist: save the bucket to ``directory/s3`` on exit and load it into a freshly started moto.
        timeout: seconds to wait for each service to answer.
    """
    directory = Path(directory).resolve()
    with s3_server(directory, port=s3_port, bucket=bucket, timeout=timeout) as s3:
        if persist and s3.owned:
            restore_bucket(s3.url, bucket, directory / "s3")
        try:
            with mlflow_server(directory, s3_endpoint=s3.url, port=mlflow_port, bucket=bucket,
                               timeout=timeout) as mlflow:
                env = {**s3_env(s3.url), "MLFLOW_TRACKING_URI": mlflow.url}
                yield LocalStack(directory, bucket, s3, mlflow, env)
        finally:
            if persist and s3.owned:
                save_bucket(s3.url, bucket, directory / "s3")


def save_bucket(endpoint: str, bucket: str, folder: Path) -> int:
    """Copy every object of ``bucket`` to ``folder/<key>`` (replacing the folder's previous content).

    A key that cannot be a path inside the folder (``../x``, ``/abs/x``, a folder marker ``dir/``, ...; see
    :mod:`yolov12.data.object_keys`) is skipped with a warning. Returns the number of objects saved.
    """
    client = _s3_client(endpoint)
    staging = folder.with_name(folder.name + ".partial")
    _remove_tree(staging)
    staging.mkdir(parents=True)
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            try:
                target = path_inside(staging, safe_relative_path(bucket, item["Key"]), bucket=bucket, key=item["Key"])
            except UnsafeObjectKeyError as exc:
                logger.warning("not saving an object of s3://%s: %s", bucket, exc)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(target))
            count += 1
    _remove_tree(folder)
    staging.rename(folder)
    logger.info("saved %d object(s) of s3://%s to %s", count, bucket, folder)
    return count


def restore_bucket(endpoint: str, bucket: str, folder: Path) -> int:
    """Upload the files under ``folder`` into ``bucket`` (keys = paths relative to ``folder``).

    Symbolic links are not followed (a link could reach any file of the machine), and a relative path that
    :func:`save_bucket` would refuse as a key is skipped with a warning. Returns the number of objects uploaded.
    """
    if not folder.is_dir():
        return 0
    client = _s3_client(endpoint)
    files = _saved_files(bucket, folder)
    for path, key in files:
        client.upload_file(str(path), bucket, key)
    logger.info("restored %d object(s) into s3://%s from %s", len(files), bucket, folder)
    return len(files)


def _saved_files(bucket: str, folder: Path) -> list[tuple[Path, str]]:
    """(file, key) for each regular file under ``folder``; links to files or folders are skipped."""
    files = []
    for parent, _, names in os.walk(folder):  # followlinks=False: linked folders are not entered
        for name in names:
            path = Path(parent) / name
            key = path.relative_to(folder).as_posix()
            if path.is_symlink() or not path.is_file():
                logger.warning("not restoring %s into s3://%s: not a regular file", path, bucket)
            elif problem := key_problem(key):
                logger.warning("not restoring %s into s3://%s: %s", path, bucket, problem)
            else:
                files.append((path, key))
    return sorted(files)


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.local_stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=".stack", help="state folder (sqlite db, logs, saved bucket)")
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--s3-port", type=int, default=9000)
    parser.add_argument("--bucket", default=DEFAULT_BUCKET)
    parser.add_argument("--no-persist", action="store_true", help="do not save/restore the bucket in --dir/s3")
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_S)
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack as cleanly as Ctrl+C


def main(argv: list[str] | None = None) -> int:
    """Start the stack, print the exports, and run until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with local_stack(args.dir, mlflow_port=args.mlflow_port, s3_port=args.s3_port, bucket=args.bucket,
                         persist=not args.no_persist, timeout=args.timeout) as stack:
            print("# local stack is up; export this in your shell:", flush=True)
            print(stack.exports(), flush=True)
            print(f"# MLflow UI: {stack.tracking_uri}   S3: {stack.s3_endpoint} (bucket {stack.bucket})", flush=True)
            if not (stack.s3.owned or stack.mlflow.owned):
                print("# both services were already running; nothing to keep alive", flush=True)
                return 0
            print("# Ctrl+C stops it", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("# stopping the local stack", flush=True)
    except StackError as exc:
        print(f"local_stack: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
