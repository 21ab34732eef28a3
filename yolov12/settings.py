"""User settings: where named datasets live, where runs go, which MLflow store the pipelines track to.

Three layers, highest first:

1. environment variables (:data:`ENVIRONMENT`): ``YOLOV12_DATASETS``, ``YOLOV12_RUNS_DIR``, ``MLFLOW_TRACKING_URI``;
2. the settings file ``$YOLOV12_CONFIG_DIR/settings.yaml`` (default ``$XDG_CONFIG_HOME/yolov12-platform`` or
   ``~/.config/yolov12-platform``), written by ``yolov12 settings key=value``;
3. the defaults of :class:`Settings`.

Nothing is read at import: :func:`load_settings` reads the file and the environment each time it is called (a few
hundred bytes), so a changed variable or file applies at once. Writes are atomic (a temporary file renamed into
place), and only the file's own values are written, never values that came from the environment.

Example:
    >>> settings = load_settings()  # doctest: +SKIP
    >>> settings.datasets_dir  # doctest: +SKIP
    PosixPath('/home/me/.cache/yolov12-platform/datasets')
    >>> save_settings({"datasets_dir": "/data"})  # doctest: +SKIP
    PosixPath('/home/me/.config/yolov12-platform/settings.yaml')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from yolov12.config.base import ConfigError, Section
from yolov12.utils.atomic import atomic_write

__all__ = [
    "ENVIRONMENT", "Settings", "SettingsError", "SettingValue", "default_project", "describe_settings",
    "load_settings", "reset_settings", "save_settings", "settings_path",
]

SETTINGS_FILE = "settings.yaml"
ENVIRONMENT: dict[str, str] = {
    "datasets_dir": "YOLOV12_DATASETS",
    "runs_dir": "YOLOV12_RUNS_DIR",
    "mlflow_uri": "MLFLOW_TRACKING_URI",
}
"""Setting -> the environment variable that overrides it (the names the project has always read)."""

Origin = Literal["env", "file", "default"]


class SettingsError(ConfigError):
    """The settings file cannot be read or a setting is unknown or invalid; the message says how to fix it."""


def default_datasets_dir() -> Path:
    """``~/.cache/yolov12-platform/datasets`` (where the built-in and named datasets live unless set otherwise)."""
    return Path.home() / ".cache" / "yolov12-platform" / "datasets"


class Settings(Section):
    """The user's settings, validated.

    Attributes:
        datasets_dir: root of the built-in datasets (``sample``, ...) and of named ones (``coco``, ``imagenet``, ...).
        runs_dir: parent folder of the run folders (``runs/train``, ``runs/val``, ``runs/predict``); relative
            paths are relative to the working folder.
        mlflow_uri: MLflow tracking URI of the pipelines; None: their own default (an sqlite store under the
            working folder).
    """

    datasets_dir: Path = Field(default_factory=default_datasets_dir)
    runs_dir: Path = Path("runs")
    mlflow_uri: str | None = None

    @field_validator("datasets_dir", "runs_dir", mode="before")
    @classmethod
    def _expand_user(cls, value: Any) -> Any:
        if value is None or str(value).strip() == "":
            raise ValueError("must be a folder path")
        return Path(str(value)).expanduser()

    @field_validator("mlflow_uri", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value is None or str(value).strip() == "" else str(value)


@dataclass(frozen=True)
class SettingValue:
    """One setting as resolved: its value and where it came from (``env`` names the variable in ``detail``)."""

    name: str
    value: Any
    origin: Origin
    detail: str


def settings_path() -> Path:
    """The settings file: ``$YOLOV12_CONFIG_DIR/settings.yaml``, else under ``$XDG_CONFIG_HOME`` or ``~/.config``."""
    folder = os.environ.get("YOLOV12_CONFIG_DIR")
    if folder:
        return Path(folder).expanduser() / SETTINGS_FILE
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "yolov12-platform" / SETTINGS_FILE


def read_settings_file(path: Path | None = None) -> dict[str, Any]:
    """The values stored in the settings file (``{}`` when there is none), keys checked against :class:`Settings`."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}; fix its permissions") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SettingsError(f"settings file {path} is not valid YAML; fix it or run 'yolov12 settings reset'") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of settings; fix it or run "
                            "'yolov12 settings reset'")
    _validate(raw, f"settings file {path}: ")
    return raw


def _environment() -> dict[str, str]:
    return {name: os.environ[variable] for name, variable in ENVIRONMENT.items() if os.environ.get(variable)}


def _validate(values: Mapping[str, Any], prefix: str = "") -> Settings:
    try:
        return Settings.from_overrides(dict(values))
    except ConfigError as exc:
        raise SettingsError(f"{prefix}{exc}") from None


def load_settings() -> Settings:
    """The settings now: environment over file over defaults (read on every call, never cached)."""
    return _validate({**read_settings_file(), **_environment()}, "settings: ")


def describe_settings() -> list[SettingValue]:
    """Every setting with its value and origin, in field order (what ``yolov12 settings`` prints)."""
    path = settings_path()
    stored, environment = read_settings_file(path), _environment()
    settings = _validate({**stored, **environment}, "settings: ")
    described = []
    for name in Settings.model_fields:
        if name in environment:
            origin, detail = "env", f"${ENVIRONMENT[name]}"
        elif name in stored:
            origin, detail = "file", str(path)
        else:
            origin, detail = "default", "default"
        described.append(SettingValue(name, getattr(settings, name), origin, detail))
    return described


def save_settings(updates: Mapping[str, Any]) -> Path:
    """Merge ``updates`` into the settings file (validated first) and write it atomically; returns its path.

    A relative ``datasets_dir`` is stored as an absolute path (the file applies in every working folder); a
    ``None`` value removes the key, so that its default applies again.

    Raises:
        SettingsError: an unknown setting or an invalid value (nothing is written).
    """
    path = settings_path()
    stored = read_settings_file(path)
    for name, value in updates.items():
        if value is None:
            stored.pop(name, None)
        elif name == "datasets_dir" and str(value).strip():
            stored[name] = str(Path(str(value)).expanduser().absolute())
        else:
            stored[name] = str(value)
    _validate(stored, "")
    _write_atomically(path, yaml.safe_dump(stored, sort_keys=False) if stored else "")
    return path


def default_project(kind: Literal["train", "val", "predict"]) -> str:
    """``<runs_dir>/<kind>``, the default ``project`` folder of training, validation or prediction runs.

    Example:
        >>> default_project("train")  # doctest: +SKIP
        'runs/train'
    """
    return str(load_settings().runs_dir / kind)


def reset_settings() -> Path:
    """Remove the settings file, so that every setting is its default again (environment variables still apply)."""
    path = settings_path()
    path.unlink(missing_ok=True)
    return path


def _write_atomically(path: Path, text: str) -> None:
    with atomic_write(path, "w") as stream:
        stream.write(text)
