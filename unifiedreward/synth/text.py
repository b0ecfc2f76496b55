"""The world's text: questions and answers, the protocol's prompts and answers, and explained answers' checklists.

Every prompt is rendered by :func:`unifiedreward.protocol.render_prompt` (the upstream template of each task and
mode, Qwen form, version ``1.0``) and every answer is the template's own answer sentence (pair rank: e.g.
``Image 1 is better.``; point score: ``Final Score: N``), so the model trains on exactly what the judge asks and
scores. :func:`world_text` lists every string the world can produce (the tokenizer's training text).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from unifiedreward.synth.tasks import (
    CAPTION_KINDS,
    FAMILY,
    IMAGE_QUESTIONS,
    VERSION,
    VIDEO_QUESTIONS,
    Example,
)
from unifiedreward.synth.world import COLORS, COUNT_WORDS, DIRECTIONS, POSITIONS, SHAPES, MotionSpec, SceneSpec

__all__ = [
    "answer_text",
    "caption_question",
    "image_answer",
    "image_question",
    "reasoning_text",
    "render_user_text",
    "score_range",
    "sentence",
    "video_answer",
    "video_question",
    "world_text",
]


def sentence(text: str) -> str:
    """``text`` as a sentence: capitalised, with a full stop."""
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
        "describe": sentence(spec.caption()),
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
        "describe": sentence(spec.caption()),
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



def caption_question(kind: str, which: int = 0) -> str:
    """The instruction of an auxiliary captioning record (``which``: the described medium of a pair, 0 or 1)."""
    medium = "video" if kind.startswith("video") else "image"
    return f"Describe {medium} {which + 1}." if kind.endswith("_pair") else f"Describe the {medium}."

