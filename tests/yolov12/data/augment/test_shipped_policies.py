"""Named policies shipped in the package: ``augment_policy=<name>`` loads ``yolov12/assets/policies/<name>.yaml``."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
import tomllib

import yolov12
from yolov12.data.augment import PolicyTransform, build_classification_transforms, build_detection_transforms
from yolov12.data.augment.policy import AugmentPolicy, PolicyError, load_policy, shipped_policies

ROOT = Path(__file__).resolve().parents[4]
PACKAGE = Path(yolov12.__file__).parent
NAME = "sample-photo-best"


def test_the_searched_policy_is_shipped_and_loads_by_name():
    assert NAME in shipped_policies()
    policy = load_policy(NAME)
    assert policy.ops and policy == AugmentPolicy.load(PACKAGE / "assets" / "policies" / f"{NAME}.yaml")
    assert PolicyTransform(NAME).policy == policy
    assert build_classification_transforms(32, True, policy=NAME).policy == policy


def test_detection_config_resolves_the_name():
    pipeline = build_detection_transforms({"mosaic": 0.0, "augment_policy": NAME}, 64)
    assert pipeline.find(PolicyTransform)[0].policy == load_policy(NAME)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(PolicyError) as info:
        load_policy("sample-photo-bets")
    message = str(info.value)
    assert "'sample-photo-bets' is neither a policy file nor a shipped policy" in message
    assert f"did you mean '{NAME}'" in message and message.rstrip().endswith(", ".join(shipped_policies()))
    assert "\n" not in message


def test_an_existing_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    AugmentPolicy.from_dict({"ops": [{"name": "ToGray", "p": 0.1}]}).save(tmp_path / NAME)
    assert [op.name for op in load_policy(NAME).ops] == ["ToGray"]


def test_package_data_ships_every_policy_file():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["yolov12"]
    shipped = {Path(p) for pattern in patterns for p in glob.glob(pattern, root_dir=PACKAGE)
               if (PACKAGE / p).is_file()}
    policies = {p.relative_to(PACKAGE) for p in (PACKAGE / "assets" / "policies").glob("*.yaml")}
    assert policies and policies <= shipped, f"not in the wheel: {sorted(map(str, policies - shipped))}"


def test_shipped_policies_run_on_an_image():
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name in shipped_policies():
        assert build_classification_transforms(32, True, policy=name)(image).shape == (32, 32, 3)
