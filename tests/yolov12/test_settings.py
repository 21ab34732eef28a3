"""User settings: environment over file over defaults, atomic writes, nothing read at import, ``yolov12 settings``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from yolov12.cli.main import main
from yolov12.data.sample_dataset import datasets_root
from yolov12.settings import (
    Settings,
    SettingsError,
    default_project,
    describe_settings,
    load_settings,
    reset_settings,
    save_settings,
    settings_path,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home and config folder; none of the overriding variables set."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("YOLOV12_CONFIG_DIR", str(tmp_path / "config"))
    for variable in ("YOLOV12_DATASETS", "YOLOV12_RUNS_DIR", "MLFLOW_TRACKING_URI", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def origins() -> dict[str, str]:
    return {row.name: row.origin for row in describe_settings()}


def test_defaults_without_a_file(isolated: Path) -> None:
    assert load_settings() == Settings(datasets_dir=isolated / "home" / ".cache" / "yolov12-platform" / "datasets",
                                       runs_dir=Path("runs"), mlflow_uri=None)
    assert origins() == {"datasets_dir": "default", "runs_dir": "default", "mlflow_uri": "default"}
    assert not settings_path().exists()  # reading never writes


def test_file_location_follows_the_config_variables(isolated: Path, monkeypatch) -> None:
    assert settings_path() == isolated / "config" / "settings.yaml"
    monkeypatch.delenv("YOLOV12_CONFIG_DIR")
    assert settings_path() == isolated / "home" / ".config" / "yolov12-platform" / "settings.yaml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated / "xdg"))
    assert settings_path() == isolated / "xdg" / "yolov12-platform" / "settings.yaml"


def test_saved_values_are_read_back_and_relative_datasets_dir_becomes_absolute(isolated: Path) -> None:
    path = save_settings({"datasets_dir": "data", "runs_dir": "experiments", "mlflow_uri": "http://127.0.0.1:5000"})
    assert yaml.safe_load(path.read_text()) == {"datasets_dir": str(isolated / "data"), "runs_dir": "experiments",
                                                "mlflow_uri": "http://127.0.0.1:5000"}
    assert load_settings() == Settings(datasets_dir=isolated / "data", runs_dir=Path("experiments"),
                                       mlflow_uri="http://127.0.0.1:5000")
    assert set(origins().values()) == {"file"}
    assert [p.name for p in path.parent.iterdir()] == ["settings.yaml"]  # the temporary file was renamed away
    save_settings({"mlflow_uri": None})  # None removes the key: the default applies again
    assert load_settings().mlflow_uri is None and origins()["mlflow_uri"] == "default"


def test_environment_wins_over_the_file(isolated: Path, monkeypatch) -> None:
    save_settings({"datasets_dir": str(isolated / "from-file"), "runs_dir": "file-runs"})
    monkeypatch.setenv("YOLOV12_DATASETS", str(isolated / "from-env"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    settings = load_settings()
    assert settings.datasets_dir == isolated / "from-env" and settings.mlflow_uri == "sqlite:///env.db"
    assert settings.runs_dir == Path("file-runs")
    assert origins() == {"datasets_dir": "env", "runs_dir": "file", "mlflow_uri": "env"}
    assert datasets_root() == isolated / "from-env"
    monkeypatch.setenv("YOLOV12_DATASETS", "")  # an empty variable counts as unset, as before
    assert datasets_root() == isolated / "from-file"
    save_settings({"runs_dir": "other"})  # saving never copies environment values into the file
    assert "from-env" not in settings_path().read_text() and "env.db" not in settings_path().read_text()


def test_runs_dir_gives_the_default_project_folders(monkeypatch) -> None:
    assert [default_project(kind) for kind in ("train", "val", "predict")] == ["runs/train", "runs/val", "runs/predict"]
    monkeypatch.setenv("YOLOV12_RUNS_DIR", "~/experiments")
    assert load_settings().runs_dir == Path.home() / "experiments"
    assert default_project("train") == str(Path.home() / "experiments" / "train")


def test_unknown_keys_and_bad_values_are_refused_and_nothing_is_written() -> None:
    with pytest.raises(SettingsError, match="unknown key 'dataset_dir'; did you mean 'datasets_dir'"):
        save_settings({"dataset_dir": "/data"})
    with pytest.raises(SettingsError, match="datasets_dir=''"):
        save_settings({"datasets_dir": ""})
    assert not settings_path().exists()


def test_a_broken_file_is_one_line_naming_the_fix_and_is_not_read_at_import() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("datasets_dir: [unclosed\n")
    imports = "import yolov12.settings"
    subprocess.run([sys.executable, "-c", imports], check=True, timeout=120)  # importing reads nothing
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"settings file {path} is not valid YAML; fix it or run 'yolov12 settings reset'"
    path.write_text("datasets_dirs: /data\n")
    with pytest.raises(SettingsError, match=f"settings file {path}: unknown key 'datasets_dirs'"):
        datasets_root()
    reset_settings()
    assert not path.exists() and load_settings() == Settings()
    reset_settings()  # nothing to remove: fine


def test_cli_shows_sets_and_resets(isolated: Path, capsys, monkeypatch) -> None:
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert f"settings file: {settings_path()} (not written yet)" in out
    assert "runs_dir" in out and "(default)" in out

    assert main(["settings", f"datasets_dir={isolated / 'data'}", "mlflow_uri=http://127.0.0.1:5000"]) == 0
    out = capsys.readouterr().out
    assert f"saved datasets_dir, mlflow_uri to {settings_path()}" in out
    assert load_settings().datasets_dir == isolated / "data"
    row = next(line for line in out.splitlines() if line.strip().startswith("datasets_dir"))
    assert str(isolated / "data") in row and row.endswith("(file)")

    monkeypatch.setenv("YOLOV12_DATASETS", "/mnt/datasets")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "(env $YOLOV12_DATASETS)" in out and "unset $YOLOV12_DATASETS to use the file's values" in out

    assert main(["settings", "reset"]) == 0
    assert "settings reset to their defaults" in capsys.readouterr().out
    assert not settings_path().exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [(["settings", "dataset_dir=/data"], "did you mean 'datasets_dir'"),
     (["settings", "datasets_dir=/data", "resett"], "unexpected argument 'resett'")],
)
def test_cli_errors_are_one_line(capsys, argv: list[str], fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not settings_path().exists()
