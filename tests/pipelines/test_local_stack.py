"""The local stack (moto S3 + mlflow server on loopback): reuse of running services, bucket persistence, errors."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml

from pipelines import local_stack
from pipelines.local_stack import StackError, answers

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_running_services_are_reused_and_left_running(mlflow_server, tmp_path: Path) -> None:
    with local_stack.local_stack(tmp_path, mlflow_port=_port(mlflow_server.url),
                                 s3_port=_port(mlflow_server.s3.url), bucket=mlflow_server.s3.bucket) as stack:
        assert not stack.s3.owned and not stack.mlflow.owned
        assert stack.env["MLFLOW_TRACKING_URI"] == mlflow_server.url
        assert stack.env["AWS_ENDPOINT_URL"] == stack.env["MLFLOW_S3_ENDPOINT_URL"] == mlflow_server.s3.url
        assert f"export MLFLOW_TRACKING_URI={mlflow_server.url}" in stack.exports()
    assert answers(f"{mlflow_server.url}/health") and answers(mlflow_server.s3.url)  # not ours to stop
    assert not (tmp_path / "s3").exists()  # a reused S3 is not snapshotted


def test_cli_prints_exports_for_a_running_stack(mlflow_server, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    code = local_stack.main(["--dir", str(tmp_path), "--mlflow-port", str(_port(mlflow_server.url)),
                             "--s3-port", str(_port(mlflow_server.s3.url)), "--bucket", mlflow_server.s3.bucket])
    assert code == 0
    out = capsys.readouterr().out
    assert f"export MLFLOW_TRACKING_URI={mlflow_server.url}" in out and "already running" in out


def test_a_fresh_moto_gets_the_saved_bucket_back(mlflow_server, tmp_path: Path) -> None:
    keep = {"mlflow/1/abc/artifacts/weights/best.safetensors": b"weights", "mlflow/1/abc/artifacts/results.csv": b"e"}
    arguments = dict(mlflow_port=_port(mlflow_server.url), bucket="persisted")
    with local_stack.local_stack(tmp_path, **arguments) as stack:
        assert stack.s3.owned
        client = boto3.client("s3", endpoint_url=stack.s3_endpoint, **_credentials())
        for key, body in keep.items():
            client.put_object(Bucket="persisted", Key=key, Body=body)
        first_url = stack.s3_endpoint
    assert not answers(first_url)  # we started it, we stopped it
    assert {p.relative_to(tmp_path / "s3").as_posix() for p in (tmp_path / "s3").rglob("*") if p.is_file()} == set(keep)
    with local_stack.local_stack(tmp_path, **arguments) as stack:
        client = boto3.client("s3", endpoint_url=stack.s3_endpoint, **_credentials())
        assert {k: client.get_object(Bucket="persisted", Key=k)["Body"].read() for k in keep} == keep


def _credentials() -> dict[str, str]:
    env = local_stack.DEFAULT_CREDENTIALS
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_DEFAULT_REGION"]}


def test_a_port_held_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:  # accepts connections, never answers HTTP
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} .* choose another port with --s3-port"):
            with local_stack.s3_server(tmp_path, port=port):
                pass


def test_start_script_runs_the_same_module() -> None:
    done = subprocess.run(["bash", str(REPO / "infra" / "local" / "start-stack.sh"), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "--mlflow-port" in done.stdout and "--s3-port" in done.stdout


def test_compose_file_describes_the_same_stack() -> None:
    compose = yaml.safe_load((REPO / "infra" / "local" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"s3", "db", "mlflow"} <= set(services)
    server = " ".join(services["mlflow"]["command"])
    assert "mlflow server" in server and "--artifacts-destination s3://yolov12/mlflow" in server
    assert local_stack.DEFAULT_BUCKET == "yolov12"  # the same bucket as the Docker-less stack
    assert all(port.startswith("127.0.0.1:") for s in services.values() for port in s.get("ports", []))
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://s3:9000"


def test_saving_a_bucket_keeps_hostile_keys_inside_the_folder(s3, tmp_path: Path) -> None:
    bucket = "hostile-keys"
    local_stack.ensure_bucket(s3.url, bucket)
    client = s3.client()
    for key in ["good/a.txt", "../outside.txt", f"{tmp_path}/absolute.txt", "a/../../up.txt", "dir/"]:
        client.put_object(Bucket=bucket, Key=key, Body=b"payload")
    folder = tmp_path / "state" / "s3"
    assert local_stack.save_bucket(s3.url, bucket, folder) == 1
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {"state/s3/good/a.txt"}


def test_restoring_a_bucket_does_not_follow_symbolic_links(s3, tmp_path: Path) -> None:
    bucket = "restore-links"
    local_stack.ensure_bucket(s3.url, bucket)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the bucket")
    folder = tmp_path / "state" / "s3"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.txt").write_text("a")
    (folder / "data" / "link.txt").symlink_to(secret)
    (folder / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    assert local_stack.restore_bucket(s3.url, bucket, folder) == 1
    assert [item["Key"] for item in s3.client().list_objects_v2(Bucket=bucket)["Contents"]] == ["data/a.txt"]
