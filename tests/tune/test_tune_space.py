"""Search spaces: parsing, validation before any trial (messages name the key), Ray domains, trial configs."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.search.sample import Categorical, Float, Integer

from tune.space import SearchSpace, SearchSpaceError, apply_policy_values, trial_train_config
from yolov12.config.train import TrainConfig
from yolov12.data.augment.policy import AugmentPolicy


@pytest.mark.parametrize(("space", "key", "words"), [
    ({"lr": {"uniform": [0.001, 0.01]}}, "'lr'", "did you mean 'lr0'"),
    ({"momentun": {"uniform": [0.8, 0.9]}}, "'momentun'", "did you mean 'momentum'"),
    ({"lr0": {"uniform": [0.1, 0.01]}}, "'lr0'", "low 0.1 > high 0.01"),
    ({"mixup": {"uniform": [-0.2, 0.5]}}, "'mixup'", "negative probability"),
    ({"policy.Blur.p": {"uniform": [-0.1, 0.5]}}, "'policy.Blur.p'", "negative probability"),
    ({"lr0": {"loguniform": [0.0, 0.1]}}, "'lr0'", "loguniform needs low > 0"),
    ({"policy.Blurr.p": {"uniform": [0.0, 0.5]}}, "'policy.Blurr.p'", "did you mean 'Blur'"),
    ({"policy.Blur.strength": {"uniform": [0.0, 0.5]}}, "'policy.Blur.strength'", "tuned by"),
    ({"policy.Blur.magnitude": {"uniform": [0.0, 1.5]}}, "'policy.Blur.magnitude'", "outside [0, 1]"),
    ({"epochs": {"randint": [1, 5]}}, "'epochs'", "not searchable"),
    ({"momentum": {"uniform": [0.5, 1.5]}}, "'momentum'", "not valid for training"),
    ({"optimizer": {"choice": ["SGD", "Lion"]}}, "'optimizer'", "not valid for training"),
    ({"lr0": {"normal": [0.0, 1.0]}}, "'lr0'", "unknown distribution 'normal'"),
    ({"lr0": {"uniform": [0.1]}}, "'lr0'", "needs [low, high]"),
    ({"lr0": 0.01}, "'lr0'", "exactly one distribution"),
])
def test_bad_space_names_the_key(space, key, words):
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.from_dict(space)
    assert key in str(info.value) and words in str(info.value)


def test_empty_space_is_rejected():
    with pytest.raises(SearchSpaceError, match="empty"):
        SearchSpace.from_dict({})


def test_space_to_ray_domains():
    space = SearchSpace.from_dict({
        "lr0": {"loguniform": [1e-4, 1e-1]}, "optimizer": {"choice": ["SGD", "AdamW"]},
        "close_mosaic": {"randint": [0, 3]}, "policy.Blur.p": {"uniform": [0.0, 0.5]},
    })
    domains = space.to_tune()
    assert list(domains) == ["lr0", "optimizer", "close_mosaic", "policy.Blur.p"]
    assert isinstance(domains["lr0"], Float) and domains["lr0"].lower == 1e-4 and domains["lr0"].upper == 1e-1
    assert isinstance(domains["optimizer"], Categorical) and domains["optimizer"].categories == ["SGD", "AdamW"]
    assert isinstance(domains["close_mosaic"], Integer) and domains["close_mosaic"].upper == 4  # 3 is included
    samples = {domains["close_mosaic"].sample() for _ in range(200)}
    assert samples == {0, 1, 2, 3}
    assert isinstance(tune.uniform(0, 1), Float)


def test_defaults_come_from_the_base_config_and_policy():
    base = TrainConfig.from_overrides(lr0=0.004, mosaic=0.7)
    policy = AugmentPolicy.from_dict({"ops": [{"name": "Blur", "p": 0.25, "magnitude": 0.4}]})
    space = SearchSpace.from_dict({"lr0": {"loguniform": [1e-4, 1e-2]}, "mosaic": {"uniform": [0, 1]},
                                   "policy.Blur.p": {"uniform": [0, 0.5]}, "policy.CLAHE.p": {"uniform": [0, 0.5]}})
    assert space.check_defaults(base, policy) == {"lr0": 0.004, "mosaic": 0.7, "policy.Blur.p": 0.25,
                                                  "policy.CLAHE.p": 0.0}
    narrow = SearchSpace.from_dict({"lr0": {"uniform": [0.01, 0.02]}})
    with pytest.raises(SearchSpaceError, match="'lr0': the base value 0.004"):
        narrow.check_defaults(base, policy)


def test_policy_values_update_named_ops_and_append_missing_ones():
    policy = AugmentPolicy.from_dict({"ops": [{"name": "Blur", "p": 0.25, "magnitude": 0.4}]})
    tuned = apply_policy_values(policy, {"policy.Blur.magnitude": 0.9, "policy.CLAHE.p": 0.3,
                                         "policy.schedule.start": 0.2})
    ops = {op.name: op for op in tuned.ops}
    assert (ops["Blur"].p, ops["Blur"].magnitude) == (0.25, 0.9)
    assert (ops["CLAHE"].p, ops["CLAHE"].magnitude) == (0.3, 0.5)
    assert tuned.schedule.kind == "linear" and tuned.schedule.start == 0.2
    assert policy.ops[0].magnitude == 0.4  # the base policy is data: never changed in place


def test_trial_config_applies_values_and_writes_the_policy_file(tmp_path):
    import numpy as np

    base = TrainConfig.from_overrides(epochs=3, imgsz=64)
    values = {"lr0": np.float64(0.002), "optimizer": "AdamW", "policy.Blur.p": np.float64(0.4)}
    config = trial_train_config(base, None, values, tmp_path / "trial" / "policy.yaml")
    assert config.optim.lr0 == 0.002 and config.optim.optimizer == "AdamW"
    assert config.run.epochs == 3 and config.data.imgsz == 64  # untouched keys stay the base ones
    written = AugmentPolicy.load(config.augment.augment_policy)
    assert [(op.name, op.p) for op in written.ops] == [("Blur", 0.4)]
    without_policy = trial_train_config(base, None, {"lr0": 0.003}, tmp_path / "unused.yaml")
    assert without_policy.augment.augment_policy is None and not (tmp_path / "unused.yaml").exists()


def test_pbt_explore_keeps_values_in_their_ranges_and_moves_choices_to_neighbours():
    from ray.tune.schedulers.pbt import _explore  # what PopulationBasedTraining calls on an exploit

    space = SearchSpace.from_dict({"mixup": {"uniform": [0.0, 0.3]}, "policy.Blur.magnitude": {"uniform": [0, 1]},
                                   "close_mosaic": {"randint": [0, 3]}, "optimizer": {"choice": ["SGD", "AdamW"]}})
    config = {"mixup": 0.3, "policy.Blur.magnitude": 0.9, "close_mosaic": 3, "optimizer": "SGD"}
    with pytest.raises(TypeError):  # Ray multiplies a domain's value: a string choice cannot take it
        _explore(config, space.to_tune(), 0.0, (1.2,), None)
    explored, _ = _explore(config, space.to_pbt_mutations(), 0.0, (1.2,), space.clip)  # x1.2 leaves every range
    assert explored["mixup"] == 0.3 and explored["policy.Blur.magnitude"] == 1.0 and explored["close_mosaic"] == 3
    assert explored["optimizer"] in ("SGD", "AdamW")
    assert space.clip({"mixup": -0.1, "lr_not_searched": 5}) == {"mixup": 0.0, "lr_not_searched": 5}
