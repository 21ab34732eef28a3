"""PipelineConfig: YAML + key=value routing, clear errors, storage resolution, the CLI's error path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import PipelineConfig, load_pipeline_config
from pipelines.storage import resolve_storage, s3_filesystem, worker_environment
from pipelines.train import default_run_name, main, parse_arguments
from yolov12.config.base import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "configs").glob("*.yaml") if p.name != "runtime-env.yaml"),
                         ids=lambda p: p.name)
def test_every_shipped_pipeline_config_loads(path: Path) -> None:
    config = load_pipeline_config(path)
    assert isinstance(config, PipelineConfig)
    assert config.scaling.num_workers >= 1


def test_overrides_route_to_train_and_sections(tmp_path: Path) -> None:
    config = load_pipeline_config(REPO / "configs/sample.yaml", [
        "epochs=3", "lr0=0.002", "train.imgsz=96", "train.optim.momentum=0.9", "scaling.num_workers=1",
        "storage.name=run-1", "checkpoint.num_to_keep=null", "failure.max_failures=-1", "model=yolov12s.yaml",
        "export_onnx=false"])
    assert (config.train.run.epochs, config.train.optim.lr0, config.train.data.imgsz) == (3, 0.002, 96)
    assert config.train.optim.momentum == 0.9
    assert (config.scaling.num_workers, config.storage.name, config.checkpoint.num_to_keep) == (1, "run-1", None)
    assert config.failure.max_failures == -1 and config.model == "yolov12s.yaml"
    flat = config.to_flat()
    assert flat["scaling.num_workers"] == 1 and flat["epochs"] == 3 and flat["tracking.enabled"] is True


def test_dict_overrides_without_a_file() -> None:
    config = load_pipeline_config(None, {"epochs": 1, "scaling.use_gpu": True, "tracking.enabled": False})
    assert config.train.run.epochs == 1 and config.scaling.use_gpu and not config.tracking.enabled
    assert config.train.data.data == "sample"  # the engine's own default


@pytest.mark.parametrize(("overrides", "message"), [
    (["epoch=3"], "did you mean 'epochs'"),
    (["scaling.num_worker=2"], "scaling: unknown key 'num_worker'; did you mean 'num_workers'"),
    (["scaling.num_workers=-1"], "num_workers=-1"),
    (["translate=0.8"], "train: translate=0.8 is out of range: use 0.0 <= translate <= 0.5"),
    (["train.augment.scale=1.0"], "train: scale=1.0 is out of range: use 0.0 <= scale < 1.0"),
    (["scalling.num_workers=2"], "did you mean 'scaling.num_workers'"),
    (["scaling=2"], "'scaling' is a section"),
    (["epochs"], "is not key=value"),
    (["storage.name=../escape"], "storage.name='../escape'"),
    (["checkpoint.score_attribute=loss"], "score_attribute='loss'"),
    (["export_onnx=maybe"], "invalid top-level value"),
])
def test_bad_overrides_raise_one_clear_error(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(REPO / "configs/sample.yaml", overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipeline_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_pipeline_config(tmp_path / "list.yaml")
    (tmp_path / "typo.yaml").write_text("trian:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="unknown top-level key 'trian'; did you mean 'train'"):
        load_pipeline_config(tmp_path / "typo.yaml")
    (tmp_path / "flat.yaml").write_text("epochs: 2\n")
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        load_pipeline_config(tmp_path / "flat.yaml")


def test_main_prints_one_line_and_returns_2_for_config_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["--config", str(REPO / "configs/sample.yaml"), "scaling.num_worker=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipelines.train: error: unknown key 'scaling.num_worker'; did you mean "
                          "'scaling.num_workers'?") and "\n" not in err


def test_arguments_accept_both_config_spellings() -> None:
    assert parse_arguments(["--config", "a.yaml", "epochs=2"]) == ("a.yaml", {"epochs": 2})
    assert parse_arguments(["config=b.yaml", "epochs=2"]) == ("b.yaml", {"epochs": 2})


def test_default_run_name_is_folder_safe_and_names_model_and_data() -> None:
    config = load_pipeline_config(None, {"model": "yolov12n.yaml", "data": "/x/my data/data.yaml"})
    name = default_run_name(config)
    assert name.startswith("yolov12n-my-data-") and all(c.isalnum() or c in "._-" for c in name)


def test_storage_local_is_absolute_and_s3_uses_the_endpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = resolve_storage("runs/ray")
    assert local.filesystem is None and local.storage_path == str(tmp_path / "runs/ray")
    assert not local.run_exists("r1")
    (tmp_path / "runs/ray/r1").mkdir(parents=True)
    assert local.run_exists("r1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    remote = resolve_storage("s3://bucket/some/prefix/")
    assert (remote.storage_path, remote.uri) == ("bucket/some/prefix", "s3://bucket/some/prefix")
    assert remote.filesystem.type_name == "s3"
    assert "127.0.0.1:9" in repr(remote.filesystem.__reduce__())  # endpoint_override reached pyarrow
    with pytest.raises(ConfigError, match="not a URL"):
        s3_filesystem({"AWS_ENDPOINT_URL": "http://"})
    with pytest.raises(ConfigError, match="use a folder or s3://"):
        resolve_storage("gs://bucket/x")
    shipped = worker_environment()
    assert shipped["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9" and "AWS_SECRET_ACCESS_KEY" not in shipped


def test_batch_is_global_and_must_split_over_the_workers() -> None:
    assert load_pipeline_config(overrides=["batch=16", "scaling.num_workers=2"]).train.data.batch == 16
    with pytest.raises(ConfigError, match="batch=9 is the global batch.*use batch=8 or batch=10"):
        load_pipeline_config(overrides=["batch=9", "scaling.num_workers=2"])


@pytest.mark.parametrize(("overrides", "message"), [
    (["device=0,1"], "set scaling.num_workers=2 scaling.use_gpu=true instead"),
    (["device=cuda:0", "scaling.use_gpu=false"], "Ray gives the workers no GPU"),
])
def test_devices_come_from_scaling(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(overrides=overrides)


def test_local_gpu_run_is_the_pipeline_with_one_worker_per_gpu() -> None:
    from pipelines.local_gpus import gpu_pipeline_config  # noqa: PLC0415
    from yolov12.config.train import TrainConfig  # noqa: PLC0415

    config = gpu_pipeline_config("yolov12n.yaml", TrainConfig.from_overrides(device="0,1", batch=32,
                                                                              project="runs/x"), [0, 1])
    assert (config.scaling.num_workers, config.scaling.use_gpu, config.train.run.device) == (2, True, "cuda")
    assert config.storage.output == "runs/x" and config.train.data.batch == 32
    with pytest.raises(ConfigError, match="batch=15"):
        gpu_pipeline_config("yolov12n.yaml", TrainConfig.from_overrides(batch=15), [0, 1])
