"""Training records and held-out benchmark files for the synthetic world, in the real formats.

Every prompt is rendered by :func:`unifiedreward.protocol.render_prompt` (the upstream template of each task and
mode, Qwen form, version ``1.0``) and every answer is the template's own answer sentence (pair rank: e.g.
``Image 1 is better.``; point score: ``Final Score: N``), so the model trains on exactly what the judge asks and
scores.

**Tasks and ground truth** (``k`` = number of attributes a candidate gets wrong; attributes are drawn with the
task's weights in :class:`DifficultyMix`):

=====================  ==========================================================  ================================
task                   pair rank (which candidate is better)                       point score (scale, truth)
=====================  ==========================================================  ================================
image_generation       caption of scene A; image of A vs image of A with one       1-5: ``5 - k``, k = 0..4
                       attribute (colour/shape/count/position) changed
image_understanding    image + question; the right answer vs an answer with the    0-100: right 100 / wrong 0;
                       asked attribute wrong ("Describe the image.": one wrong)    "describe": ``100 - 25 k``
video_generation       caption of clip A; clip of A vs clip of A with one          1-10: ``10 - 3 k``, k = 0..3
                       attribute (colour/shape/direction/colour change) changed
video_understanding    clip + question; right answer vs one with the asked         1-5: right 5 / wrong 1;
                       attribute wrong                                             "describe": ``5 - k``
=====================  ==========================================================  ================================

Generation pairs may also be ties: ``tievote`` (two renderings of the caption's own spec; answer "Both ... equally
good") and, in held-out files only, ``bothbad_vote`` (two different one-attribute mismatches). The better
candidate's position is a fair coin.

**Files** (:func:`write_training_data`, :func:`write_heldout`):

* training: one JSON list per task x mode in the released LLaVA ``conversations`` format (``images`` /
  ``image`` / ``video`` keys), except video-generation pairs, which use the ``messages`` + ``videos`` format because
  a LLaVA record carries at most one video; plus ``train_data.yaml`` mixing them with sampling strategies. Media
  paths are relative to the entry's ``image_folder``.
* held-out: GenAI-Bench image and video (jsonl rows as the hub's ``image_generation`` / ``video_generation``
  configs, media by path), VideoGen-RewardBench (the csv), VL-RewardBench (the GitHub ``data.jsonl``), a
  VL-RewardBench-style video-understanding file (``video`` instead of ``image_path``; read by
  :func:`video_understanding_benchmark`) and point-score requests in the ``unifiedreward judge`` JSONL format with
  the true score in ``meta``.

Items are deterministic: example ``i`` of a task, mode and split is drawn from
``item_rng(seed, stream, split, combo, i)`` and rendered with nuisances keyed the same way.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unifiedreward.synth.world import (
    COLORS,
    COUNT_WORDS,
    DIRECTIONS,
    MOTION_ATTRIBUTES,
    POSITIONS,
    SCENE_ATTRIBUTES,
    SHAPES,
    Clip,
    MotionSpec,
    Scene,
    SceneSpec,
    World,
    item_rng,
    perturb_motion,
    perturb_scene,
    random_motion_spec,
    random_scene_spec,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AUX_COMBOS",
    "CAPTION_KINDS",
    "COMBOS",
    "DIFFICULTY_PRESETS",
    "MODES",
    "TASKS",
    "DifficultyMix",
    "Example",
    "HeldoutData",
    "TrainingData",
    "answer_text",
    "make_caption_example",
    "make_example",
    "reasoning_text",
    "render_user_text",
    "video_understanding_benchmark",
    "world_text",
    "write_heldout",
    "write_training_data",
]

TASKS: tuple[str, ...] = ("image_generation", "image_understanding", "video_generation", "video_understanding")
MODES: tuple[str, ...] = ("pair_rank", "point_score")
COMBOS: tuple[tuple[str, str], ...] = tuple((task, mode) for task in TASKS for mode in MODES)
#: Auxiliary captioning sets (plain chat, no judging template): ``("captioning", kind)``. ``image`` / ``video``:
#: "Describe the image." -> the caption; ``image_pair`` / ``video_pair``: two media, "Describe image 2." -> the
#: caption of that one. They teach a model trained from scratch to see and to tell the two media of a pair apart.
CAPTION_KINDS: tuple[str, ...] = ("image", "image_pair", "video", "video_pair")
AUX_COMBOS: tuple[tuple[str, str], ...] = tuple(("captioning", kind) for kind in CAPTION_KINDS)
SHORT: dict[str, str] = {
    "image_generation": "ig",
    "image_understanding": "iu",
    "video_generation": "vg",
    "video_understanding": "vu",
    "pair_rank": "pair",
    "point_score": "point",
    "captioning": "cap",
    "image": "image",
    "image_pair": "image2",
    "video": "video",
    "video_pair": "video2",
}
SPLITS: dict[str, int] = {"train": 1, "heldout": 2}
_STREAM_EXAMPLE = 10
_STREAM_CAPTION = 11
FAMILY = "qwen"
VERSION = "1.0"
#: Frame rate of the written clips (all their frames are one second of video at 4 frames).
VIDEO_FPS = 4

#: Names accepted by :meth:`DifficultyMix.preset`.
DIFFICULTY_PRESETS: tuple[str, ...] = ("full", "color")
# Question types of the understanding tasks (also the attribute a wrong answer gets wrong; "describe" = a caption).
IMAGE_QUESTIONS: tuple[str, ...] = ("color", "shape", "count", "position", "describe")
VIDEO_QUESTIONS: tuple[str, ...] = ("direction", "color", "end_color", "shape", "describe")


@dataclass(frozen=True)
class DifficultyMix:
    """Which attribute a mismatching candidate gets wrong (generation) or which question is asked (understanding).

    Each mapping is attribute -> weight (normalised when drawn). The defaults weight colour, the attribute a tiny
    model learns first, a little higher; shape, count, position and motion direction are the harder ones.
    ``tie_fraction`` is the share of generation pairs that are ties in the training data (two renderings of the
    caption's spec); ``heldout_tie_fraction`` / ``heldout_bothbad_fraction`` the shares of ``tievote`` /
    ``bothbad_vote`` items in the held-out GenAI-Bench-style files.
    """

    image_generation: Mapping[str, float] = field(
        default_factory=lambda: {"color": 0.4, "shape": 0.2, "count": 0.2, "position": 0.2}
    )
    image_understanding: Mapping[str, float] = field(
        default_factory=lambda: {"color": 0.3, "shape": 0.2, "count": 0.2, "position": 0.2, "describe": 0.1}
    )
    video_generation: Mapping[str, float] = field(
        default_factory=lambda: {"color": 0.3, "shape": 0.2, "direction": 0.3, "end_color": 0.2}
    )
    video_understanding: Mapping[str, float] = field(
        default_factory=lambda: {"direction": 0.3, "color": 0.2, "end_color": 0.2, "shape": 0.2, "describe": 0.1}
    )
    tie_fraction: float = 0.1
    heldout_tie_fraction: float = 0.1
    heldout_bothbad_fraction: float = 0.15

    @classmethod
    def preset(cls, name: str) -> DifficultyMix:
        """A named mix: ``full`` (the defaults above: every attribute can tell the candidates apart) or ``color``
        (candidates differ only in colour: the colour of a scene, the start or end colour of a clip, and the
        understanding questions ask about colours), the attribute a from-scratch model learns first.

        Raises:
            ValueError: an unknown name.
        """
        if name == "full":
            return cls()
        if name == "color":
            return cls(
                image_generation={"color": 1.0},
                image_understanding={"color": 1.0},
                video_generation={"color": 0.5, "end_color": 0.5},
                video_understanding={"color": 0.5, "end_color": 0.5},
            )
        raise ValueError(f"unknown difficulty preset {name!r} (choose from {DIFFICULTY_PRESETS})")

    def weights(self, task: str) -> dict[str, float]:
        """The normalised weights of ``task``."""
        raw = dict(getattr(self, task))
        allowed = {
            "image_generation": SCENE_ATTRIBUTES,
            "image_understanding": IMAGE_QUESTIONS,
            "video_generation": MOTION_ATTRIBUTES,
            "video_understanding": VIDEO_QUESTIONS,
        }[task]
        unknown = sorted(set(raw) - set(allowed))
        if unknown or not raw or any(w < 0 for w in raw.values()) or sum(raw.values()) <= 0:
            raise ValueError(f"bad difficulty weights for {task}: {raw} (attributes: {allowed})")
        total = float(sum(raw.values()))
        return {name: raw[name] / total for name in allowed if raw.get(name, 0) > 0}

    def to_dict(self) -> dict[str, Any]:
        return {
            **{task: self.weights(task) for task in TASKS},
            "tie_fraction": self.tie_fraction,
            "heldout_tie_fraction": self.heldout_tie_fraction,
            "heldout_bothbad_fraction": self.heldout_bothbad_fraction,
        }


@dataclass
class Example:
    """One generated judging example with its ground truth.

    Attributes:
        id: unique id, e.g. ``ig-pair-train-000012``.
        task, mode: as in :mod:`unifiedreward.protocol`.
        fields: the template's text fields (``prompt``; ``question``/``answer1``/``answer2``;
            ``question``/``response``).
        media: the scenes or clips, in template order.
        media_names: file stem of each medium.
        verdict: pair rank: ``first``, ``second`` or ``tie``.
        vote_type: generation pairs: the GenAI-Bench label (``leftvote``, ``rightvote``, ``tievote``,
            ``bothbad_vote``).
        score: point score: the true score.
        kind: what makes the candidates differ (an attribute name, ``tie``, ``bothbad``, ``k=2``, a question type).
        meta: extra ground truth (the specs, the right answer, the number of wrong attributes).
    """

    id: str
    task: str
    mode: str
    fields: dict[str, str]
    media: list[Scene | Clip]
    media_names: list[str]
    verdict: str | None = None
    vote_type: str | None = None
    score: float | None = None
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.task.startswith("video") or self.mode.startswith("video")


# ------------------------------------------------------------------------------------------------------- phrasing
def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _noun(shape: str, count: int) -> str:
    return shape if count == 1 else shape + "s"


def _be(count: int) -> str:
    return "is" if count == 1 else "are"


_POSITION_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}


def image_question(spec: SceneSpec, qtype: str) -> str:
    """The question of type ``qtype`` about a scene (it never reveals the asked attribute)."""
    noun, be = _noun(spec.shape, spec.count), _be(spec.count)
    objects = "object" if spec.count == 1 else "objects"
    return {
        "color": f"What color {be} the {noun}?",
        "shape": f"What shape {be} the {spec.color} {objects}?",
        "count": f"How many {spec.shape}s are there?",
        "position": f"Where {be} the {spec.color} {noun}?",
        "describe": "Describe the image.",
    }[qtype]


def image_answer(spec: SceneSpec, qtype: str) -> str:
    """The answer to ``image_question(..., qtype)`` that is true of ``spec``."""
    noun, be = _noun(spec.shape, spec.count), _be(spec.count)
    subject = "It" if spec.count == 1 else "They"
    return {
        "color": f"The {noun} {be} {spec.color}.",
        "shape": f"{subject} {be} {'a ' + spec.shape if spec.count == 1 else spec.shape + 's'}.",
        "count": f"There {be} {COUNT_WORDS[spec.count]} {noun}.",
        "position": f"{subject} {be} {_POSITION_WORDS[spec.position]}.",
        "describe": _sentence(spec.caption()),
    }[qtype]


def video_question(spec: MotionSpec, qtype: str) -> str:
    """The question of type ``qtype`` about a clip."""
    return {
        "direction": f"Which way does the {spec.shape} move?",
        "color": f"What color is the {spec.shape} at the start?",
        "end_color": f"What color is the {spec.shape} at the end?",
        "shape": "What shape is moving?",
        "describe": "Describe the video.",
    }[qtype]


def video_answer(spec: MotionSpec, qtype: str) -> str:
    """The answer to ``video_question(..., qtype)`` that is true of ``spec``."""
    return {
        "direction": f"It moves {spec.direction}.",
        "color": f"It is {spec.color} at the start.",
        "end_color": f"It is {spec.final_color} at the end.",
        "shape": f"A {spec.shape} is moving.",
        "describe": _sentence(spec.caption()),
    }[qtype]


def world_text() -> Iterator[str]:
    """Every caption, question and answer the world can produce (the tokenizer's training text)."""
    from itertools import product

    for color, shape, count, position in product(COLORS, SHAPES, COUNT_WORDS, POSITIONS):
        spec = SceneSpec(color, shape, count, position)
        yield spec.caption()
        yield _checks(spec.to_dict(), spec.to_dict(), _CHECK_ORDER_IMAGE, False)
        for qtype in IMAGE_QUESTIONS:
            yield image_question(spec, qtype)
            yield image_answer(spec, qtype)
    ends: list[str | None] = [None, *COLORS]
    for color, shape, direction, end in product(COLORS, SHAPES, DIRECTIONS, ends):
        if end == color:
            continue
        spec = MotionSpec(color, shape, direction, end)
        yield spec.caption()
        yield _checks(spec.to_dict(), spec.to_dict(), _CHECK_ORDER_VIDEO, True)
        for qtype in VIDEO_QUESTIONS:
            yield video_question(spec, qtype)
            yield video_answer(spec, qtype)
    for kind in CAPTION_KINDS:
        for which in (0, 1):
            yield caption_question(kind, which)


# -------------------------------------------------------------------------------------------------------- protocol
def render_user_text(task: str, mode: str, fields: Mapping[str, str]) -> str:
    """The text part of the user turn that :func:`unifiedreward.protocol.render_prompt` builds (Qwen form)."""
    from unifiedreward.protocol import render_prompt, select_template

    spec = select_template(task, mode, FAMILY, VERSION)
    images = [None] * spec.media.count("image")
    videos = [None] * spec.media.count("video")
    prompt = render_prompt(spec, family=FAMILY, images=images, videos=videos, **fields)
    parts = prompt.messages[0]["content"]
    return parts[-1]["text"]


def answer_text(task: str, mode: str, *, verdict: str | None = None, score: float | None = None) -> str:
    """The target answer: the template's own verdict sentence, or ``Final Score: N``."""
    from unifiedreward.protocol import Verdict, select_template

    spec = select_template(task, mode, FAMILY, VERSION)
    if mode == "pair_rank":
        return spec.answer.candidates[Verdict(verdict)]
    return f"Final Score: {round(score):d}"


# Checklist order: the order the caption states the attributes in.
_CHECK_ORDER_IMAGE = ("count", "color", "shape", "position")
_CHECK_ORDER_VIDEO = ("color", "shape", "direction", "end_color")
_SCENE_TYPES = {"count": "count", "color": "color", "shape": "shape", "position": "position"}
_MOTION_TYPES = {"color": "color", "shape": "shape", "direction": "direction", "end_color": "change"}


def _elements(spec: Mapping[str, Any], video: bool) -> dict[str, str]:
    """attribute -> the words a caption uses for it (``two``, ``red``, ``circles``, ``on the left``; motion:
    ``red``, ``circle``, ``moving up``, ``turning blue`` / ``no color change``)."""
    if video:
        end = spec["end_color"]
        return {"color": spec["color"], "shape": spec["shape"], "direction": f"moving {spec['direction']}",
                "end_color": f"turning {end}" if end else "no color change"}  # fmt: skip
    count = int(spec["count"])
    return {"count": COUNT_WORDS[count], "color": spec["color"], "shape": _noun(spec["shape"], count),
            "position": _POSITION_WORDS[spec["position"]]}  # fmt: skip


def _seen(spec: Mapping[str, Any], attrs: Sequence[str], video: bool) -> list[str]:
    """``element (type)`` for each attribute as ``spec`` has it (``final_color``: the colour at the end)."""
    words = _elements(spec, video)
    types = _MOTION_TYPES if video else _SCENE_TYPES
    return [f"{spec['end_color'] or spec['color']} (end color)" if attr == "final_color" else
            f"{words[attr]} ({types[attr]})" for attr in attrs]  # fmt: skip


def _agrees(a: Mapping[str, Any], b: Mapping[str, Any], attr: str) -> bool:
    if attr == "final_color":
        return (a["end_color"] or a["color"]) == (b["end_color"] or b["color"])
    return a[attr] == b[attr]


def _checks(shown: Mapping[str, Any], reference: Mapping[str, Any], attrs: Sequence[str], video: bool) -> str:
    """``element (type): 1|0`` for each attribute as ``shown`` has it (1: ``reference`` has the same value)."""
    return ", ".join(f"{seen}: {int(_agrees(shown, reference, attr))}"
                     for seen, attr in zip(_seen(shown, attrs, video), attrs, strict=True))  # fmt: skip


def _checked_attributes(example: Example) -> list[str]:
    qtype = example.meta.get("question_type", "describe")
    if qtype == "describe":
        return list(_CHECK_ORDER_VIDEO if example.is_video else _CHECK_ORDER_IMAGE)
    return ["final_color" if qtype == "end_color" else qtype]


def reasoning_text(example: Example) -> str:
    """The grounded element checklist an explained answer starts with (``element (type): value``, the format of
    the point-score template; 1 = agrees).

    Every element is written as the *medium* shows it, so each one is a dense, pixel-grounded training target, and
    each 1/0 compares two words in the text:

    * generation: one line per medium, ``Image 2: two (count): 1, blue (color): 0, ...`` (what image 2 shows; 1 =
      the caption says the same);
    * understanding: ``Image: red (color)`` (the asked elements as the medium shows them), then one line per answer
      with the elements it claims, ``Answer 2: blue (color): 0`` (1 = the medium agrees).
    """
    video = example.is_video
    subject = "Video" if video else "Image"
    if example.task in ("image_generation", "video_generation"):
        caption = example.meta["caption_spec"]
        attrs = list(_CHECK_ORDER_VIDEO if video else _CHECK_ORDER_IMAGE)
        if example.mode == "pair_rank":
            return "\n".join(f"{subject} {k + 1}: {_checks(shown, caption, attrs, video)}"
                             for k, shown in enumerate(example.meta["specs"]))  # fmt: skip
        return f"{subject}: {_checks(example.meta['spec'], caption, attrs, video)}"
    truth = example.meta["spec"]
    attrs = _checked_attributes(example)
    claimed = example.meta["answer_specs"]
    head = f"{subject}: " + ", ".join(_seen(truth, attrs, video))
    if example.mode == "pair_rank":
        lines = [f"Answer {k + 1}: {_checks(c, truth, attrs, video)}" for k, c in enumerate(claimed)]
        return "\n".join([head, *lines])
    return f"{head}\nResponse: {_checks(claimed[0], truth, attrs, video)}"


def score_range(task: str) -> tuple[float, float]:
    """The point-score template's range for ``task``."""
    from unifiedreward.protocol import select_template

    return select_template(task, "point_score", FAMILY, VERSION).answer.score_range


# -------------------------------------------------------------------------------------------------------- examples
def _draw(rng: np.random.Generator, weights: Mapping[str, float], exclude: Iterable[str] = ()) -> str:
    names = [n for n in weights if n not in set(exclude)]
    probs = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=probs / probs.sum()))]


