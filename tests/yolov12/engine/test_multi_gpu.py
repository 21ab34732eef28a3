"""``device=0,1``: the one-line answers on a machine without those GPUs or without the launcher package."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yolov12 import YOLO
from yolov12.cli.main import main
from yolov12.config.train import TrainConfig
from yolov12.engine import multi_gpu
from yolov12.engine.distributed import per_rank_batch
from yolov12.engine.trainer import fit
from yolov12.models import load_model
from yolov12.utils.device import DeviceError

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answers")


@NO_CUDA
@pytest.mark.parametrize("device", ["0,1", [0, 1], "[0,1]"])
def test_two_gpus_without_cuda_is_one_line_before_anything_is_written(tmp_path: Path, device) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available") as info:
        YOLO("yolov12n.yaml").train(data="sample", device=device, epochs=1, project=str(tmp_path / "runs"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_without_the_launcher_package_the_line_names_the_command(monkeypatch) -> None:
    monkeypatch.setattr(multi_gpu, "find_gpu_launcher", lambda: None)
    with pytest.raises(multi_gpu.LauncherMissingError, match=r"yolov12-platform\[ray\].*yolov12 train-ray "
                                                             r"scaling.num_workers=2 scaling.use_gpu=true"):
        YOLO("yolov12n.yaml").train(data="sample", device="0,1", epochs=1)


def test_the_pipelines_package_registers_the_launcher() -> None:
    pytest.importorskip("ray")
    from pipelines.local_gpus import train_on_local_gpus  # noqa: PLC0415

    assert multi_gpu.find_gpu_launcher() is train_on_local_gpus


@NO_CUDA
def test_cli_answers_in_one_line(capsys) -> None:
    assert main(["train", "model=yolov12n.yaml", "data=sample", "device=0,1", "epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolov12 train: error: device") and "\n" not in err


def test_fit_refuses_a_gpu_list_and_names_the_launchers() -> None:
    model = load_model("yolov12n.yaml")
    with pytest.raises(DeviceError, match="fit\\(\\) runs in one process.*yolov12 train device=0,1"):
        fit(model, TrainConfig.from_overrides(device="0,1", epochs=1))


@pytest.mark.parametrize(("batch", "world", "expected"), [(16, 1, 16), (16, 2, 8), (256, 8, 32)])
def test_batch_is_global(batch: int, world: int, expected: int) -> None:
    assert per_rank_batch(batch, world) == expected


def test_a_batch_that_does_not_split_says_which_would() -> None:
    with pytest.raises(ValueError, match="batch=9 is the global batch.*use batch=8 or batch=10"):
        per_rank_batch(9, 2)
