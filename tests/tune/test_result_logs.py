"""The sweep's result loggers keep the rows a restarted trial wrote in this driver session (Ray's copy them over)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from tune.result_logs import ProgressCsvLogger, ResultJsonLogger, result_loggers


def _trial(tmp_path, stored_rows: str):
    stored, local = tmp_path / "storage", tmp_path / "staging"
    stored.mkdir()
    local.mkdir()
    (stored / "result.json").write_text(stored_rows)
    storage = SimpleNamespace(trial_fs_path=str(stored), storage_filesystem=pyarrow.fs.LocalFileSystem())
    return SimpleNamespace(local_path=str(local), checkpoint=object(), storage=storage), local / "result.json"


def test_rays_logger_replaces_newer_local_rows_with_the_stored_copy(tmp_path):
    """Why the sweep has its own loggers; when this fails, Ray keeps local rows itself and they can go."""
    trial, local = _trial(tmp_path, '{"epoch": 1}\n')
    local.write_text('{"epoch": 1}\n{"epoch": 2}\n')
    JsonLoggerCallback()._restore_from_remote("result.json", trial)
    assert local.read_text() == '{"epoch": 1}\n'


@pytest.mark.parametrize("logger", [ResultJsonLogger, ProgressCsvLogger])
def test_local_rows_are_kept_and_a_missing_file_comes_from_storage(tmp_path, logger):
    trial, local = _trial(tmp_path, '{"epoch": 1}\n')
    logger()._restore_from_remote("result.json", trial)  # a restored driver: no local copy yet
    assert local.read_text() == '{"epoch": 1}\n'
    local.write_text('{"epoch": 1}\n{"epoch": 2}\n')  # this session reported epoch 2, storage is behind
    logger()._restore_from_remote("result.json", trial)
    assert local.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_they_replace_rays_default_loggers():
    loggers = result_loggers()
    assert any(isinstance(c, JsonLoggerCallback) for c in loggers)  # so Tune adds no default JSON/CSV logger
    assert any(isinstance(c, CSVLoggerCallback) for c in loggers)