def _draw_many(rng: np.random.Generator, weights: Mapping[str, float], k: int, universe: Sequence[str]) -> list[str]:
    """``k`` distinct attributes, by weight (attributes of weight 0 are used last, uniformly)."""
    chosen: list[str] = []
    for _ in range(k):
        left = {n: weights.get(n, 0.0) for n in universe if n not in chosen}
        if sum(left.values()) <= 0:
            left = dict.fromkeys(left, 1.0)
        chosen.append(_draw(rng, {n: w for n, w in left.items() if w > 0}))
    return chosen


def _perturb_many(spec: Any, attributes: Sequence[str], rng: np.random.Generator, perturb: Any) -> Any:
    for name in attributes:
        spec = perturb(spec, name, rng)
    return spec


def _pair_kind(rng: np.random.Generator, tie: float, bothbad: float) -> str:
    u = rng.random()
    return "tie" if u < tie else "bothbad" if u < tie + bothbad else "pair"


_VOTES = {"first": "leftvote", "second": "rightvote"}


def make_example(
    world: World, task: str, mode: str, index: int, split: str = "train", mix: DifficultyMix | None = None
) -> Example:
    """Example ``index`` of ``task`` x ``mode`` in ``split`` (``train`` or ``heldout``); deterministic.

    Raises:
        ValueError: unknown task, mode or split.
    """
    if (task, mode) not in COMBOS or split not in SPLITS:
        raise ValueError(f"unknown task/mode/split {task}/{mode}/{split}")
    mix = mix or DifficultyMix()
    combo = COMBOS.index((task, mode))
    key = (SPLITS[split], combo, index)
    rng = item_rng(world.seed, _STREAM_EXAMPLE, *key)
    ex_id = f"{SHORT[task]}-{SHORT[mode]}-{split}-{index:06d}"
    weights = mix.weights(task)
    tie, bothbad = (mix.tie_fraction, 0.0) if split == "train" else (mix.heldout_tie_fraction,
                                                                       mix.heldout_bothbad_fraction)  # fmt: skip
    if task in ("image_generation", "video_generation"):
        video = task == "video_generation"
        spec: Any = random_motion_spec(rng, world.change_probability) if video else random_scene_spec(rng)
        perturb = perturb_motion if video else perturb_scene
        render = world.clip if video else world.scene
        universe = MOTION_ATTRIBUTES if video else SCENE_ATTRIBUTES
        fields = {"prompt": spec.caption()}
        if mode == "pair_rank":
            kind = _pair_kind(rng, tie, bothbad)
            if kind == "tie":
                specs, verdict, vote = [spec, spec], "tie", "tievote"
            elif kind == "bothbad":
                first = _draw(rng, weights)
                second = _draw(rng, weights, exclude=[first]) if len(weights) > 1 else first
                specs = [perturb(spec, first, rng), perturb(spec, second, rng)]
                verdict, vote, kind = "tie", "bothbad_vote", f"bothbad:{first}+{second}"
            else:
                kind = _draw(rng, weights)
                specs = [spec, perturb(spec, kind, rng)]
                verdict = "first"
                if rng.random() < 0.5:
                    specs, verdict = specs[::-1], "second"
                vote = _VOTES[verdict]
            media = [render(s, *key, v) for v, s in enumerate(specs)]
            meta = {"specs": [s.to_dict() for s in specs], "caption_spec": spec.to_dict()}
            return Example(ex_id, task, mode, fields, media, [f"{ex_id}_{c}" for c in "ab"], verdict=verdict,
                           vote_type=vote, kind=kind, meta=meta)  # fmt: skip
        max_wrong = min(3 if video else 4, len(weights))  # only attributes the mix weights can be wrong
        k = int(rng.integers(0, max_wrong + 1))
        wrong = _draw_many(rng, weights, k, universe)
        shown = _perturb_many(spec, wrong, rng, perturb)
        score = (10 - 3 * k) if video else (5 - k)
        meta = {"spec": shown.to_dict(), "caption_spec": spec.to_dict(), "wrong": wrong}
        return Example(ex_id, task, mode, fields, [render(shown, *key, 0)], [f"{ex_id}_a"], score=float(score),
                       kind=f"k={k}", meta=meta)  # fmt: skip

    # understanding
    video = task == "video_understanding"
    spec = random_motion_spec(rng, world.change_probability) if video else random_scene_spec(rng)
    perturb = perturb_motion if video else perturb_scene
    question_of, answer_of = (video_question, video_answer) if video else (image_question, image_answer)
    universe = MOTION_ATTRIBUTES if video else SCENE_ATTRIBUTES
    qtype = _draw(rng, weights)
    question = question_of(spec, qtype)
    right = answer_of(spec, qtype)
    medium = (world.clip if video else world.scene)(spec, *key, 0)
    base_meta = {"spec": spec.to_dict(), "question_type": qtype, "right_answer": right}

    def wrong_answer(k: int) -> tuple[str, list[str], Any]:
        if qtype == "describe":
            attrs = _draw_many(rng, {n: w for n, w in weights.items() if n in universe}, k, universe)
            other = _perturb_many(spec, attrs, rng, perturb)
            return answer_of(other, "describe"), attrs, other
        attr = "end_color" if qtype == "end_color" else qtype
        for _ in range(50):  # the asked attribute's answer must change (e.g. the final colour for "end_color")
            other = perturb(spec, attr, rng)
            text = answer_of(other, qtype)
            if text != right:
                return text, [attr], other
        raise RuntimeError(f"no wrong answer for {spec} / {qtype}")  # pragma: no cover

    if mode == "pair_rank":
        wrong, attrs, other = wrong_answer(1)
        answers, specs, verdict = [right, wrong], [spec, other], "first"
        if rng.random() < 0.5:
            answers, specs, verdict = answers[::-1], specs[::-1], "second"
        fields = {"question": question, "answer1": answers[0], "answer2": answers[1]}
        meta = {**base_meta, "wrong_attributes": attrs, "answer_specs": [s.to_dict() for s in specs]}
        return Example(ex_id, task, mode, fields, [medium], [f"{ex_id}_a"], verdict=verdict, kind=qtype, meta=meta)
    n_attr = len(universe)
    if qtype == "describe":
        k = int(rng.integers(0, n_attr + 1))
        response, attrs, other = (right, [], spec) if k == 0 else wrong_answer(k)
        score = (100 - 100 * k / n_attr) if not video else (5 - k)
    else:
        k = int(rng.random() < 0.5)
        response, attrs, other = (right, [], spec) if k == 0 else wrong_answer(1)
        score = (100 - 100 * k) if not video else (5 - 4 * k)
    fields = {"question": question, "response": response}
    meta = {**base_meta, "wrong_attributes": attrs, "answer_specs": [other.to_dict()]}
    return Example(ex_id, task, mode, fields, [medium], [f"{ex_id}_a"], score=float(score), kind=f"{qtype}:k={k}",
                   meta=meta)  # fmt: skip


