"""Property tests: after each geometric transform, every kept box still encloses its object's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from augment_scenes import (
    BACKGROUND,
    ListDataset,
    assert_boxes_enclose_pixels,
    assert_boxes_valid,
    colour_mask,
    draw_scene,
    scenes,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from yolov12.data.augment import (
    Letterbox,
    Mosaic,
    RandomAffine,
    RandomFlip,
    build_mosaic,
    copy_paste_flipped,
    flip_sample,
    mixup,
    random_affine_matrix,
    resize_long_side,
    warp_sample,
)
from yolov12.data.augment.compose import replace_sample
from yolov12.data.augment.geometry import (
    apply_homography,
    apply_homography_to_polygons,
    box_ioa,
    clip_polygon,
)
from yolov12.data.types import Sample

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**31 - 1)


def _without_segments(sample):
    sample.segments = None
    return sample


@SETTINGS
@given(scene=scenes(), seed=seeds, degrees=st.floats(0, 45), shear=st.floats(0, 10), use_segments=st.booleans())
def test_affine_boxes_enclose_pixels(scene, seed, degrees, shear, use_segments) -> None:
    np.random.seed(seed)
    if not use_segments:
        scene = _without_segments(scene)
    out = RandomAffine(128, degrees=degrees, translate=0.2, scale=0.5, shear=shear)(scene)
    assert out.image.shape == (128, 128, 3)
    assert_boxes_enclose_pixels(out, tolerance=2.0)


@SETTINGS
@given(scene=scenes(), seed=seeds, perspective=st.floats(0, 0.001), use_segments=st.booleans())
def test_perspective_boxes_enclose_pixels(scene, seed, perspective, use_segments) -> None:
    np.random.seed(seed)
    if not use_segments:
        scene = _without_segments(scene)
    out = RandomAffine(160, degrees=10, translate=0.1, scale=0.3, perspective=perspective)(scene)
    assert_boxes_enclose_pixels(out, tolerance=2.0)


@SETTINGS
@given(scene=scenes(polygons=False), seed=seeds)
def test_scale_translate_only_boxes_are_tight(scene, seed) -> None:
    np.random.seed(seed)
    out = RandomAffine(128, degrees=0, translate=0.25, scale=0.5)(_without_segments(scene))
    assert_boxes_enclose_pixels(out, tolerance=1.5, tight=True)


def test_polygon_boxes_are_tighter_than_corner_boxes_under_rotation() -> None:
    scene = draw_scene(100, 100, [(0, (30, 30, 70, 70), True)])
    matrix, _ = random_affine_matrix((100, 100), (100, 100), degrees=0, translate=0, scale=0)
    rotation = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    centre = np.array([[1, 0, 50], [0, 1, 50], [0, 0, 1]]) @ rotation @ np.array([[1, 0, -50], [0, 1, -50], [0, 0, 1]])
    with_polygons = warp_sample(scene, centre, (100, 100))
    without = warp_sample(_without_segments(draw_scene(100, 100, [(0, (30, 30, 70, 70), True)])), centre, (100, 100))
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    assert area(with_polygons.boxes)[0] < area(without.boxes)[0]
    assert_boxes_enclose_pixels(with_polygons, tolerance=2.0)
    assert np.allclose(matrix, np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]))  # zero strength = identity


@SETTINGS
@given(scene=scenes(), direction=st.sampled_from(["horizontal", "vertical"]))
def test_flips_keep_boxes_exact(scene, direction) -> None:
    out = flip_sample(scene, direction)
    assert_boxes_enclose_pixels(out, tolerance=0.0, tight=True)
    twice = flip_sample(out, direction)
    assert np.array_equal(twice.image, scene.image) and np.allclose(twice.boxes, scene.boxes)
    assert all(np.allclose(a, b) for a, b in zip(twice.segments, scene.segments))


def test_random_flip_probability_bounds() -> None:
    scene = draw_scene(50, 60, [(1, (5, 5, 20, 30), False)])
    assert RandomFlip("horizontal", p=0.0)(scene) is scene
    assert np.allclose(RandomFlip("horizontal", p=1.0)(scene).boxes, [[40, 5, 55, 30]])
    with pytest.raises(ValueError, match="horizontal"):
        RandomFlip("sideways")  # type: ignore[arg-type]


@SETTINGS
@given(scene=scenes(), size=st.integers(64, 256), scaleup=st.booleans(), auto=st.booleans())
# float32 rounding put the right edge of a box at 120.00001 in an image 120 px wide (50 -> 120): clipped now.
@example(scene=draw_scene(48, 50, [(0, (25, 24, 50, 48), False)]), size=120, scaleup=True, auto=False)
def test_letterbox_boxes_enclose_pixels(scene, size, scaleup, auto) -> None:
    out = Letterbox(size, auto=auto, scaleup=scaleup, stride=32)(scene)
    if not auto:
        assert out.image.shape[:2] == (size, size)
    assert_boxes_enclose_pixels(out, tolerance=1.5, tight=True)


@SETTINGS
@given(scene=scenes(), size=st.integers(64, 256), augment=st.booleans())
# float32 rounding put a box's bottom edge at 59.000004 in an image 59 px tall (82 -> 59): boxes are clipped now.
@example(scene=draw_scene(82, 90, [(0, (10, 41, 30, 82), False)]), size=64, augment=True)
@example(scene=draw_scene(82, 90, [(0, (10, 41, 30, 82), False)]), size=64, augment=False)
def test_resize_long_side(scene, size, augment) -> None:
    out = resize_long_side(scene, size, augment=augment)
    assert max(out.image.shape[:2]) == size
    assert_boxes_enclose_pixels(out, tolerance=1.5, tight=True)


def _mosaic_inputs(data, imgsz):
    """Four scenes with two objects each; the 8 colours are split so every instance has its own colour."""
    colours = data.draw(st.permutations(range(8)))
    samples = [data.draw(scenes(colours=colours[2 * i : 2 * i + 2], max_size=imgsz)) for i in range(4)]
    return [resize_long_side(s, imgsz) for s in samples]


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_mosaic_boxes_enclose_pixels(data, seed) -> None:
    imgsz = 96
    samples = _mosaic_inputs(data, imgsz)
    np.random.seed(seed)
    centre = tuple(int(c) for c in np.random.uniform(0.5 * imgsz, 1.5 * imgsz, size=2))
    canvas = build_mosaic(samples, centre, 2 * imgsz)
    assert canvas.image.shape == (2 * imgsz, 2 * imgsz, 3)
    assert_boxes_enclose_pixels(canvas, tolerance=1.5, tight=True)  # inputs were resized (blended edges)
    out = RandomAffine(imgsz, degrees=5, translate=0.1, scale=0.5)(canvas)
    assert out.image.shape == (imgsz, imgsz, 3)
    assert_boxes_enclose_pixels(out, tolerance=2.0)


def test_mosaic_box_of_a_polygon_cut_at_its_tip_follows_the_polygon() -> None:
    """A diamond whose box keeps a corner inside the canvas while the diamond itself lies outside is dropped, not
    kept as a sliver box around background (a case hypothesis found)."""
    empty = Sample(np.zeros((96, 96, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), "e", [])
    diamond = np.array([[59.3, 0.0], [71.5, 17.0], [59.3, 34.1], [47.1, 17.0]], np.float32)
    top_right = Sample(np.zeros((91, 96, 3), np.uint8), np.array([[47.1, 0.0, 71.5, 34.1]], np.float32),
                       np.array([3]), "d", [diamond])
    inside = Sample(np.zeros((96, 96, 3), np.uint8), np.array([[10, 10, 30, 20]], np.float32), np.array([5]), "i",
                    [np.array([[10, 10], [30, 10], [30, 20], [10, 20]], np.float32)])
    # top-right quadrant at x 133..229, y -34..57: the box keeps x 180..192, y 0..0.1; the diamond's tip is at x 192.3
    canvas = build_mosaic([empty, top_right, empty, inside], (133, 57), 192)
    assert canvas.classes.tolist() == [5]
    np.testing.assert_allclose(canvas.boxes, [[143, 67, 163, 77]])  # bottom-right quadrant at x 133, y 57
    without_polygons = build_mosaic([replace_sample(s, segments=None) for s in (empty, top_right, empty, inside)],
                                    (133, 57), 192)
    assert without_polygons.classes.tolist() == [3, 5], "boxes alone cannot tell: the sliver stays"


def test_mosaic_transform_draws_three_other_samples_and_passes_through_when_off() -> None:
    first = draw_scene(80, 60, [(0, (10, 10, 30, 40), False)])
    others = ListDataset([draw_scene(60, 80, [(k, (5, 5, 25, 25), False)]) for k in (1, 2, 3)])
    np.random.seed(0)
    out = Mosaic(others, imgsz=80, p=1.0)(resize_long_side(first, 80))
    assert out.image.shape == (160, 160, 3)
    assert 0 in out.classes and set(out.classes.tolist()) <= {0, 1, 2, 3}
    assert_boxes_enclose_pixels(out, tolerance=0.0, tight=True)
    assert Mosaic(others, imgsz=80, p=0.0)(first) is first
    with pytest.raises(ValueError, match="empty"):
        Mosaic(ListDataset([]), imgsz=80)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_copy_paste_boxes_enclose_pixels(data, seed) -> None:
    colours = data.draw(st.permutations(range(8)))[:4]
    scene = data.draw(scenes(colours=colours, min_size=64))
    np.random.seed(seed)
    out = copy_paste_flipped(scene, fraction=1.0)
    assert len(out.boxes) >= len(scene.boxes) and len(out.segments) == len(out.boxes)
    assert np.array_equal(out.boxes[: len(scene.boxes)], scene.boxes)
    assert_boxes_enclose_pixels(out, tolerance=1.0)
    # pasted copies never cover an existing box by more than 30 % of its area
    pasted = out.boxes[len(scene.boxes) :]
    if len(pasted):
        assert (box_ioa(pasted, scene.boxes) <= 0.3 + 1e-6).all()
    # and the result survives the affine that follows it in the pipeline
    assert_boxes_enclose_pixels(RandomAffine(128, degrees=20, scale=0.3)(out), tolerance=2.0, dropped_from=out)


def test_copy_paste_pastes_a_mirrored_instance() -> None:
    scene = draw_scene(64, 128, [(2, (8, 10, 40, 50), True)])
    out = copy_paste_flipped(scene, fraction=1.0)
    assert np.allclose(out.boxes, [[8, 10, 40, 50], [88, 10, 120, 50]])
    # the paste mask is the rasterised polygon: all but the anti-aliased rim of the drawn diamond
    assert colour_mask(out.image, 2)[:, 64:].sum() >= 0.9 * colour_mask(scene.image, 2).sum()
    assert_boxes_enclose_pixels(out, tolerance=1.0)
    assert copy_paste_flipped(_without_segments(draw_scene(64, 64, [(2, (8, 8, 20, 20), False)])), 1.0).boxes.shape == (
        1,
        4,
    )


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_mixup_keeps_both_label_sets_over_the_blend(data, seed) -> None:
    colours = data.draw(st.permutations(range(8)))
    np.random.seed(seed)
    affine = RandomAffine(96, degrees=10, scale=0.3)
    first = affine(data.draw(scenes(colours=colours[:4])))
    second = affine(data.draw(scenes(colours=colours[4:])))
    ratio = float(np.random.beta(32, 32))
    out = mixup(first, second, ratio)
    assert_boxes_valid(out)
    assert np.array_equal(out.boxes, np.concatenate([first.boxes, second.boxes]))
    assert np.array_equal(out.classes, np.concatenate([first.classes, second.classes]))
    expected = first.image * ratio + second.image * (1 - ratio)
    assert np.abs(out.image.astype(float) - expected).max() <= 1.0
    # nothing moved: the mixed boxes enclose the object pixels of both inputs (colours are disjoint)
    assert_boxes_enclose_pixels(out, tolerance=2.0, pixels_from=first.image)
    assert_boxes_enclose_pixels(out, tolerance=2.0, pixels_from=second.image)


def test_mixup_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mixup(draw_scene(10, 10, []), draw_scene(12, 10, []), 0.5)


@given(
    polygon=st.lists(st.tuples(st.floats(-50, 150), st.floats(-50, 150)), min_size=3, max_size=8),
)
@settings(max_examples=100, deadline=None)
def test_clip_polygon_stays_inside_and_keeps_inside_points(polygon) -> None:
    points = np.array(polygon, np.float32)
    clipped = clip_polygon(points, 100, 100)
    if len(clipped):
        assert clipped.min() >= -1e-3 and clipped.max() <= 100 + 1e-3
    inside = points[(points >= 0).all(axis=1) & (points <= 100).all(axis=1)]
    for point in inside:
        assert np.isclose(clipped, point, atol=1e-3).all(axis=1).any()


def test_background_is_fill_value() -> None:
    out = RandomAffine(64, translate=0, scale=0)(draw_scene(32, 32, []))
    assert (out.image[0, 0] == BACKGROUND).all()


def _clip_per_vertex(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sutherland-Hodgman written vertex by vertex: the reference for the vectorised passes of clip_polygon."""
    points = points.astype(np.float64)
    borders = ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True))
    for axis, limit, keep_below in borders:
        if len(points) == 0:
            break
        inside = points[:, axis] <= limit if keep_below else points[:, axis] >= limit
        output = []
        for i, point in enumerate(points):
            following, following_inside = points[(i + 1) % len(points)], inside[(i + 1) % len(points)]
            if inside[i]:
                output.append(point)
            if inside[i] != following_inside:
                output.append(point + (limit - point[axis]) / (following[axis] - point[axis]) * (following - point))
        points = np.array(output).reshape(-1, 2)
    return np.stack([points[:, 0].clip(0, width), points[:, 1].clip(0, height)], axis=1).astype(np.float32)


