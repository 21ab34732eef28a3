"""Searching which ops a policy holds: ``policy.ops: {choose: k, from: [...]}`` and ``policy.<Op>.enabled``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray.tune.search.sample import Categorical

from tune.space import SearchSpace, SearchSpaceError, apply_policy_values, trial_train_config
from yolov12.config.train import TrainConfig
from yolov12.data.augment.policy import AugmentPolicy

POOL = ["Blur", "CLAHE", "ToGray", "GaussNoise", "Sharpen"]


def test_choose_is_one_categorical_over_every_subset():
    space = SearchSpace.from_dict({"policy.ops": {"choose": 3, "from": POOL}})
    domain = space.to_tune()["policy.ops"]
    assert isinstance(domain, Categorical) and len(domain.categories) == math.comb(5, 3)
    assert "Blur+CLAHE+ToGray" in domain.categories and "CLAHE+Blur+ToGray" not in domain.categories
    assert all(len(sample.split("+")) == 3 for sample in domain.categories)


@pytest.mark.parametrize(("spec", "words"), [
    ({"choose": 6, "from": POOL}, "choose=6 must be an integer from 1 to the 5 ops"),
    ({"choose": 0, "from": POOL}, "choose=0"),
    ({"choose": 2, "from": ["Blur", "Blurr"]}, "unknown policy op 'Blurr'; did you mean 'Blur'"),
    ({"choose": 2, "from": ["Blur", "Blur", "CLAHE"]}, "lists Blur more than once"),
    ({"choose": 2, "from": []}, "non-empty list of op names"),
    ({"choose": 2}, "give {choose: 2, from:"),
    ({"pick": 2, "from": POOL}, "give {choose: 2, from:"),
])
def test_bad_choose_names_the_key(spec, words):
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.from_dict({"policy.ops": spec})
    assert "'policy.ops'" in str(info.value) and words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("space", "words"), [
    ({"policy.Blur.enabled": {"uniform": [0, 1]}}, "choice of booleans"),
    ({"policy.Blur.enabled": {"choice": ["yes", "no"]}}, "choice of booleans"),
    ({"policy.Blurr.enabled": {"choice": [True, False]}}, "did you mean 'Blur'"),
    ({"policy.ops": {"choose": 1, "from": ["Blur"]}, "policy.CLAHE.p": {"uniform": [0, 1]}},
     "op 'CLAHE' is not in policy.ops' 'from' list"),
])
def test_bad_selection_keys_name_the_key(space, words):
    key = next(k for k in space if k != "policy.ops" or len(space) == 1)
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.from_dict(space)
    assert f"'{key}'" in str(info.value) and words in str(info.value)


def test_trial_policy_holds_exactly_the_chosen_ops_with_their_searched_values():
    base = AugmentPolicy.from_dict({"ops": [{"name": "Blur", "p": 0.25, "magnitude": 0.4},
                                            {"name": "MedianBlur", "p": 0.1}]})
    values = {"policy.ops": np.str_("CLAHE+ToGray+Sharpen"), "policy.CLAHE.magnitude": np.float64(0.8),
              "policy.Blur.p": 0.9, "policy.schedule.end": 0.7}
    tuned = apply_policy_values(base, values)
    assert [op.name for op in tuned.ops] == ["CLAHE", "ToGray", "Sharpen"]
    ops = {op.name: op for op in tuned.ops}
    assert (ops["CLAHE"].p, ops["CLAHE"].magnitude) == (0.5, 0.8)
    assert (ops["ToGray"].p, ops["ToGray"].magnitude) == (0.5, 0.5)
    assert tuned.schedule.end == 0.7


def test_a_chosen_op_keeps_its_base_policy_settings():
    base = AugmentPolicy.from_dict({"ops": [{"name": "Blur", "p": 0.25, "magnitude": 0.4}]})
    tuned = apply_policy_values(base, {"policy.ops": "Blur+CLAHE"})
    assert [(op.name, op.p, op.magnitude) for op in tuned.ops] == [("Blur", 0.25, 0.4), ("CLAHE", 0.5, 0.5)]


def test_enabled_switches_single_ops_in_and_out():
    base = AugmentPolicy.from_dict({"ops": [{"name": "Blur", "p": 0.25}, {"name": "CLAHE", "p": 0.3}]})
    tuned = apply_policy_values(base, {"policy.Blur.enabled": False, "policy.ToGray.enabled": np.bool_(True),
                                       "policy.ToGray.p": 0.2, "policy.Blur.p": 0.9})
    assert [(op.name, op.p) for op in tuned.ops] == [("CLAHE", 0.3), ("ToGray", 0.2)]
    with_set = apply_policy_values(base, {"policy.ops": "CLAHE", "policy.Sharpen.enabled": True})
    assert [op.name for op in with_set.ops] == ["CLAHE", "Sharpen"]


def test_ops_without_a_selection_key_keep_their_values_beside_enabled_ones():
    tuned = apply_policy_values(None, {"policy.CLAHE.enabled": True, "policy.Blur.p": 0.3})
    assert [(op.name, op.p) for op in tuned.ops] == [("CLAHE", 0.5), ("Blur", 0.3)]


def test_base_values_of_selection_keys_come_from_the_base_policy():
    base_config = TrainConfig.from_overrides(epochs=1)
    policy = AugmentPolicy.from_dict({"ops": [{"name": "CLAHE"}, {"name": "Blur"}]})
    space = SearchSpace.from_dict({"policy.ops": {"choose": 2, "from": POOL},
                                   "policy.Blur.enabled": {"choice": [True, False]},
                                   "policy.Sharpen.enabled": {"choice": [True, False]}})
    assert space.check_defaults(base_config, policy) == {"policy.ops": "Blur+CLAHE", "policy.Blur.enabled": True,
                                                         "policy.Sharpen.enabled": False}
    with pytest.raises(SearchSpaceError, match="'policy.ops': the base value 'Blur'"):
        space.check_defaults(base_config, AugmentPolicy.from_dict({"ops": [{"name": "Blur"}]}))


def test_trial_config_writes_the_selected_policy(tmp_path):
    base = TrainConfig.from_overrides(epochs=1)
    config = trial_train_config(base, None, {"policy.ops": "GaussNoise+Sharpen", "lr0": 0.002},
                                tmp_path / "policy.yaml")
    written = AugmentPolicy.load(config.augment.augment_policy)
    assert [op.name for op in written.ops] == ["GaussNoise", "Sharpen"] and config.optim.lr0 == 0.002


def test_pbt_keeps_an_op_set_a_valid_choice():
    from ray.tune.schedulers.pbt import _explore

    space = SearchSpace.from_dict({"policy.ops": {"choose": 2, "from": POOL[:3]}})
    explored, _ = _explore({"policy.ops": "Blur+CLAHE"}, space.to_pbt_mutations(), 0.0, (1.2,), space.clip)
    assert explored["policy.ops"] in ("Blur+CLAHE", "Blur+ToGray", "CLAHE+ToGray")
