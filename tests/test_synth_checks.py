"""The pixel checks of unifiedreward.synth.checks: every rendered scene checks out, and each wrong attribute is
caught alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from unifiedreward.synth.checks import CHECK_ATTRIBUTES, CLIP_CHECK_ATTRIBUTES, check_clip, check_scene, detect_objects
from unifiedreward.synth.world import (
    COLORS,
    COUNTS,
    OPPOSITE,
    SHAPES,
    MotionSpec,
    SceneSpec,
    item_rng,
    random_motion_spec,
    random_scene_spec,
    render_clip,
    render_scene,
)


@pytest.mark.parametrize("size", [48, 84])
def test_every_rendered_scene_checks_out(size):
    for index in range(300):
        rng = item_rng(3, 40, index, size)
        spec = random_scene_spec(rng)
        verdict = check_scene(render_scene(spec, rng, size).image, spec)
        assert verdict == dict.fromkeys(CHECK_ATTRIBUTES, True), (index, spec, detect_objects(render_scene(
            spec, item_rng(3, 40, index, size), size).image))  # fmt: skip


def _other(spec: SceneSpec, attribute: str) -> SceneSpec:
    value = getattr(spec, attribute)
    if attribute == "position":
        return dataclasses.replace(spec, position=OPPOSITE[value])
    options = {"color": list(COLORS), "shape": list(SHAPES), "count": list(COUNTS)}[attribute]
    return dataclasses.replace(spec, **{attribute: next(v for v in options if v != value)})


@pytest.mark.parametrize("attribute", ["color", "shape", "count", "position"])
def test_a_wrong_attribute_fails_alone(attribute):
    for index in range(40):
        rng = item_rng(4, 41, index)
        spec = random_scene_spec(rng)
        image = render_scene(spec, rng, 48).image
        verdict = check_scene(image, _other(spec, attribute))
        assert not verdict[attribute] and not verdict["all"]
        assert all(ok for name, ok in verdict.items() if name not in (attribute, "all")), (spec, verdict)


def test_fill_ratios_and_centroid():
    spec = SceneSpec("blue", "square", 1, "right")
    found = detect_objects(render_scene(spec, item_rng(0, 42, 0), 84).image)
    assert found.count == 1 and found.color == "blue" and found.shape == "square" and found.fill == 1.0
    assert found.centroid[0] > 42 and found.size == (84, 84)
    # a lattice disc of radius 8: 197 of its box's 289 pixels (a circle; pi / 4 in the limit)
    canvas = np.full((48, 48, 3), 245, dtype=np.uint8)
    rows, cols = np.mgrid[0:48, 0:48]
    canvas[(rows - 24) ** 2 + (cols - 12) ** 2 <= 8**2] = COLORS["red"]
    found = detect_objects(canvas)
    assert found.shape == "circle" and found.color == "red" and found.fill == pytest.approx(197 / 289)
    assert found.centroid == pytest.approx((12.5, 24.5))


def test_nothing_drawn_fails_everything_and_specks_are_noise():
    blank = Image.new("RGB", (48, 48), (240, 240, 240))
    assert check_scene(blank, SceneSpec("red", "circle", 1, "left")) == dict.fromkeys(CHECK_ATTRIBUTES, False)
    speck = np.asarray(blank).copy()
    speck[10:12, 10] = (0, 0, 0)  # 2 pixels < the 9-pixel noise floor of a 48 px image
    assert detect_objects(speck).count == 0
    assert detect_objects(speck, min_pixels=1).count == 1
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        detect_objects(np.zeros((8, 8)))


# ------------------------------------------------------------------------------------------------------------ clips
@pytest.mark.parametrize("size", [16, 32, 56])
def test_every_rendered_clip_checks_out(size):
    for index in range(250):
        rng = item_rng(5, 43, index, size)
        spec = random_motion_spec(rng)
        frames = render_clip(spec, rng, size, 4).frames
        assert check_clip(frames, spec) == dict.fromkeys(CLIP_CHECK_ATTRIBUTES, True), (index, spec)


def _other_motion(spec: MotionSpec, attribute: str) -> MotionSpec:
    if attribute == "direction":
        return dataclasses.replace(spec, direction={"left": "right", "right": "left", "up": "down",
                                                    "down": "up"}[spec.direction])  # fmt: skip
    if attribute == "change":  # a change where none is drawn, or none where one is
        end = None if spec.end_color else next(c for c in COLORS if c != spec.color)
        return dataclasses.replace(spec, end_color=end)
    options = {"color": [c for c in COLORS if c != spec.end_color], "shape": list(SHAPES)}[attribute]
    return dataclasses.replace(spec, **{attribute: next(v for v in options if v != getattr(spec, attribute))})


@pytest.mark.parametrize("attribute", ["color", "shape", "direction", "change"])
def test_a_wrong_clip_attribute_fails(attribute):
    for index in range(40):
        rng = item_rng(6, 44, index)
        spec = random_motion_spec(rng)
        frames = render_clip(spec, rng, 32, 4).frames
        verdict = check_clip(frames, _other_motion(spec, attribute))
        assert not verdict[attribute] and not verdict["all"], (spec, verdict)
        if attribute in ("shape", "direction"):  # independent of the colours
            assert all(ok for name, ok in verdict.items() if name not in (attribute, "all")), (spec, verdict)


def test_clip_without_object_fails_and_needs_two_frames():
    spec = MotionSpec("red", "circle", "up")
    blank = np.full((4, 32, 32, 3), 200, dtype=np.uint8)
    assert check_clip(blank, spec) == dict.fromkeys(CLIP_CHECK_ATTRIBUTES, False)
    with pytest.raises(ValueError, match="2 frames"):
        check_clip(blank[:1], spec)
    # an object that stays where it is moves in no direction
    still = np.repeat(render_clip(spec, item_rng(0, 45, 1), 32, 4).frames[:1], 4, axis=0)
    assert not check_clip(still, spec)["direction"] and check_clip(still, spec)["color"]
    # a colour change drawn where the caption names none fails "change" but not "color"
    frames = render_clip(MotionSpec("red", "circle", "up", "blue"), item_rng(0, 45, 0), 32, 4).frames
    verdict = check_clip(frames, spec)
    assert verdict["color"] and verdict["direction"] and not verdict["change"]
