"""``yolov12 tune``: key=value arguments, and a bad model, data or key fails in one line before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.ray_guard import forbid_ray_start

from tune.cli import split_arguments
from yolov12.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SWEEP = str(REPO / "configs/sweeps/sample-asha.yaml")


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [("model=missing.safetensors", "weights file 'missing.safetensors' does not exist"),
     ("model=models:/det@champion", "is a registry URI"),
     ("data=samplee", "data: "),
     ("search.num_sample=4", "unknown key 'search.num_sample'; did you mean 'search.num_samples'?"),
     ("lr=0.1", "did you mean 'lr0'?"),
     ("space.lr=\"{uniform: [0.1, 0.2]}\"", "unknown space key 'lr'")],
)
def test_bad_model_data_or_key_exits_2_in_one_line_without_ray(capsys, monkeypatch, argument: str,
                                                               fragment: str) -> None:
    attempts = forbid_ray_start(monkeypatch)
    assert main(["tune", f"config={SWEEP}", argument]) == 2
    assert attempts == []  # refused by the checks, before Ray
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolov12 tune: error: ") and "\n" not in err
    assert fragment in err


def test_space_values_pass_through_as_yaml_text_and_options_are_typed() -> None:
    options, overrides = split_arguments([SWEEP, "--num-cpus", "2", "space.lr0={loguniform: [0.001, 0.1]}",
                                          "epochs=2", "name=s1"])
    assert options == {"config": SWEEP, "num_cpus": 2}
    assert overrides == {"epochs": 2, "name": "s1", "space.lr0": "{loguniform: [0.001, 0.1]}"}


def test_python_module_entry_takes_the_same_arguments(tmp_path: Path, capsys, monkeypatch) -> None:
    from tune.sweep import main as sweep_main

    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "x", "model": "nothere.safetensors",
                                                     "space": {"lr0": {"uniform": [0.001, 0.01]}}}))
    monkeypatch.chdir(tmp_path)
    attempts = forbid_ray_start(monkeypatch)
    assert sweep_main(["--config", "s.yaml"]) == 2
    assert "nothere.safetensors" in capsys.readouterr().err and attempts == []
