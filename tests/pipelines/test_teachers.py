"""Teachers by identity, on an embedded MLflow store: sha256, the registry version with the same weights, the run
named in the checkpoint's own lineage, old runs' plain-string records, and the preflight of ``models:/`` teachers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import load_pipeline_config
from pipelines.preflight import PreflightError, preflight_pipeline
from pipelines.registry import mlflow_client, register_weights
from pipelines.teachers import TeacherRef, checkpoint_run_id, parse_teachers_tag, resolve_teacher
from pipelines.tracking import TrackingError, ensure_experiment, teachers_tag
from pipelines.train import resolve_configured_teachers
from yolov12.data.digest import file_sha256
from yolov12.models import build_model, load_architecture
from yolov12.weights import save_checkpoint


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A native yolov12n checkpoint whose lineage names the run that trained it."""
    model = build_model(load_architecture("yolov12n"))
    return save_checkpoint(model, tmp_path_factory.mktemp("teacher") / "teacher.safetensors",
                           lineage={"run_id": "feedbeef" * 4})


def test_tag_entries_old_and_new_are_read() -> None:
    assert parse_teachers_tag(None) == [] and parse_teachers_tag("[]") == []
    assert parse_teachers_tag(json.dumps(["a.safetensors", "s3://b/t.safetensors"])) == [
        TeacherRef("a.safetensors"), TeacherRef("s3://b/t.safetensors")]
    entry = {"spec": "models:/t@champion", "sha256": "ab" * 32, "registry": "models:/t/2", "run_id": "r1", "x": 1}
    assert parse_teachers_tag(json.dumps([entry])) == [TeacherRef("models:/t@champion", "ab" * 32, "models:/t/2", "r1")]
    assert parse_teachers_tag("not json") == [TeacherRef("not json")]
    assert parse_teachers_tag(json.dumps({"spec": "one"})) == [TeacherRef("one")]
    assert parse_teachers_tag(json.dumps([{"sha256": 5}])) == [TeacherRef('{"sha256": 5}')]
    assert TeacherRef("a", sha256="cd" * 32).to_dict() == {"spec": "a", "sha256": "cd" * 32}


def test_a_local_checkpoint_is_identified_by_sha256_and_its_lineage_run(teacher_file: Path, tmp_path: Path) -> None:
    resolved = resolve_teacher(str(teacher_file), None)
    assert resolved.path == str(teacher_file)
    assert resolved.ref == TeacherRef(str(teacher_file), file_sha256(teacher_file), None, "feedbeef" * 4)
    assert resolve_teacher("s3://bucket/t.safetensors", None).ref == TeacherRef("s3://bucket/t.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"not a checkpoint")
    assert checkpoint_run_id(tmp_path / "broken.safetensors") is None
    assert checkpoint_run_id(tmp_path / "weights.pt") is None
    with pytest.raises(ValueError, match="registry URI but no registry was given"):
        resolve_teacher("models:/t@champion", None)


def test_a_local_file_with_registered_weights_is_linked_to_that_version(teacher_file: Path, tmp_path: Path) -> None:
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(ensure_experiment(client, "teachers"))
    register_weights(client, name="teacher", run_id=run.info.run_id, weights=teacher_file)
    ref = resolve_teacher(str(teacher_file), client).ref
    assert (ref.registry, ref.run_id) == ("models:/teacher/1", run.info.run_id)  # the version's run wins
    assert json.loads(teachers_tag(client, [str(teacher_file), ref])) == [ref.to_dict(), ref.to_dict()]
    with pytest.raises(TrackingError, match="over the 8000 an MLflow tag holds"):
        teachers_tag(client, [TeacherRef("t" * 9000)])


def test_untracked_jobs_with_file_teachers_are_left_as_they_are(teacher_file: Path) -> None:
    config = load_pipeline_config(None, {"distill.teachers": [str(teacher_file)], "tracking.enabled": False})
    assert resolve_configured_teachers(config) == (config, [])


def test_preflight_looks_up_registry_teachers_in_the_jobs_own_registry(teacher_file: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}"
    client = mlflow_client(store)
    register_weights(client, name="teacher", run_id=client.create_run(ensure_experiment(client, "t")).info.run_id,
                     weights=teacher_file, alias="champion")
    monkeypatch.chdir(tmp_path)  # the default embedded store here holds nothing
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_pipeline_config(None, {"distill.teachers": ["models:/teacher@champion"],
                                         "tracking.tracking_uri": store})
    preflight_pipeline(config)
    training, (ref,) = resolve_configured_teachers(config)
    assert Path(training.train.distill.teachers[0]).read_bytes() == teacher_file.read_bytes()
    assert (ref.registry, ref.sha256) == ("models:/teacher/1", file_sha256(teacher_file))
    wrong = load_pipeline_config(None, {"distill.teachers": ["models:/teacher@gone"], "tracking.tracking_uri": store})
    with pytest.raises(PreflightError, match="distill.teachers: .*has no alias 'gone'"):
        preflight_pipeline(wrong)