def caption_question(kind: str, which: int = 0) -> str:
    """The instruction of an auxiliary captioning record (``which``: the described medium of a pair, 0 or 1)."""
    medium = "video" if kind.startswith("video") else "image"
    return f"Describe {medium} {which + 1}." if kind.endswith("_pair") else f"Describe the {medium}."


def make_caption_example(world: World, kind: str, index: int, split: str = "train") -> Example:
    """Auxiliary captioning example ``index`` of ``kind`` (one of :data:`CAPTION_KINDS`); deterministic.

    ``fields`` holds ``question`` (e.g. ``Describe image 2.``) and ``answer`` (that medium's caption as a
    sentence); ``meta["which"]`` is the described medium.
    """
    if kind not in CAPTION_KINDS or split not in SPLITS:
        raise ValueError(f"unknown caption kind/split {kind}/{split}")
    key = (SPLITS[split], 100 + CAPTION_KINDS.index(kind), index)
    rng = item_rng(world.seed, _STREAM_CAPTION, *key)
    video = kind.startswith("video")
    count = 2 if kind.endswith("_pair") else 1
    specs = [
        random_motion_spec(rng, world.change_probability) if video else random_scene_spec(rng) for _ in range(count)
    ]
    which = int(rng.integers(count))
    media = [(world.clip if video else world.scene)(spec, *key, k) for k, spec in enumerate(specs)]
    ex_id = f"cap-{SHORT[kind]}-{split}-{index:06d}"
    fields = {"question": caption_question(kind, which), "answer": _sentence(specs[which].caption())}
    meta = {"specs": [spec.to_dict() for spec in specs], "which": which}
    names = [f"{ex_id}_{c}" for c in "ab"[:count]]
    return Example(ex_id, "captioning", kind, fields, media, names, kind="caption", meta=meta)


