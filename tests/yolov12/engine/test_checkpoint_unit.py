"""Run checkpoints as one unit: the manifest written last, crashes between the writes, broken resume files."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

from yolov12.config.train import TrainConfig
from yolov12.engine import checkpoint
from yolov12.engine.checkpoint import ResumeError, load_resume_state, save_run_checkpoint
from yolov12.engine.ema import ModelEMA
from yolov12.engine.precision import MixedPrecision
from yolov12.engine.state import TrainState
from yolov12.models import build_model, load_architecture

WHAT_TO_DO = "point resume at an earlier copy of the run folder"


@pytest.fixture
def state(tmp_path: Path) -> TrainState:
    """The state of a small classifier run, ready to be checkpointed (nothing trains)."""
    torch.manual_seed(0)
    model = build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=3))
    config = TrainConfig.from_overrides({"optimizer": "SGD", "epochs": 3})
    cpu = torch.device("cpu")
    return TrainState(config=config, model=model, ema=ModelEMA(model), optimiser=torch.optim.SGD(model.parameters()),
                      precision=MixedPrecision(cpu, enabled=False), loss_fn=None, device=cpu,
                      run_dir=tmp_path / "run", accumulate=1, batches_per_epoch=1, warmup_steps=0, epochs=3)


def _save_epoch(state: TrainState) -> dict[str, Path]:
    """Checkpoint the end of ``state.epoch`` with weights that differ from every other epoch's, then move on."""
    with torch.no_grad():
        next(state.ema.ema.parameters()).add_(1.0)
    paths = save_run_checkpoint(state, {"metrics/accuracy_top1": 0.5}, is_best=True)
    state.epoch += 1
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_manifest_is_written_last_and_names_both_files(state) -> None:
    paths = _save_epoch(state)
    weights = state.run_dir / "weights"
    assert paths["manifest"] == weights / "last.json"
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["epoch"] == 1
    for name in ("last.safetensors", "last.state.pt"):
        assert manifest["files"][name] == {"sha256": _sha256(weights / name), "bytes": (weights / name).stat().st_size}
    assert paths["manifest"].stat().st_mtime_ns >= paths["state"].stat().st_mtime_ns >= paths["last"].stat().st_mtime_ns
    assert load_resume_state(state.run_dir)["epoch"] == 1


def test_a_crash_between_the_weights_and_the_state_resumes_the_listed_epoch_and_says_so(state, monkeypatch,
                                                                                         caplog) -> None:
    _save_epoch(state)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash after last.safetensors was written")

    monkeypatch.setattr(checkpoint, "_atomic_torch_save", crash)  # the second write of the pair
    with pytest.raises(KeyboardInterrupt):
        _save_epoch(state)  # epoch 2: new weights on disk, the state still the one of epoch 1
    with caplog.at_level(logging.WARNING, logger="yolov12.engine.checkpoint"):
        saved = load_resume_state(state.run_dir)
    assert saved["epoch"] == 1
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert "last.safetensors" in message and "last.json" in message and "epoch 1" in message


def test_a_crash_between_the_state_and_the_manifest_is_refused(state, monkeypatch) -> None:
    _save_epoch(state)
    monkeypatch.setattr(checkpoint, "write_manifest", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _save_epoch(state)  # epoch 2: weights and state written, the manifest still lists epoch 1
    with pytest.raises(ResumeError) as info:
        load_resume_state(state.run_dir)
    message = str(info.value)
    assert "last.state.pt" in message and "last.json" in message and "epoch 1" in message and "\n" not in message


@pytest.mark.parametrize("manifest", [True, False])
def test_a_truncated_state_file_is_named_with_what_to_do(state, manifest: bool) -> None:
    paths = _save_epoch(state)
    if not manifest:
        paths["manifest"].unlink()  # a run written before manifests: the file itself is read
    data = paths["state"].read_bytes()
    paths["state"].write_bytes(data[: len(data) // 2])
    with pytest.raises(ResumeError) as info:
        load_resume_state(state.run_dir)
    assert str(paths["state"]) in str(info.value) and WHAT_TO_DO in str(info.value)


def test_a_state_file_without_the_resume_fields_is_refused(state) -> None:
    weights = state.run_dir / "weights"
    weights.mkdir(parents=True)
    torch.save({"format_version": 1, "epoch": 2}, weights / "last.state.pt")
    with pytest.raises(ResumeError, match=r"last\.state\.pt.*lacks .*'model'"):
        load_resume_state(state.run_dir)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"format_version": 1, "epoch": 1, "files": []}'])
def test_a_malformed_manifest_is_refused_by_name(state, text: str) -> None:
    paths = _save_epoch(state)
    paths["manifest"].write_text(text)
    with pytest.raises(ResumeError, match=r"last\.json is not a valid checkpoint manifest"):
        load_resume_state(state.run_dir)


def test_a_run_written_before_manifests_resumes_with_a_warning(state, caplog) -> None:
    paths = _save_epoch(state)
    paths["manifest"].unlink()
    with caplog.at_level(logging.WARNING, logger="yolov12.engine.checkpoint"):
        assert load_resume_state(state.run_dir)["epoch"] == 1
    assert "no last.json" in caplog.text
