"""Drawing the world's judging and captioning examples with their ground truth (deterministic per index).

Example ``i`` of a task, mode and split is drawn from ``item_rng(seed, stream, split, combo, i)`` and rendered with
nuisances keyed the same way, so it never depends on how many other examples were drawn. The tasks, their truth
and :class:`~unifiedreward.synth.tasks.DifficultyMix` are described in :mod:`unifiedreward.synth.tasks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from unifiedreward.synth.tasks import CAPTION_KINDS, COMBOS, SHORT, SPLITS, DifficultyMix, Example
from unifiedreward.synth.text import (
    caption_question,
    image_answer,
    image_question,
    sentence,
    video_answer,
    video_question,
)
from unifiedreward.synth.world import (
    MOTION_ATTRIBUTES,
    SCENE_ATTRIBUTES,
    World,
    item_rng,
    perturb_motion,
    perturb_scene,
    random_motion_spec,
    random_scene_spec,
)

__all__ = ["make_caption_example", "make_example"]

_STREAM_EXAMPLE = 10
_STREAM_CAPTION = 11


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
    fields = {"question": caption_question(kind, which), "answer": sentence(specs[which].caption())}
    meta = {"specs": [spec.to_dict() for spec in specs], "which": which}
    names = [f"{ex_id}_{c}" for c in "ab"[:count]]
    return Example(ex_id, "captioning", kind, fields, media, names, kind="caption", meta=meta)

