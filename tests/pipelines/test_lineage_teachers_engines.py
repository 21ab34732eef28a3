"""Lineage through a distillation teacher and out to the engine that serves, on a real ``mlflow server``.

A teacher version trained on dataset T (promoted to champion); a student run that names the teacher as
``models:/TEACHER@champion``, resolved by the pipeline's own teacher step (pinned, downloaded, identified); and an
ONNX engine of the student built at 64 px and recorded on its version by the serving runtime, as a replica does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from support.training_runs import (
    DATASET_SOURCE,
    SYSTEM,
    TrackedRun,
    digest_for,
    make_run_dir,
    tracked_run,
    training_params,
)

from pipelines.cli import lineage_command
from pipelines.config import PipelineConfig, load_pipeline_config
from pipelines.lineage import TeacherLink, lineage
from pipelines.preflight import PreflightError, preflight_pipeline
from pipelines.registry import promote
from pipelines.teachers import TeacherRef
from pipelines.tracking import TAG_TEACHERS, TrackingConfig, finish_training_run, start_training_run
from pipelines.train import resolve_configured_teachers
from serve.runtime import ServingModel, load_serving_model
from yolov12.data.digest import file_sha256
from yolov12.models import load_model

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Family:
    uri: str
    teacher_name: str
    student_name: str
    teacher: TrackedRun
    student_run_id: str
    student_digest: str
    config: PipelineConfig  # as given: the teacher by models:/ URI
    training: PipelineConfig  # what the trainer gets: the teacher as a downloaded file
    refs: list[TeacherRef]
    served: ServingModel


@pytest.fixture(scope="module")
def family(mlflow_server, tmp_path_factory: pytest.TempPathFactory) -> Family:
    label = uuid.uuid4().hex[:8]
    uri = mlflow_server.url
    teacher_name, student_name = f"teacher-{label}", f"student-{label}"
    teacher = tracked_run(tmp_path_factory.mktemp("teacher"), TrackingConfig(
        tracking_uri=uri, experiment=f"teachers-{label}", registered_model=teacher_name), run_name="teacher-job",
        digest=digest_for(f"{label}-T"), seed=3)
    promote(teacher_name, 1, tracking_uri=uri)
    tracking = TrackingConfig(tracking_uri=uri, experiment=f"students-{label}", registered_model=student_name)
    config = load_pipeline_config(None, {"distill.teachers": [f"models:/{teacher_name}@champion"],
                                         "tracking.tracking_uri": uri, "tracking.experiment": tracking.experiment,
                                         "tracking.registered_model": student_name})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YOLOV12_CACHE", str(tmp_path_factory.mktemp("cache")))
        training, refs = resolve_configured_teachers(config)
        digest = digest_for(f"{label}-S")
        run_id = start_training_run(tracking, run_name="student-job", params=training_params(), dataset_digest=digest,
                                    dataset_source=DATASET_SOURCE, teachers=refs, system=SYSTEM)
        run_dir = make_run_dir(tmp_path_factory.mktemp("student"), seed=4)
        assert finish_training_run(tracking, run_id, run_dir=run_dir, best_weights=run_dir / "weights" /
                                   "best.safetensors", onnx=None) == "1"
        promote(student_name, 1, tracking_uri=uri)
        served = load_serving_model(f"models:/{student_name}@champion", backend="onnxruntime", device="cpu",
                                    imgsz=64, max_batch=2, threads=1, cache_dir=str(tmp_path_factory.mktemp("engines")),
                                    tracking_uri=uri)
        served.registration.join(timeout=120)
    return Family(uri, teacher_name, student_name, teacher, run_id, digest, config, training, refs, served)


def test_a_registry_teacher_is_pinned_downloaded_for_the_trainer_and_recorded_by_identity(family: Family) -> None:
    teacher_weights = family.teacher.run_dir / "weights" / "best.safetensors"
    (local,) = family.training.train.distill.teachers
    assert Path(local).read_bytes() == teacher_weights.read_bytes()
    assert load_model(local).task == "detect"  # what the trainer's teacher loader does with it
    assert family.config.train.distill.teachers == [f"models:/{family.teacher_name}@champion"]
    assert family.refs == [TeacherRef(f"models:/{family.teacher_name}@champion", file_sha256(teacher_weights),
                                      f"models:/{family.teacher_name}/1", family.teacher.run_id)]
    tags = MlflowClient(family.uri).get_run(family.student_run_id).data.tags
    assert json.loads(tags[TAG_TEACHERS]) == [family.refs[0].to_dict()]


def test_lineage_of_the_champion_reaches_the_teachers_dataset_and_the_serving_engine(family: Family) -> None:
    chain = lineage(f"models:/{family.student_name}@champion", tracking_uri=family.uri)
    assert chain.run_id == family.student_run_id and chain.dataset.digest == family.student_digest
    (link,) = chain.teachers
    assert (link.registry, link.run_id, link.run_name) == (f"models:/{family.teacher_name}/1", family.teacher.run_id,
                                                          "teacher-job")
    assert link.dataset_digest == family.teacher.digest and link.dataset_source == DATASET_SOURCE
    assert link.sha256 == family.refs[0].sha256 and not link.problem
    (engine,) = chain.engines
    artifact = Path(family.served.engine.info.artifact)
    assert engine == family.served.engine_record and engine.sha256 == file_sha256(artifact)
    assert (engine.backend, engine.format, engine.imgsz, engine.batch) == ("onnxruntime", "onnx", 64, 2)
    assert engine.weights_sha256 == chain.version_tags["weights_sha256"]
    assert not any(key.startswith("yolov12.engine.") for key in chain.version_tags)
    text = chain.render()
    assert (f"teacher    models:/{family.teacher_name}@champion  sha256={link.sha256}  "
            f"version=models:/{family.teacher_name}/1  run={family.teacher.run_id}  "
            f"dataset={family.teacher.digest}") in text
    assert f"engine     onnxruntime onnx fp32  sha256={engine.sha256}  device=cpu  imgsz=64 batch=2" in text


def test_lineage_command_shows_teachers_and_engines(family: Family, capsys: pytest.CaptureFixture) -> None:
    model = f"models:/{family.student_name}@champion"
    assert lineage_command([model, f"tracking_uri={family.uri}"]) == 0
    out = capsys.readouterr().out
    assert f"dataset={family.teacher.digest}" in out and family.served.engine_record.sha256 in out
    assert lineage_command([model, f"tracking_uri={family.uri}", "json=true"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["teachers"][0]["dataset_digest"] == family.teacher.digest
    assert data["engines"][0]["sha256"] == family.served.engine_record.sha256


def test_old_string_records_cycles_and_missing_runs_are_shown_not_followed(family: Family) -> None:
    client = MlflowClient(family.uri)
    teacher_model = f"models:/{family.teacher_name}/1"
    client.set_tag(family.teacher.run_id, TAG_TEACHERS, json.dumps(["s3://old/teacher.safetensors"]))
    assert lineage(teacher_model, tracking_uri=family.uri).teachers == [TeacherLink("s3://old/teacher.safetensors")]
    entries = [{"spec": "itself", "run_id": family.teacher.run_id}, {"spec": "gone", "run_id": "0" * 32},
               {"spec": f"models:/{family.student_name}/1", "registry": f"models:/{family.student_name}/1"},
               {"spec": "removed", "registry": f"models:/{family.student_name}/9"}]
    client.set_tag(family.teacher.run_id, TAG_TEACHERS, json.dumps(entries))
    itself, gone, student, removed = lineage(teacher_model, tracking_uri=family.uri).teachers
    assert "already on this chain" in itself.problem and itself.dataset_digest is None
    assert "not in this tracking store" in gone.problem
    assert (student.run_id, student.dataset_digest, student.problem) == (family.student_run_id, family.student_digest,
                                                                         "")
    assert "version not found" in removed.problem and "no version '9'" in removed.problem


def test_preflight_accepts_registry_teachers_and_names_a_missing_alias(family: Family) -> None:
    preflight_pipeline(family.config)
    missing = family.config.model_copy(update={"train": family.config.train.model_copy(update={
        "distill": family.config.train.distill.model_copy(update={"teachers": [f"models:/{family.teacher_name}@gone"]})
    })})
    with pytest.raises(PreflightError, match=r"distill.teachers: .*has no alias 'gone'"):
        preflight_pipeline(missing)
