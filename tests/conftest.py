"""Shared fixtures for every test package: real S3 (moto) and MLflow servers on loopback, started on demand."""

from support.services import mlflow_server, mlflow_tracking, s3, s3_server  # noqa: F401
