"""AutoAlbument-Lite: validation, round trips, schedule, compilation, and boxes that follow the pixels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from augment_scenes import assert_boxes_enclose_pixels, draw_scene, scenes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolov12.data.augment import (
    OPS,
    AugmentPolicy,
    MagnitudeSchedule,
    PolicyError,
    PolicyOp,
    PolicyTransform,
    UnknownPolicyOpError,
    compile_policy,
)

REQUIRED_OPS = {
    "HueSaturationValue", "RandomBrightnessContrast", "Blur", "MotionBlur", "GaussNoise", "CLAHE", "ToGray",
    "RandomGamma", "ImageCompression", "Affine", "Perspective", "CoarseDropout",
}  # fmt: skip

op_dicts = st.fixed_dictionaries(
    {
        "name": st.sampled_from(sorted(OPS)),
        "p": st.floats(0, 1),
        "magnitude": st.floats(0, 1),
    }
)
policies = st.builds(
    lambda ops, kind, start, end: AugmentPolicy.from_dict(
        {"ops": ops, "schedule": {"kind": kind, "start": start, "end": end}}
    ),
    st.lists(op_dicts, max_size=6),
    st.sampled_from(["constant", "linear", "cosine"]),
    st.floats(0, 1),
    st.floats(0, 1),
)


def test_table_covers_the_required_ops() -> None:
    assert REQUIRED_OPS <= set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("magnitude", [0.0, 0.5, 1.0])
def test_every_op_compiles_and_runs_at_every_magnitude(name: str, magnitude: float) -> None:
    transform = PolicyTransform({"ops": [{"name": name, "p": 1.0, "magnitude": magnitude}]})
    scene = draw_scene(64, 80, [(0, (8, 8, 40, 40), True), (2, (44, 30, 76, 60), False)])
    out = transform(scene)
    assert out.image.shape == (64, 80, 3) and out.image.dtype == np.uint8
    assert len(out.boxes) == len(out.classes) == len(out.segments)


def test_unknown_op_suggests_close_matches() -> None:
    with pytest.raises(UnknownPolicyOpError, match=r"'Blurr'.*did you mean 'Blur'"):
        PolicyOp("Blurr")
    with pytest.raises(UnknownPolicyOpError, match="GaussNoise"):
        AugmentPolicy.from_dict({"ops": [{"name": "GausNoise"}]})


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"name": "Blur", "p": 1.5}, r"p must be in \[0, 1\]"),
        ({"name": "Blur", "magnitude": -0.1}, r"magnitude must be in \[0, 1\]"),
        ({"name": "Blur", "p": "often"}, "must be a number"),
        ({"name": "Blur", "prob": 0.5}, "unknown key 'prob'"),
        ({"p": 0.5}, "missing 'name'"),
        ({"name": "Blur", "params": {"p": 0.3}}, "not inside params"),
    ],
)
def test_op_validation(op: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        AugmentPolicy.from_dict({"ops": [op]})


def test_policy_level_validation() -> None:
    with pytest.raises(PolicyError, match="did you mean 'ops'"):
        AugmentPolicy.from_dict({"opps": []})
    with pytest.raises(PolicyError, match="did you mean 'linear'"):
        MagnitudeSchedule("liner")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="schedule start"):
        MagnitudeSchedule("linear", start=2.0)
    with pytest.raises(PolicyError, match="rejected"):
        compile_policy(AugmentPolicy((PolicyOp("Blur", params={"blur_limit": (4, 2)}),)))
    with pytest.raises(PolicyError, match="op index"):
        AugmentPolicy.from_flat({"op1.name": "Blur"})
    with pytest.raises(PolicyError, match="not of the form"):
        AugmentPolicy.from_flat({"lr0": 0.1})


@settings(max_examples=60, deadline=None)
@given(policy=policies)
def test_round_trips(policy: AugmentPolicy) -> None:
    assert AugmentPolicy.from_dict(policy.to_dict()) == policy
    assert AugmentPolicy.from_yaml(policy.to_yaml()) == policy
    assert AugmentPolicy.from_json(policy.to_json()) == policy
    assert AugmentPolicy.from_flat(policy.to_flat()) == policy
    assert json.loads(json.dumps(policy.to_flat())) == policy.to_flat()  # flat values are plain data


def test_params_round_trip_and_files(tmp_path) -> None:
    policy = AugmentPolicy(
        (PolicyOp("Affine", 0.3, 0.4, {"scale": (0.9, 1.1)}), PolicyOp("ToGray", 0.1, 0.0)),
        MagnitudeSchedule("cosine", 0.25, 1.0),
    )
    flat = policy.to_flat()
    assert flat["op0.params.scale"] == [0.9, 1.1] and flat["op1.name"] == "ToGray"
    assert flat["schedule.kind"] == "cosine"
    flat["op0.p"] = np.float64(0.7)  # as a Ray Tune sample would arrive
    assert AugmentPolicy.from_flat(flat).ops[0].p == 0.7
    for name in ("policy.yaml", "policy.json"):
        policy.save(tmp_path / name)
        assert AugmentPolicy.load(tmp_path / name) == policy
    assert PolicyTransform(tmp_path / "policy.yaml").policy == policy
    assert AugmentPolicy.from_dict([{"name": "Blur"}]).ops[0].name == "Blur"


def test_schedule_shapes() -> None:
    linear = MagnitudeSchedule("linear", 0.0, 1.0)
    cosine = MagnitudeSchedule("cosine", 0.0, 1.0)
    assert [linear.factor(e, 5) for e in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert cosine.factor(0, 5) == 0.0 and math.isclose(cosine.factor(2, 5), 0.5) and cosine.factor(4, 5) == 1.0
    assert cosine.factor(1, 5) < linear.factor(1, 5)
    assert MagnitudeSchedule().factor(3, 5) == 1.0
    assert linear.factor(99, 5) == 1.0  # past the end: clipped


def test_set_epoch_rescales_magnitudes() -> None:
    transform = PolicyTransform(
        {"ops": [{"name": "Affine", "p": 1.0, "magnitude": 1.0}], "schedule": {"kind": "linear", "start": 0.0}}
    )
    rotate = lambda: transform.compiled.transforms[0].rotate  # noqa: E731
    assert tuple(rotate()) == (0.0, 0.0)
    transform.set_epoch(4, 5)
    assert tuple(rotate()) == (-30.0, 30.0)
    transform.set_epoch(2, 5)
    assert tuple(rotate()) == (-15.0, 15.0)


GEOMETRIC_POLICY = {
    "ops": [
        {"name": "Affine", "p": 0.8, "magnitude": 0.7},
        {"name": "Perspective", "p": 0.5, "magnitude": 0.5},
        {"name": "CoarseDropout", "p": 0.5, "magnitude": 0.5},
        {"name": "Blur", "p": 0.3, "magnitude": 0.3},
    ]
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes(), seed=st.integers(0, 2**31 - 1), use_segments=st.booleans())
def test_compiled_policy_boxes_enclose_pixels(scene, seed, use_segments) -> None:
    if not use_segments:
        scene.segments = None
    np.random.seed(seed)
    transform = PolicyTransform(GEOMETRIC_POLICY)
    transform.compiled.set_random_seed(seed)
    out = transform(scene)
    assert (out.segments is not None) == use_segments
    assert_boxes_enclose_pixels(out, tolerance=2.0)


def test_pixel_only_policy_keeps_boxes_and_polygons() -> None:
    scene = draw_scene(64, 64, [(1, (10, 10, 50, 40), True)])
    out = PolicyTransform({"ops": [{"name": "ToGray", "p": 1.0}, {"name": "GaussNoise", "p": 1.0}]})(scene)
    assert np.array_equal(out.boxes, scene.boxes) and out.segments is scene.segments
    assert not np.array_equal(out.image, scene.image)
    empty = PolicyTransform({"ops": []})
    assert empty(scene) is scene


def test_to_gray_sees_rgb_order() -> None:
    """albumentations weighs channels as RGB; the BGR sample is converted around the call."""
    blue_bgr = np.zeros((8, 8, 3), np.uint8)
    blue_bgr[..., 0] = 255
    scene = draw_scene(8, 8, [])
    scene.image = blue_bgr
    grey = PolicyTransform({"ops": [{"name": "ToGray", "p": 1.0}]})(scene).image
    assert abs(int(grey[0, 0, 0]) - round(0.114 * 255)) <= 2  # blue has the small luma weight
