"""``yolov12 serve``: a bad model or config fails in one line before Ray starts; random weights only on request."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.ray_guard import forbid_ray_start

from serve.config import ServeAppConfig
from serve.preflight import check_serving_sources
from yolov12.cli.main import main
from yolov12.preflight import PreflightError


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [(["model=missing.safetensors"], "weights file 'missing.safetensors' does not exist"),
     (["model=yolov12n.yaml"], "add random_weights=true"),
     (["model=yolov12q.yaml", "random_weights=true"], "Did you mean yolov12"),
     (["model=best.onnx"], "exported model 'best.onnx' does not exist"),
     (["yolov12n.yaml", "models={b: missing.pt}", "random_weights=true"], "models.b: weights file 'missing.pt'"),
     (["model=yolov12n.yaml", "imgszz=320"], "did you mean 'imgsz'"),
     (["model=yolov12n.yaml", "max_batch_size=0"], "max_batch_size")],
)
def test_bad_model_or_config_exits_2_in_one_line_without_ray(capsys, monkeypatch, arguments: list[str],
                                                             fragment: str) -> None:
    attempts = forbid_ray_start(monkeypatch)
    assert main(["serve", *arguments]) == 2
    assert attempts == []  # refused by the checks, before Ray
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolov12 serve: error: ") and "\n" not in err
    assert fragment in err


def test_random_weights_opt_in_lets_an_architecture_through() -> None:
    with pytest.raises(PreflightError, match="is an architecture"):
        check_serving_sources(ServeAppConfig(model="yolov12n.yaml"))
    check_serving_sources(ServeAppConfig(model="yolov12n.yaml", random_weights=True))
    check_serving_sources(ServeAppConfig(model="yolov12s.yaml", models={"b": "yolov12n-cls.yaml"},
                                         random_weights=True))


def test_a_replica_builds_the_architecture_only_with_random_weights(tmp_path: Path) -> None:
    from serve.app import detector_init_config
    from serve.model_deployment import Detector
    from serve.runtime import ModelSourceError

    def replica(**settings):
        config = ServeAppConfig(model="yolov12n.yaml", backend="torch", imgsz=64, cache_dir=str(tmp_path), **settings)
        return Detector.func_or_class(detector_init_config(config))

    first = replica(random_weights=True).model
    assert first.name == "yolov12n-random" and first.task == "detect"
    assert replica(random_weights=True).model.version == first.version  # the same seed-0 weights, built once
    with pytest.raises(ModelSourceError, match="does not exist"):  # what yolov12 serve's preflight prevents
        replica()
