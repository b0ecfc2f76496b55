"""A procedurally generated world with ground truth: images of simple scenes and short videos of moving shapes.

**Scenes** (images). A scene is one kind of object repeated ``count`` times inside one half of the canvas:

* ``color``: one of :data:`COLORS` (the drawn RGB is the named colour jittered by a few levels per channel);
* ``shape``: ``circle``, ``square`` or ``triangle`` (:data:`SHAPES`);
* ``count``: 1, 2 or 3 (:data:`COUNTS`);
* ``position``: the half the objects lie in, ``left``, ``right``, ``top`` or ``bottom`` (:data:`POSITIONS`).

Sizes (radius per object, smaller when there are more objects), exact placement (non-overlapping, entirely inside
the half) and the background tint are random nuisances that no caption mentions. Its ground-truth description is
:meth:`SceneSpec.caption`, e.g. ``"two red circles on the left"``.

**Clips** (videos). One object moves across the canvas in a straight line:

* ``color``, ``shape`` as above;
* ``direction``: ``left``, ``right``, ``up`` or ``down`` (:data:`DIRECTIONS`): it starts near one edge and ends
  near the opposite one, its other coordinate fixed;
* ``end_color``: ``None`` (the colour never changes) or another colour it switches to halfway through (from frame
  ``num_frames // 2`` on).

Description: :meth:`MotionSpec.caption`, e.g. ``"a red circle moving right and turning blue"``.

Everything is drawn without anti-aliasing (so every object pixel has exactly the object's RGB) and is deterministic:
item ``i`` of stream ``s`` under world seed ``seed`` is drawn from ``numpy.random.default_rng([seed, s, i])``, so an
item never depends on how many items were drawn before it. :class:`DrawnObject` records where each object was drawn
(centre, radius, RGB), the ground truth that the tests check against the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "COLORS",
    "COUNTS",
    "COUNT_WORDS",
    "DIRECTIONS",
    "MIN_IMAGE_SIZE",
    "MOTION_ATTRIBUTES",
    "OPPOSITE",
    "POSITIONS",
    "SCENE_ATTRIBUTES",
    "SHAPES",
    "Clip",
    "DrawnObject",
    "MotionSpec",
    "Scene",
    "SceneSpec",
    "World",
    "item_rng",
    "perturb_motion",
    "perturb_scene",
    "random_motion_spec",
    "random_scene_spec",
    "render_clip",
    "render_scene",
]

#: Colour names and their base RGB (well separated in RGB so that a few levels of jitter never confuse them).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 205, 30),
    "purple": (145, 55, 190),
    "orange": (245, 135, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COUNTS: tuple[int, ...] = (1, 2, 3)
COUNT_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
#: The attributes a scene caption states (and that a mismatching candidate may get wrong).
SCENE_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "count", "position")
#: The attributes a clip caption states.
MOTION_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "direction", "end_color")

_POSITION_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
_COLOR_JITTER = 12  # max per-channel deviation from the base RGB
# Object radius as a fraction of the canvas side, per count (more objects must fit into one half).
_RADIUS_RANGE = {1: (0.13, 0.19), 2: (0.10, 0.14), 3: (0.08, 0.11)}
_CLIP_RADIUS = (0.15, 0.2)
#: The smallest scene canvas. Below ~44 px the smallest objects (3 per half, radius 8% of the side) are drawn with
#: so few pixels that a square, a circle and a triangle are no longer told apart by their fill ratio (the
#: ground-truth checks), and below ~17 px one object (radius up to 19%, plus margins) does not fit into its half.
MIN_IMAGE_SIZE = 48

# Stream ids of item_rng: one independent random stream per kind of item.
STREAM_SCENE = 1
STREAM_CLIP = 2
STREAM_SCENE_SPEC = 3
STREAM_CLIP_SPEC = 4


def item_rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    """The random generator of one item: a function of ``(seed, stream, *key)`` only (non-negative integers)."""
    return np.random.default_rng([int(seed), int(stream), *map(int, key)])


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(shape: str, count: int) -> str:
    return shape if count == 1 else shape + "s"


@dataclass(frozen=True)
class SceneSpec:
    """What a scene shows: ``count`` objects of one ``color`` and ``shape`` in the ``position`` half."""

    color: str
    shape: str
    count: int
    position: str

    def __post_init__(self) -> None:
        if self.color not in COLORS or self.shape not in SHAPES:
            raise ValueError(f"unknown colour or shape in {self}")
        if self.count not in COUNTS or self.position not in POSITIONS:
            raise ValueError(f"unknown count or position in {self}")

    def caption(self) -> str:
        """The ground-truth description, e.g. ``"a red circle on the left"``, ``"three blue squares at the top"``."""
        article = _article(self.color) if self.count == 1 else COUNT_WORDS[self.count]
        return f"{article} {self.color} {_plural(self.shape, self.count)} {_POSITION_PHRASE[self.position]}"

    def differences(self, other: SceneSpec) -> list[str]:
        """The attributes (in :data:`SCENE_ATTRIBUTES` order) whose values differ from ``other``'s."""
        return [name for name in SCENE_ATTRIBUTES if getattr(self, name) != getattr(other, name)]

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "shape": self.shape, "count": self.count, "position": self.position}