# ------------------------------------------------------------------------------------------------------------ media
def _write_medium(medium: Scene | Clip, path: Path) -> None:
    if isinstance(medium, Scene):
        medium.image.save(path, format="PNG", optimize=False, compress_level=1)
    else:
        write_clip(medium.frames, path)


def write_clip(frames: np.ndarray, path: str | Path, fps: int = VIDEO_FPS) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames as an H.264 mp4 (yuv420p, CRF 12, every frame a keyframe)."""
    from unifiedreward.testing.media import write_video

    return write_video(path, frames, fps, "libx264", codec_options={"crf": "12", "g": "1"})


def save_media(example: Example, folder: Path, relative_to: Path) -> list[str]:
    """Write an example's media into ``folder``; returns their paths relative to ``relative_to`` (POSIX)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".mp4" if example.is_video else ".png"
    paths = []
    for medium, name in zip(example.media, example.media_names, strict=True):
        path = folder / f"{name}{suffix}"
        _write_medium(medium, path)
        paths.append(path.relative_to(relative_to).as_posix())
    return paths


# -------------------------------------------------------------------------------------------------- training data
def training_record(example: Example, paths: Sequence[str], *, reasoning: bool = False) -> dict[str, Any]:
    """The released-format record of an example (LLaVA conversations; video pairs: messages + videos).

    Judging examples get the protocol's prompt and answer (with ``reasoning``: the element checklist of
    :func:`reasoning_text`, then the verdict or ``Final Score: N``); captioning examples their plain question and
    caption.
    """
    if example.task == "captioning":
        text, answer = example.fields["question"], example.fields["answer"]
    else:
        text = render_user_text(example.task, example.mode, example.fields)
        answer = answer_text(example.task, example.mode, verdict=example.verdict, score=example.score)
        if reasoning:
            answer = reasoning_text(example) + "\n" + answer
    if example.is_video and len(paths) > 1:
        return {
            "id": example.id,
            "messages": [
                {"role": "user", "content": "<video>" * len(paths) + text},
                {"role": "assistant", "content": answer},
            ],
            "videos": list(paths),
        }
    token = "<video>\n" if example.is_video else "<image>\n"
    record: dict[str, Any] = {"id": example.id}
    if example.is_video:
        record["video"] = paths[0]
    elif len(paths) == 1:
        record["image"] = paths[0]
    else:
        record["images"] = list(paths)
    record["conversations"] = [
        {"from": "human", "value": token * len(paths) + text},
        {"from": "gpt", "value": answer},
    ]
    return record


