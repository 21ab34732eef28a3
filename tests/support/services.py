"""Real services for integration tests: a moto S3 server and an ``mlflow server`` on 127.0.0.1.

Both are session-scoped and start lazily (only when a test asks for them), through the same code as
``python -m pipelines.local_stack``; they wait for readiness with a timeout and fail with the service's log tail.

Fixtures:
    s3_server: the moto endpoint (session), with bucket ``TEST_BUCKET``; no environment change.
    s3: function-scoped; sets AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (and
        MLFLOW_S3_ENDPOINT_URL) for the test; returns the endpoint.
    mlflow_server: ``mlflow server`` (session), sqlite backend, ``--artifacts-destination s3://TEST_BUCKET/mlflow``.
    mlflow_tracking: function-scoped; the S3 environment plus MLFLOW_TRACKING_URI; returns the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pipelines import local_stack

TEST_BUCKET = "yolov12-test"
MLFLOW_PREFIX = "mlflow"


@dataclass(frozen=True)
class S3Endpoint:
    """A running S3-compatible endpoint with one bucket."""

    url: str
    bucket: str
    env: dict[str, str] = field(default_factory=dict)

    def client(self):
        """A boto3 S3 client talking HTTP to the endpoint."""
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                            region_name=self.env["AWS_DEFAULT_REGION"])

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in the bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclass(frozen=True)
class MlflowEndpoint:
    """A running MLflow tracking server whose artifacts go to ``s3://bucket/mlflow`` on ``s3``."""

    url: str
    s3: S3Endpoint
    artifact_prefix: str = MLFLOW_PREFIX

    @property
    def env(self) -> dict[str, str]:
        return {**self.s3.env, "MLFLOW_TRACKING_URI": self.url}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    directory = tmp_path_factory.mktemp("moto")
    try:
        with local_stack.s3_server(directory, bucket=TEST_BUCKET) as service:
            yield S3Endpoint(service.url, TEST_BUCKET, local_stack.s3_env(service.url))
    except local_stack.StackError as exc:
        pytest.fail(f"moto S3 server: {exc}", pytrace=False)


@pytest.fixture
def s3(s3_server: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def mlflow_server(s3_server: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowEndpoint]:
    directory = tmp_path_factory.mktemp("mlflow-server")
    try:
        with local_stack.mlflow_server(directory, s3_endpoint=s3_server.url, bucket=TEST_BUCKET) as service:
            yield MlflowEndpoint(service.url, s3_server)
    except local_stack.StackError as exc:
        pytest.fail(f"mlflow server: {exc}", pytrace=False)


@pytest.fixture
def mlflow_tracking(mlflow_server: MlflowEndpoint, monkeypatch: pytest.MonkeyPatch) -> MlflowEndpoint:
    for key, value in mlflow_server.env.items():
        monkeypatch.setenv(key, value)
    return mlflow_server