@dataclass(frozen=True)
class MotionSpec:
    """What a clip shows: one ``color`` ``shape`` moving in ``direction``, switching to ``end_color`` if set."""

    color: str
    shape: str
    direction: str
    end_color: str | None = None

    def __post_init__(self) -> None:
        if self.color not in COLORS or self.shape not in SHAPES or self.direction not in DIRECTIONS:
            raise ValueError(f"unknown colour, shape or direction in {self}")
        if self.end_color is not None and (self.end_color not in COLORS or self.end_color == self.color):
            raise ValueError(f"end_color must be another known colour or None, got {self.end_color!r}")

    def caption(self) -> str:
        """The ground-truth description, e.g. ``"a red circle moving up and turning blue"``."""
        text = f"{_article(self.color)} {self.color} {self.shape} moving {self.direction}"
        return text if self.end_color is None else f"{text} and turning {self.end_color}"

    @property
    def final_color(self) -> str:
        """The colour at the end of the clip."""
        return self.end_color or self.color

    def differences(self, other: MotionSpec) -> list[str]:
        """The attributes (in :data:`MOTION_ATTRIBUTES` order) whose values differ from ``other``'s."""
        return [name for name in MOTION_ATTRIBUTES if getattr(self, name) != getattr(other, name)]

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "shape": self.shape, "direction": self.direction, "end_color": self.end_color}


