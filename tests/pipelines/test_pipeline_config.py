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
    assert config.scaling.min_workers >= 1


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
    (tmp_path / "renamed.yaml").write_text("data:\n  loader: ray_data\n  decode_actors: 2\n")
    with pytest.raises(ConfigError, match=r"^'data.decode_actors' is now 'data.decode_tasks' \(.*\): rename it$"):
        load_pipeline_config(tmp_path / "renamed.yaml")
    (tmp_path / "moved.yaml").write_text("data:\n  loader: ray_data\n  mixing_buffer: 64\n")
    with pytest.raises(ConfigError, match=r"^data.mixing_buffer is a training key: in a pipeline YAML put it under "
                                          r"train: \(train: \{mixing_buffer: \.\.\.\}\)$"):
        load_pipeline_config(tmp_path / "moved.yaml")


def test_the_streams_mixing_buffer_is_the_training_key_and_never_zero() -> None:
    assert load_pipeline_config(None, ["data.loader=ray_data", "data.mixing_buffer=64"]).train.data.mixing_buffer == 64
    with pytest.raises(ConfigError, match=r"^train.mixing_buffer=0 draws mosaic partners from the whole split, which "
                                          r"the stream \(data.loader=ray_data\) cannot"):
        load_pipeline_config(None, ["data.loader=ray_data", "mixing_buffer=0"])
    assert load_pipeline_config(None, ["mixing_buffer=0"]).train.data.mixing_buffer == 0, "the local loader takes 0"


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


@pytest.mark.parametrize("value", ["[2, 4]", "2,4", " 2 , 4 "])
def test_an_elastic_worker_range_from_the_command_line(value: str) -> None:
    config = load_pipeline_config(None, [f"scaling.num_workers={value}", "batch=12"])
    scaling = config.scaling
    assert scaling.num_workers == (2, 4) and (scaling.min_workers, scaling.max_workers) == (2, 4)
    assert scaling.elastic and list(scaling.world_sizes) == [2, 3, 4]
    assert config.model_dump(mode="json")["scaling"]["num_workers"] == [2, 4]  # what the workers receive
    assert PipelineConfig.model_validate(config.model_dump(mode="json")).scaling.num_workers == (2, 4)


def test_an_elastic_worker_range_from_yaml(tmp_path: Path) -> None:
    (tmp_path / "elastic.yaml").write_text("train:\n  batch: 24\nscaling:\n  num_workers: [3, 4]\n")
    assert load_pipeline_config(tmp_path / "elastic.yaml").scaling.num_workers == (3, 4)


def test_a_fixed_count_is_one_world_size() -> None:
    assert load_pipeline_config(None, {"scaling.num_workers": "4"}).scaling.num_workers == 4  # text, as Python gives
    for count, sizes in ((0, [1]), (1, [1]), (8, [8])):
        scaling = load_pipeline_config(None, {"scaling.num_workers": count, "batch": 16}).scaling
        assert not scaling.elastic and list(scaling.world_sizes) == sizes and scaling.num_workers == count


@pytest.mark.parametrize(("value", "message"), [
    ("[4, 2]", "min 4 > max 2"),
    ("[0, 2]", "at least 1 worker"),
    ("[1, 2, 3]", "[min, max]"),
    ("two", "[min, max]"),
    ("true", "[min, max]"),
    ("[1, 5000]", "at most 4096"),
    ("5000", "0 <= num_workers <= 4096"),
])
def test_bad_worker_counts_and_ranges_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(None, [f"scaling.num_workers={value}"])
    assert message in str(error.value) and "scaling: num_workers=" in str(error.value)
    assert "\n" not in str(error.value)


def test_the_global_batch_must_split_over_every_size_of_an_elastic_range() -> None:
    assert load_pipeline_config(None, ["scaling.num_workers=[2,4]", "batch=24"]).train.data.batch == 24
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(None, ["scaling.num_workers=[2,5]", "batch=16"])
    message = str(error.value)
    assert "train.batch=16" in message and "scaling.num_workers=[2, 5]" in message
    assert "3, 5 do not divide it" in message and "batch=60" in message and "\n" not in message


def test_a_wide_elastic_range_names_its_first_uneven_sizes_only() -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(None, ["scaling.num_workers=[16,32]", "batch=256"])
    message = str(error.value)
    assert "17, 18, 19, 20, 21, 22, ... (15 sizes) do not divide it" in message
    assert "narrower range" in message and "batch=" not in message.split("divide it")[1]


def test_process_group_timeout_and_worker_environment() -> None:
    config = load_pipeline_config(None, {"scaling.timeout_s": 600, "scaling.env": {
        "NCCL_SOCKET_IFNAME": "eth0", "NCCL_IB_DISABLE": 1, "FI_PROVIDER": "efa", "TORCH_NCCL_BLOCKING_WAIT": "0",
        "GLOO_SOCKET_IFNAME": "eth0"}})
    assert config.scaling.timeout_s == 600
    assert config.scaling.env == {"NCCL_SOCKET_IFNAME": "eth0", "NCCL_IB_DISABLE": "1", "FI_PROVIDER": "efa",
                                  "TORCH_NCCL_BLOCKING_WAIT": "0", "GLOO_SOCKET_IFNAME": "eth0"}
    assert load_pipeline_config(None, ["scaling.env={NCCL_DEBUG: INFO}"]).scaling.env == {"NCCL_DEBUG": "INFO"}
    assert load_pipeline_config(None).scaling.timeout_s == 1800  # Ray's own default


@pytest.mark.parametrize(("env", "message"), [
    ({"PATH": "/tmp"}, "scaling.env key 'PATH' is not a process-group variable"),
    ({"nccl_debug": "INFO"}, "'nccl_debug'"),
    ({"NCCL_IB_DISABLE": True}, "NCCL_IB_DISABLE=True: write 1 or 0"),
    ({"NCCL_DEBUG": ["INFO"]}, "NCCL_DEBUG=['INFO']: use a string or a number"),
    ("NCCL_DEBUG", "a mapping"),
])
def test_worker_environment_keys_are_process_group_variables(env, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(None, {"scaling.env": env})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_process_group_timeout_bounds() -> None:
    with pytest.raises(ConfigError, match="timeout_s=0 is out of range"):
        load_pipeline_config(None, {"scaling.timeout_s": 0})
