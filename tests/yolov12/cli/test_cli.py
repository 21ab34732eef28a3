"""The key=value CLI: typed values, one-line errors for unknown keys and bad values, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolov12.cli.arguments import CommandLineError, parse_key_values, parse_value
from yolov12.cli.main import main


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.3", 0.3), ("640", 640), ("true", True), ("False", False), ("[0, 2]", [0, 2]), ("img.jpg", "img.jpg"),
     ("cuda:0", "cuda:0"), ("a:b", "a:b"), ("a: b", "a: b"), ("{decode: 1}", {"decode": 1}), ("", "")],
)
def test_values_are_typed_like_yaml(text: str, value) -> None:
    assert parse_value(text) == value


def test_unknown_key_names_the_closest_valid_one() -> None:
    with pytest.raises(CommandLineError, match="did you mean 'conf'"):
        parse_key_values(["cnf=0.3"], ["conf", "iou"])


def test_positional_words_fill_declared_slots() -> None:
    assert parse_key_values(["a.pt", "b.safetensors", "overwrite=true"], ["model", "output", "overwrite"],
                            positional=("model", "output")) == {"model": "a.pt", "output": "b.safetensors",
                                                               "overwrite": True}


def test_info_json(capsys) -> None:
    assert main(["info", "model=yolov12n.yaml", "json=true"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["parameters"] == 2_553_904


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["info", "model=yolov12n.yaml", "imgz=3"], "did you mean 'imgsz'"),
        (["predict", "model=yolov12n.yaml", "conf=3"], "conf=3"),
        (["predict", "model=yolov12n.yaml", "device=tpu"], "device"),
        (["info", "model=yolov12q.yaml"], "Did you mean yolov12"),
        (["info", "model=missing.pt"], "never downloads weights"),
        (["predit"], "did you mean 'predict'"),
        (["val", "data=sample", "cnf=0.1"], "did you mean 'conf'"),
        (["val", "data=sample", "max_det=0"], "max_det=0 is out of range: use 1 <= max_det <= 30000"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(capsys, argv: list[str], fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fragment in err


def test_help_lists_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("predict", "info", "convert", "zoo"):
        assert command in out


def test_val_takes_the_validation_settings(capsys, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            cv2.imwrite(str(tmp_path / "data" / split / name / "0.png"), rng.integers(0, 255, (40, 40, 3), np.uint8))
    argv = ["val", "model=yolov12n-cls.yaml", f"data={tmp_path / 'data'}", "conf=0.1", "iou=0.6", "max_det=100",
            "imgsz=32", "batch=2", "half=false", "device=cpu", "save_json=true", f"project={tmp_path / 'runs'}"]
    assert main(argv) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics) == {"metrics/accuracy_top1", "metrics/accuracy_top5"}
    assert len(json.loads((tmp_path / "runs" / "exp" / "predictions.json").read_text())) == 2