@dataclass(frozen=True)
class DrawnObject:
    """Ground truth of one drawn object: its shape, colour name, exact RGB, centre ``(x, y)`` and radius in pixels.

    A circle is the disc of that radius, a square the axis-aligned square of side ``2 * radius`` and a triangle the
    upward triangle inscribed in that square (apex at the top centre, base along the bottom edge).
    """

    shape: str
    color: str
    rgb: tuple[int, int, int]
    center: tuple[float, float]
    radius: float

    def bbox(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, inclusive pixel bounds of the drawing."""
        x, y, r = self.center[0], self.center[1], self.radius
        return (round(x - r), round(y - r), round(x + r) - 1, round(y + r) - 1)


@dataclass
class Scene:
    """A rendered scene: its spec, the drawn objects, the background RGB and the image."""

    spec: SceneSpec
    objects: list[DrawnObject]
    background: tuple[int, int, int]
    image: Image.Image

    def to_dict(self) -> dict[str, Any]:
        """Ground truth as JSON-able data (spec, caption, objects, background)."""
        return {
            **self.spec.to_dict(),
            "caption": self.spec.caption(),
            "background": list(self.background),
            "objects": [_object_dict(obj) for obj in self.objects],
        }


@dataclass
class Clip:
    """A rendered clip: its spec, the object drawn in each frame, the background and the ``(T, H, W, 3)`` frames."""

    spec: MotionSpec
    track: list[DrawnObject]
    background: tuple[int, int, int]
    frames: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "caption": self.spec.caption(),
            "background": list(self.background),
            "track": [_object_dict(obj) for obj in self.track],
        }


def _object_dict(obj: DrawnObject) -> dict[str, Any]:
    return {
        "shape": obj.shape,
        "color": obj.color,
        "rgb": list(obj.rgb),
        "center": [round(obj.center[0], 2), round(obj.center[1], 2)],
        "radius": round(obj.radius, 2),
    }


# ------------------------------------------------------------------------------------------------------------ specs
def _choice(rng: np.random.Generator, options: Any) -> Any:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def random_scene_spec(rng: np.random.Generator) -> SceneSpec:
    """A uniformly random scene spec."""
    return SceneSpec(_choice(rng, COLORS), _choice(rng, SHAPES), _choice(rng, COUNTS), _choice(rng, POSITIONS))


def random_motion_spec(rng: np.random.Generator, change_probability: float = 0.5) -> MotionSpec:
    """A random clip spec; the colour changes with probability ``change_probability``."""
    color = _choice(rng, COLORS)
    shape = _choice(rng, SHAPES)
    direction = _choice(rng, DIRECTIONS)
    end_color = _choice(rng, [c for c in COLORS if c != color]) if rng.random() < change_probability else None
    return MotionSpec(color, shape, direction, end_color)


#: The half opposite each position: the only wrong position a perturbation uses, because the halves overlap (objects
#: in the bottom-left quadrant are both "on the left" and "at the bottom"), so "left" vs "bottom" could both be true.
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


def perturb_scene(spec: SceneSpec, attribute: str, rng: np.random.Generator) -> SceneSpec:
    """``spec`` with ``attribute`` set to a different random value (everything else unchanged).

    The position always moves to the opposite half (:data:`OPPOSITE`), so the result never satisfies the original.
    """
    options = {"color": COLORS, "shape": SHAPES, "count": COUNTS, "position": POSITIONS}
    if attribute not in options:
        raise ValueError(f"unknown scene attribute {attribute!r}; expected one of {SCENE_ATTRIBUTES}")
    if attribute == "position":
        return replace(spec, position=OPPOSITE[spec.position])
    current = getattr(spec, attribute)
    return replace(spec, **{attribute: _choice(rng, [v for v in options[attribute] if v != current])})


def perturb_motion(spec: MotionSpec, attribute: str, rng: np.random.Generator) -> MotionSpec:
    """``spec`` with ``attribute`` changed to another valid value (everything else unchanged where possible).

    ``end_color``: a changing clip stops changing or changes to another colour; a constant one starts changing.
    ``color``: the start colour changes (if it would equal ``end_color``, the end colour is kept distinct).
    """
    if attribute == "color":
        color = _choice(rng, [c for c in COLORS if c not in (spec.color, spec.end_color)])
        return replace(spec, color=color)
    if attribute == "shape":
        return replace(spec, shape=_choice(rng, [s for s in SHAPES if s != spec.shape]))
    if attribute == "direction":
        return replace(spec, direction=_choice(rng, [d for d in DIRECTIONS if d != spec.direction]))
    if attribute == "end_color":
        options: list[str | None] = [c for c in COLORS if c not in (spec.color, spec.end_color)]
        if spec.end_color is not None:
            options = [None] * len(options) + options  # half the time: stop changing colour
        return replace(spec, end_color=_choice(rng, options))
    raise ValueError(f"unknown motion attribute {attribute!r}; expected one of {MOTION_ATTRIBUTES}")


# ------------------------------------------------------------------------------------------------------------ drawing
def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    noise = rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
    return tuple(int(np.clip(c + n, 0, 255)) for c, n in zip(rgb, noise, strict=True))  # type: ignore[return-value]


def _background(rng: np.random.Generator) -> tuple[int, int, int]:
    base = int(rng.integers(236, 252))
    return tuple(int(base + rng.integers(-3, 4)) for _ in range(3))  # type: ignore[return-value]


def draw_object(draw: ImageDraw.ImageDraw, obj: DrawnObject) -> None:
    """Draw one object (no anti-aliasing)."""
    x0, y0, x1, y1 = obj.bbox()
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=obj.rgb)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=obj.rgb)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=obj.rgb)


def _region(position: str, size: int) -> tuple[float, float, float, float]:
    half = size / 2
    return {
        "left": (0.0, 0.0, half, size),
        "right": (half, 0.0, size, size),
        "top": (0.0, 0.0, size, half),
        "bottom": (0.0, half, size, size),
    }[position]


def _place(spec: SceneSpec, size: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """``(x, y, r)`` inside the spec's half (1-pixel margin), bounding boxes at least 2 pixels apart."""
    low, high = _RADIUS_RANGE[spec.count]
    x_min, y_min, x_max, y_max = _region(spec.position, size)
    for _attempt in range(200):
        radius = float(rng.uniform(low, high)) * size
        placed: list[tuple[float, float, float]] = []
        for _ in range(spec.count):
            for _try in range(100):
                x = float(rng.uniform(x_min + radius + 1, x_max - radius - 1))
                y = float(rng.uniform(y_min + radius + 1, y_max - radius - 1))
                x, y = round(x), round(y)
                # bounding boxes at least 2 px apart along one axis (squares must not touch diagonally either)
                if all(max(abs(x - px), abs(y - py)) >= radius + pr + 2 for px, py, pr in placed):
                    placed.append((x, y, radius))
                    break
            else:
                break
        if len(placed) == spec.count:
            return placed
        high = max(low, high * 0.9)  # crowded: try smaller objects
    raise RuntimeError(f"could not place {spec} on a {size}px canvas")  # pragma: no cover


def render_scene(spec: SceneSpec, rng: np.random.Generator, size: int = 84) -> Scene:
    """Draw ``spec`` on a ``size`` x ``size`` canvas with random nuisances from ``rng``.

    Raises:
        ValueError: ``size`` is below :data:`MIN_IMAGE_SIZE`.
    """
    _check_image_size(size)
    background = _background(rng)
    rgb = _jitter(COLORS[spec.color], rng)
    objects = [DrawnObject(spec.shape, spec.color, rgb, (x, y), r) for x, y, r in _place(spec, size, rng)]
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        draw_object(draw, obj)
    return Scene(spec, objects, background, image)


def _check_image_size(size: int) -> None:
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"scene images need at least {MIN_IMAGE_SIZE} x {MIN_IMAGE_SIZE} pixels, got {size}: the "
                         "objects must fit into one half of the canvas and stay recognisable")  # fmt: skip