@dataclass
class TrainingData:
    """What :func:`write_training_data` wrote.

    Attributes:
        yaml_path: the mixture (``train_data.yaml``).
        files: ``(task, mode)`` -> the JSON file of that combination.
        counts: ``(task, mode)`` -> records written.
        media_folder: the folder media paths are relative to.
        captioning_yaml_path: a mixture of the captioning files only (``train_captioning.yaml``; for a first
            training stage that teaches a model trained from scratch to see), or ``None`` without captioning files.
    """

    yaml_path: Path
    files: dict[tuple[str, str], Path]
    counts: dict[tuple[str, str], int]
    media_folder: Path
    captioning_yaml_path: Path | None = None


def default_strategies(num: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], str]:
    """``random:75%`` (a seeded subset) for point-score files, ``all`` for the others."""
    return {combo: "random:75%" if combo[1] == "point_score" else "all" for combo in num}


def write_training_data(
    out_dir: str | Path,
    world: World,
    num: Mapping[tuple[str, str], int] | int,
    *,
    mix: DifficultyMix | None = None,
    strategies: Mapping[tuple[str, str], str] | None = None,
    reasoning: bool = False,
    progress: bool = False,
) -> TrainingData:
    """Generate the training records of every task x mode (and captioning set) and a ``train_data.yaml``.

    Layout: ``out_dir/media/<ig-pair|...>/<id>_<a|b>.png|mp4``, ``out_dir/<task>_<mode>.json``,
    ``out_dir/train_data.yaml`` (absolute paths, so it can be used from any working directory).

    Args:
        out_dir: output folder.
        world: the world.
        num: records per task x mode and per ``("captioning", kind)`` of :data:`AUX_COMBOS` (missing keys: none);
            one int: that many for every task x mode and no captioning.
        mix: the difficulty mix.
        strategies: ``sampling_strategy`` per task x mode (default :func:`default_strategies`).
        reasoning: answers start with the element checklist (:func:`reasoning_text`) before the verdict / score.
        progress: show a progress bar.
    """
    out = Path(out_dir).resolve()
    media = out / "media"
    counts = dict.fromkeys(COMBOS, num) if isinstance(num, int) else dict(num)
    strategies = dict(strategies or default_strategies(counts))
    files: dict[tuple[str, str], Path] = {}
    bar = _progress(sum(counts.values()), "training data", progress)
    for task, mode in COMBOS + AUX_COMBOS:
        n = counts.get((task, mode), 0)
        if n <= 0:
            continue
        folder = media / f"{SHORT[task]}-{SHORT[mode]}"
        records = []
        for index in range(n):
            if task == "captioning":
                example = make_caption_example(world, mode, index, "train")
            else:
                example = make_example(world, task, mode, index, "train", mix)
            records.append(training_record(example, save_media(example, folder, media), reasoning=reasoning))
            bar.update(1)
        path = out / f"{task}_{mode}.json"
        path.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        files[(task, mode)] = path
    bar.close()
    header = [
        "# Synthetic-world SFT mixture (unifiedreward.synth), read by unifiedreward.data.load_mixture.",
        "# Same format as dataset/train_data.yaml; paths are absolute. Records: the released LLaVA format",
        "# (video-generation pairs: messages + videos), prompts rendered by unifiedreward.protocol;",
        "# captioning_*.json: auxiliary plain captioning records (no judging template).",
    ]
    yaml_path = out / "train_data.yaml"
    _write_mixture(yaml_path, header, files, strategies, media)
    captioning = {combo: path for combo, path in files.items() if combo[0] == "captioning"}
    captioning_yaml = out / "train_captioning.yaml" if captioning else None
    if captioning_yaml is not None:
        _write_mixture(captioning_yaml, [*header[:2], "# The captioning files only (a first training stage)."],
                       captioning, strategies, media)  # fmt: skip
    return TrainingData(yaml_path, files, {c: counts[c] for c in files}, media, captioning_yaml)


