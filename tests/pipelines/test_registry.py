"""The registry on a real ``mlflow server`` (artifacts on moto S3): aliases, promotion, resolving URIs to weights."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from support.training_runs import digest_for, tracked_run

from pipelines.cli import promote_command
from pipelines.registry import ModelNotFoundError, ModelURI, RegistryError, promote, resolve_model_uri
from pipelines.tracking import TrackingConfig
from yolov12.weights import load_weights

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_versions(mlflow_server, tmp_path_factory: pytest.TempPathFactory):
    """Two training runs registered as versions 1 and 2 of a fresh model."""
    name = f"registry-{uuid.uuid4().hex[:8]}"
    tracking = TrackingConfig(tracking_uri=mlflow_server.url, experiment=name, registered_model=name)
    runs = [tracked_run(tmp_path_factory.mktemp(f"run{i}"), tracking, run_name=f"job-{i}",
                        digest=digest_for(f"{name}-{i}"), seed=i) for i in (1, 2)]
    return name, runs, mlflow_server.url


def test_registration_sets_candidate_on_the_newest_version(two_versions) -> None:
    name, runs, uri = two_versions
    assert [r.version for r in runs] == ["1", "2"]
    model = MlflowClient(uri).get_registered_model(name)
    assert model.aliases == {"candidate": "2"}


def test_promote_moves_champion_and_resolve_downloads_weights_that_load(two_versions, tmp_path: Path) -> None:
    name, runs, uri = two_versions
    promote(name, 1, tracking_uri=uri)
    path = resolve_model_uri(f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path)
    expected = runs[0].run_dir / "weights" / "best.safetensors"
    assert path.read_bytes() == expected.read_bytes()
    model, _ = load_weights(path)
    reference, _ = load_weights(expected)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    stamp = path.stat().st_mtime_ns
    assert resolve_model_uri(f"models:/{name}/1", tracking_uri=uri, cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # served from the cache, not downloaded again

    promote(name, "2", alias="champion", tracking_uri=uri)  # the alias moves; the URI follows it
    moved = resolve_model_uri(f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path)
    assert moved != path and moved.read_bytes() == (runs[1].run_dir / "weights" / "best.safetensors").read_bytes()


def test_a_tampered_cache_is_downloaded_again(two_versions, tmp_path: Path) -> None:
    name, runs, uri = two_versions
    path = resolve_model_uri(f"models:/{name}/2", tracking_uri=uri, cache_dir=tmp_path)
    path.write_bytes(b"corrupted")
    again = resolve_model_uri(f"models:/{name}/2", tracking_uri=uri, cache_dir=tmp_path)
    assert again.read_bytes() == (runs[1].run_dir / "weights" / "best.safetensors").read_bytes()


def test_clear_errors_for_unknown_model_alias_version_and_bad_uri(two_versions, tmp_path: Path) -> None:
    name, _, uri = two_versions
    with pytest.raises(ModelNotFoundError, match=rf"no registered model 'nope-{name}'.*registered: .*{name}"):
        resolve_model_uri(f"models:/nope-{name}@champion", tracking_uri=uri, cache_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"has no alias 'staging' \(aliases: .*candidate->2.*promote"):
        resolve_model_uri(f"models:/{name}@staging", tracking_uri=uri, cache_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"has no version '9'; versions: 1, 2"):
        promote(name, 9, tracking_uri=uri)
    with pytest.raises(RegistryError, match="not a registered-model URI"):
        ModelURI.parse("runs:/abc/model")


def test_promote_command_accepts_both_cli_styles(two_versions, capsys: pytest.CaptureFixture) -> None:
    name, _, uri = two_versions
    assert promote_command([name, "1", "--alias", "blue", "--tracking-uri", uri]) == 0
    assert f"models:/{name}@blue -> version 1" in capsys.readouterr().out
    assert promote_command([f"name={name}", "version=2", "alias=blue", f"tracking_uri={uri}"]) == 0
    assert MlflowClient(uri).get_registered_model(name).aliases["blue"] == "2"
    assert promote_command([f"model={name}", "version=1", "alias=blue", f"tracking_uri={uri}"]) == 0
    assert MlflowClient(uri).get_registered_model(name).aliases["blue"] == "1"


def test_preflight_finds_registered_versions_and_names_a_missing_alias(two_versions) -> None:
    from pipelines.preflight import PreflightError, check_registered_model

    name, _, uri = two_versions
    assert check_registered_model(f"models:/{name}@candidate", uri) == "2"
    assert check_registered_model(f"models:/{name}/1", uri) == "1"
    with pytest.raises(PreflightError, match=r"has no alias 'staging'"):
        check_registered_model(f"models:/{name}@staging", uri)


def _version_with_tags(uri: str, tags: dict[str, str]) -> str:
    """A version of a fresh model whose tags are written by hand, as anyone with registry access can."""
    client = MlflowClient(uri)
    name = f"tagged-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, source="s3://yolov12-test/mlflow/nowhere",
                                tags={"format": "yolov12-safetensors", **tags})
    return name


@pytest.mark.parametrize("weights_file", ["../../secret.safetensors", "ABSOLUTE", "..", "a/b.safetensors"])
def test_a_weights_file_tag_outside_the_artifact_folder_is_refused(mlflow_tracking, tmp_path: Path,
                                                                   weights_file: str) -> None:
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"not weights")
    value = str(secret) if weights_file == "ABSOLUTE" else weights_file
    name = _version_with_tags(mlflow_tracking.url, {"weights_file": value, "model_id": "m-0123"})
    with pytest.raises(RegistryError, match=rf"models:/{name}/1 \(version 1\): tag weights_file="):
        resolve_model_uri(f"models:/{name}/1", tracking_uri=mlflow_tracking.url, cache_dir=tmp_path / "cache")


def test_a_model_id_tag_that_names_a_parent_folder_is_refused(mlflow_tracking, tmp_path: Path) -> None:
    (tmp_path / "best.safetensors").write_bytes(b"not weights")
    name = _version_with_tags(mlflow_tracking.url, {"weights_file": "best.safetensors", "model_id": ".."})
    with pytest.raises(RegistryError, match=r"tag model_id='\.\.'"):
        resolve_model_uri(f"models:/{name}/1", tracking_uri=mlflow_tracking.url, cache_dir=tmp_path / "cache")
    assert (tmp_path / "best.safetensors").read_bytes() == b"not weights"