def test_clip_polygon_equals_the_per_vertex_algorithm_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for trial in range(3000):
        polygon = rng.uniform(-60, 160, (int(rng.integers(3, 30)), 2)).astype(np.float32)
        if trial % 3 == 0:
            polygon = np.round(polygon / 50) * 50  # vertices exactly on the borders
        if trial % 5 == 0:
            polygon = rng.uniform(1, 99, polygon.shape).astype(np.float32)  # inside: the early return
        expected, clipped = _clip_per_vertex(polygon, 100, 120), clip_polygon(polygon, 100, 120)
        assert clipped.dtype == np.float32 and np.array_equal(clipped, expected), polygon


def test_polygons_are_mapped_together_exactly_as_one_by_one() -> None:
    rng = np.random.default_rng(1)
    polygons = [rng.uniform(0, 100, (k, 2)).astype(np.float32) for k in (3, 0, 7, 4)]
    for matrix in (np.array([[1.1, 0.2, 5.0], [-0.1, 0.9, 3.0], [0.0, 0.0, 1.0]]),
                   np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1e-4, -2e-4, 1.0]])):
        together = apply_homography_to_polygons(polygons, matrix)
        assert [t.shape for t in together] == [p.shape for p in polygons]
        assert all(np.array_equal(t, apply_homography(p, matrix)) for t, p in zip(together, polygons))
    assert apply_homography_to_polygons([], np.eye(3)) == []