def _write_mixture(path: Path, header: Sequence[str], files: Mapping[tuple[str, str], Path],
                   strategies: Mapping[tuple[str, str], str], media: Path) -> None:  # fmt: skip
    lines = [*header, "datasets:"]
    for combo, file in files.items():
        lines += [
            f"  - json_path: {file}",
            f"    sampling_strategy: {strategies.get(combo, 'all')}",
            f"    image_folder: {media}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- held-out data
@dataclass
class HeldoutData:
    """What :func:`write_heldout` wrote (paths of each benchmark file; media are beside them)."""

    genai_bench_image: Path | None = None
    genai_bench_video: Path | None = None
    videogen_rewardbench: Path | None = None
    vl_rewardbench: Path | None = None
    video_understanding: Path | None = None
    point_score: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)


_VLRB_PREFIX = {  # question type -> an id prefix of the official VL-RewardBench category it resembles most
    "color": "RLAIF-V-synth",
    "shape": "RLAIF-V-synth",
    "describe": "hallucination_pair-synth",
    "count": "mathverse-synth",
    "position": "wildvision-synth",
}


def _vlrb_row(example: Example, path: str, media_key: str) -> dict[str, Any]:
    first, second = example.fields["answer1"], example.fields["answer2"]
    right, wrong = (first, second) if example.verdict == "first" else (second, first)
    ranking = [0, 1] if example.verdict == "first" else [1, 0]
    prefix = _VLRB_PREFIX.get(example.kind, "synth") if media_key == "image_path" else "synth-video"
    return {
        "id": f"{prefix}-{example.id}",
        "query": example.fields["question"],
        "response": [first, second],
        media_key: path,
        "human_ranking": ranking,
        "models": ["synth-truth" if a == right else f"synth-wrong-{example.kind}" for a in (first, second)],
        "judge": "synthetic ground truth",
        "rationale": f"{right!r} is true of the {'clip' if media_key == 'video' else 'image'}; {wrong!r} gets the "
        f"{'/'.join(example.meta.get('wrong_attributes', []))} wrong.",
        "query_source": f"synth-{example.kind}",
        "ground_truth": right,
        "meta": {"question_type": example.kind, "spec": example.meta.get("spec")},
    }


