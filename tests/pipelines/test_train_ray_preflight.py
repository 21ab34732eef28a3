"""``yolov12 train-ray``: one key=value grammar, and a bad model, data or key fails in one line before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.ray_guard import forbid_ray_start

from pipelines.arguments import parse_pipeline_arguments
from pipelines.config import load_pipeline_config
from pipelines.preflight import check_registered_model, preflight_pipeline
from yolov12.cli.arguments import CommandLineError
from yolov12.cli.main import main
from yolov12.preflight import PreflightError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "configs/sample.yaml")


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [("model=missing.safetensors", "weights file 'missing.safetensors' does not exist"),
     ("model=yolov12q.yaml", "Did you mean yolov12"),
     ("model=yolov12n.onnx", "is an exported model, which this command does not take"),
     ("data=samplee", "data: "),
     ("epochss=3", "unknown key 'epochss'; did you mean 'epochs'?"),
     ("num_workers=2", "did you mean 'scaling.num_workers'?"),
     ("scaling.num_workers=-1", "scaling")],
)
def test_bad_model_data_or_key_exits_2_in_one_line_without_ray(capsys, monkeypatch, argument: str,
                                                               fragment: str) -> None:
    attempts = forbid_ray_start(monkeypatch)
    assert main(["train-ray", f"config={SAMPLE}", argument]) == 2
    assert attempts == []  # refused by the checks, before Ray
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolov12 train-ray: error: ") and "\n" not in err
    assert fragment in err


def test_every_config_spelling_gives_the_same_overrides() -> None:
    expected = ("a.yaml", {"epochs": 3, "scaling.num_workers": 2})
    for argv in (["config=a.yaml"], ["--config", "a.yaml"], ["-c", "a.yaml"], ["--config=a.yaml"], ["a.yaml"]):
        assert parse_pipeline_arguments([*argv, "epochs=3", "scaling.num_workers=2"]) == expected
    with pytest.raises(CommandLineError, match="--config needs a value"):
        parse_pipeline_arguments(["--config"])


def test_preflight_takes_the_sample_job_and_refuses_teachers_that_are_not_weights(tmp_path: Path) -> None:
    preflight_pipeline(load_pipeline_config(SAMPLE))
    config = load_pipeline_config(SAMPLE, {"distill.teachers": [str(tmp_path / "teacher.safetensors")]})
    with pytest.raises(PreflightError, match="distill.teachers: weights file .*teacher.safetensors"):
        preflight_pipeline(config)


def test_registry_uri_without_a_registry_is_refused_without_creating_one(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(PreflightError, match="holds no models"):
        check_registered_model("models:/det@champion", uri)
    assert not (tmp_path / "mlflow.db").exists()
    with pytest.raises(PreflightError, match="not a registered-model URI"):
        check_registered_model("models:/det", uri)
