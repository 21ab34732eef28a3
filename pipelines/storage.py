"""Where Ray Train keeps a run: a local/shared folder or ``s3://bucket/prefix`` on any S3-compatible store.

For ``s3://`` the pyarrow S3 filesystem is built from the usual AWS environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``) and the endpoint from
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (``http://host:port`` for MinIO, moto, Ceph...). Multi-node runs need
such shared storage: every worker uploads and downloads checkpoints there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs

from yolov12.config.base import ConfigError
from yolov12.data.remote import is_s3, split_s3_uri

# Non-secret settings the driver hands to the Ray Train workers (endpoints, regions, caches). Credentials are NOT
# passed (the runtime environment is visible in the Ray dashboard): workers read them from their node (the
# environment of `ray start`, an instance role, a Kubernetes Secret) or from the job's runtime_env.
WORKER_ENVIRONMENT = (
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL", "YOLOV12_CACHE", "YOLOV12_DATASETS",
)


@dataclass(frozen=True)
class RunStorage:
    """What ``ray.train.RunConfig`` gets (``storage_path``, ``storage_filesystem``) and the run's address for humans."""

    storage_path: str
    filesystem: pyarrow.fs.FileSystem | None
    uri: str

    def run_uri(self, name: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}"

    def run_exists(self, name: str) -> bool:
        """True when ``name`` already holds a Ray Train run here (submitting it again resumes it)."""
        filesystem = self.filesystem or pyarrow.fs.LocalFileSystem()
        info = filesystem.get_file_info(f"{self.storage_path.rstrip('/')}/{name}")
        return info.type != pyarrow.fs.FileType.NotFound


def resolve_storage(storage_path: str) -> RunStorage:
    """A local folder (made absolute, so workers in other folders agree) or an S3 prefix with its filesystem."""
    if is_s3(storage_path):
        bucket, key = split_s3_uri(storage_path)
        path = f"{bucket}/{key.strip('/')}".rstrip("/")
        return RunStorage(path, s3_filesystem(), f"s3://{path}")
    if "://" in storage_path:
        raise ConfigError(f"storage.storage_path={storage_path!r}: use a folder or s3://bucket/prefix")
    path = str(Path(storage_path).expanduser().resolve())
    return RunStorage(path, None, path)


def s3_filesystem(environ: dict[str, str] | None = None) -> pyarrow.fs.S3FileSystem:
    """pyarrow's S3 filesystem for the endpoint and credentials of the AWS environment variables."""
    env = os.environ if environ is None else environ
    options: dict = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        if not parsed.netloc:
            raise ConfigError(f"AWS_ENDPOINT_URL={endpoint!r} is not a URL; expected e.g. http://127.0.0.1:9000")
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                       session_token=env.get("AWS_SESSION_TOKEN"))
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pyarrow.fs.S3FileSystem(**options)


# Ray Train v2 reroutes every print() of a worker into its logger, past contextlib.redirect_stdout, so the progress
# prints of pycocotools ("creating index...", "DONE (t=0.02s)") that the evaluator swallows would fill the job logs
# at every validation. Our own progress goes through logging and is not affected.
WORKER_FIXED_ENVIRONMENT = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}


def worker_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The storage/tracking variables set on the driver (and our fixed worker settings), for the workers' runtime
    environment."""
    env = os.environ if environ is None else environ
    return {**WORKER_FIXED_ENVIRONMENT, **{name: env[name] for name in WORKER_ENVIRONMENT if env.get(name)}}