def write_heldout(
    out_dir: str | Path,
    world: World,
    num: Mapping[str, int] | int,
    *,
    mix: DifficultyMix | None = None,
    progress: bool = False,
) -> HeldoutData:
    """Write the held-out benchmark files (split ``heldout``: draws disjoint from the training split's).

    Layout under ``out_dir``::

        genai_bench_image/test_v1.jsonl + images/       GenAI-Bench image_generation rows (paths)
        video_generation/test_v1.jsonl + videos/        GenAI-Bench video_generation rows
        video_generation/videogen-rewardbench.csv       the same pairs as VideoGen-RewardBench rows
        vl_rewardbench/data.jsonl + images/             VL-RewardBench GitHub data.jsonl rows
        video_understanding/data.jsonl + videos/        VL-RewardBench-style rows with a "video" path
        point_score/requests.jsonl + media/             unifiedreward judge requests, true score in meta

    Args:
        num: items per benchmark key (``genai_bench_image``, ``genai_bench_video``, ``vl_rewardbench``,
            ``video_understanding``, ``point_score`` per task) or one int for all.
    """
    out = Path(out_dir).resolve()
    keys = ("genai_bench_image", "genai_bench_video", "vl_rewardbench", "video_understanding", "point_score")
    counts = dict.fromkeys(keys, num) if isinstance(num, int) else {k: int(num.get(k, 0)) for k in keys}
    total = sum(counts[k] * (4 if k == "point_score" else 1) for k in keys)
    bar = _progress(total, "held-out data", progress)
    result = HeldoutData(counts=dict(counts))

    def examples(task: str, mode: str, n: int) -> Iterator[Example]:
        for index in range(n):
            yield make_example(world, task, mode, index, "heldout", mix)
            bar.update(1)

    # GenAI-Bench image
    if counts["genai_bench_image"]:
        folder = out / "genai_bench_image"
        rows = []
        for ex in examples("image_generation", "pair_rank", counts["genai_bench_image"]):
            left, right = save_media(ex, folder / "images", folder)
            models = _model_names(ex)
            rows.append({"id": ex.id, "prompt": ex.fields["prompt"], "left_model": models[0], "left_image": left,
                         "right_model": models[1], "right_image": right, "vote_type": ex.vote_type})  # fmt: skip
        result.genai_bench_image = _write_jsonl(folder / "test_v1.jsonl", rows)

    # GenAI-Bench video + VideoGen-RewardBench (the same pairs)
    if counts["genai_bench_video"]:
        folder = out / "video_generation"
        rows, csv_rows = [], []
        for ex in examples("video_generation", "pair_rank", counts["genai_bench_video"]):
            left, right = save_media(ex, folder / "videos", folder)
            models = _model_names(ex)
            rows.append({"id": ex.id, "prompt": ex.fields["prompt"], "left_model": models[0], "left_video": left,
                         "right_model": models[1], "right_video": right, "vote_type": ex.vote_type})  # fmt: skip
            overall = {"first": "A", "second": "B", "tie": "same"}[ex.verdict or "tie"]
            motion = overall if ex.kind == "direction" else "same"
            frames = len(ex.media[0].frames)  # type: ignore[union-attr]
            csv_rows.append({"id": ex.id, "path_A": left, "path_B": right, "A_model": models[0],
                             "B_model": models[1], "prompt": ex.fields["prompt"], "VQ": "same", "MQ": motion,
                             "TA": overall, "Overall": overall, "fps_A": VIDEO_FPS, "num_frames_A": frames,
                             "fps_B": VIDEO_FPS, "num_frames_B": frames})  # fmt: skip
        result.genai_bench_video = _write_jsonl(folder / "test_v1.jsonl", rows)
        csv_path = folder / "videogen-rewardbench.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(csv_rows[0]))
            writer.writeheader()
            writer.writerows(csv_rows)
        result.videogen_rewardbench = csv_path

    if counts["vl_rewardbench"]:
        folder = out / "vl_rewardbench"
        rows = []
        for ex in examples("image_understanding", "pair_rank", counts["vl_rewardbench"]):
            (path,) = save_media(ex, folder / "images", folder)
            rows.append(_vlrb_row(ex, path, "image_path"))
        result.vl_rewardbench = _write_jsonl(folder / "data.jsonl", rows)

    if counts["video_understanding"]:
        folder = out / "video_understanding"
        rows = []
        for ex in examples("video_understanding", "pair_rank", counts["video_understanding"]):
            (path,) = save_media(ex, folder / "videos", folder)
            rows.append(_vlrb_row(ex, path, "video"))
        result.video_understanding = _write_jsonl(folder / "data.jsonl", rows)

    if counts["point_score"]:
        folder = out / "point_score"
        rows = []
        for task in TASKS:
            for ex in examples(task, "point_score", counts["point_score"]):
                paths = save_media(ex, folder / "media", folder)
                row: dict[str, Any] = {"id": ex.id, "task": task, "mode": "point_score"}
                row["videos" if ex.is_video else "images"] = paths
                row.update(ex.fields)
                row["meta"] = {"truth": ex.score, "score_range": list(score_range(task)), "kind": ex.kind}
                rows.append(row)
        result.point_score = _write_jsonl(folder / "requests.jsonl", rows)
    bar.close()
    return result