def render_clip(spec: MotionSpec, rng: np.random.Generator, size: int = 56, num_frames: int = 4) -> Clip:
    """Draw ``spec`` as ``num_frames`` frames of ``size`` x ``size`` (even sizes, for yuv420p video files).

    The object moves at constant speed from ``radius + 1`` pixels off one edge to the same distance off the
    opposite edge; its other coordinate is random. With ``end_color`` set, frames ``num_frames // 2`` onwards show
    the new colour.
    """
    if num_frames < 2:
        raise ValueError("a clip needs at least 2 frames")
    background = _background(rng)
    radius = float(rng.uniform(*_CLIP_RADIUS)) * size
    start_rgb = _jitter(COLORS[spec.color], rng)
    end_rgb = _jitter(COLORS[spec.end_color], rng) if spec.end_color else start_rgb
    lo, hi = radius + 1, size - radius - 1
    other = round(float(rng.uniform(lo, hi)))
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    track: list[DrawnObject] = []
    for t in range(num_frames):
        progress = t / (num_frames - 1)
        along = round(lo + (hi - lo) * (progress if spec.direction in ("right", "down") else 1 - progress))
        x, y = (along, other) if spec.direction in ("left", "right") else (other, along)
        changed = spec.end_color is not None and t >= num_frames // 2
        obj = DrawnObject(spec.shape, spec.final_color if changed else spec.color, end_rgb if changed else start_rgb,
                          (x, y), radius)  # fmt: skip
        image = Image.new("RGB", (size, size), background)
        draw_object(ImageDraw.Draw(image), obj)
        frames[t] = np.asarray(image)
        track.append(obj)
    return Clip(spec, track, background, frames)


# ------------------------------------------------------------------------------------------------------------ world
@dataclass(frozen=True)
class World:
    """The synthetic world's settings; draws scenes and clips deterministically from ``seed``.

    Attributes:
        seed: world seed.
        image_size: side of scene images in pixels (at least :data:`MIN_IMAGE_SIZE`).
        video_size: side of clip frames in pixels (even).
        num_frames: frames per clip.
        change_probability: probability that a random clip changes colour.
    """

    seed: int = 0
    image_size: int = 84
    video_size: int = 56
    num_frames: int = 4
    change_probability: float = 0.5

    def __post_init__(self) -> None:
        _check_image_size(self.image_size)
        if self.video_size % 2:
            raise ValueError(f"video_size must be even (yuv420p), got {self.video_size}")

    def scene(self, spec: SceneSpec, *key: int) -> Scene:
        """Render ``spec`` with the nuisances (sizes, placement, tints) drawn for ``key`` (non-negative ints)."""
        return render_scene(spec, item_rng(self.seed, STREAM_SCENE, *key), self.image_size)

    def clip(self, spec: MotionSpec, *key: int) -> Clip:
        """Render ``spec`` with the nuisances (size, lane, tints) drawn for ``key`` (non-negative ints)."""
        return render_clip(spec, item_rng(self.seed, STREAM_CLIP, *key), self.video_size, self.num_frames)

    def random_scene(self, index: int) -> Scene:
        """Scene ``index`` of the world: a random spec, rendered."""
        rng = item_rng(self.seed, STREAM_SCENE_SPEC, index)
        return self.scene(random_scene_spec(rng), 0, index)

    def random_clip(self, index: int) -> Clip:
        """Clip ``index`` of the world: a random spec, rendered."""
        rng = item_rng(self.seed, STREAM_CLIP_SPEC, index)
        return self.clip(random_motion_spec(rng, self.change_probability), 0, index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "image_size": self.image_size,
            "video_size": self.video_size,
            "num_frames": self.num_frames,
            "change_probability": self.change_probability,
        }