def _model_names(example: Example) -> list[str]:
    caption = example.meta["caption_spec"]
    names = []
    for spec in example.meta["specs"]:
        wrong = [k for k, v in spec.items() if caption.get(k) != v]
        names.append("synth-match" if not wrong else "synth-wrong-" + "-".join(wrong))
    return names


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, dynamic_ncols=True)


# ------------------------------------------------------------------------------------ video-understanding benchmark
def _video_items(table: Any) -> list[Any]:
    from unifiedreward.eval.runner import DataError, Item

    items = []
    for index, row in enumerate(table.rows()):
        item_id = row.get("id")
        responses = row.get("response")
        ranking = [int(x) for x in row.get("human_ranking") or []]
        if not item_id or not isinstance(responses, list) or len(responses) != 2 or not row.get("video"):
            raise DataError(f"{table.source}: row {index}: needs id, two responses and a video")
        if ranking not in ([0, 1], [1, 0]):
            raise DataError(f"{table.source}: row {index}: human_ranking {ranking!r} is not [0, 1] or [1, 0]")
        gold = "first" if ranking == [0, 1] else "second"
        fields = {"question": row.get("query", ""), "answer1": responses[0], "answer2": responses[1]}
        items.append(Item(str(item_id), gold, gold, fields, (row["video"],), category=None,
                          labels={"human_ranking": ranking}))  # fmt: skip
    return items


def video_understanding_benchmark() -> Any:
    """A :class:`~unifiedreward.eval.runner.Benchmark` for the VL-RewardBench-style video-understanding file.

    There is no public video pair-rank benchmark format in the evaluation runner, so this one reuses VL-RewardBench's
    row format (``id, query, response, human_ranking``) with a ``video`` path, and its metric set (overall
    accuracy; the categories follow the id prefix, all "general" here). Pass it to
    :func:`unifiedreward.eval.runner.run_benchmark`.
    """
    from unifiedreward.eval.runner import Benchmark

    return Benchmark(
        name="synth_video_understanding",
        title="Synthetic video understanding (VL-RewardBench-style rows with a video)",
        task="video_understanding",
        media_kind="video",
        metric_set="vl_rewardbench",
        default_split=None,
        candidates=("response[0]", "response[1]"),
        build_items=_video_items,
        notes=("Synthetic world (unifiedreward.synth); categories are not meaningful: read the overall accuracy.",),
        source="unifiedreward.synth.data.write_heldout",
    )
