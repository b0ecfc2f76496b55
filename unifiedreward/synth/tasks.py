"""The synthetic world's judging tasks, their ground-truth example type and the difficulty mix.

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
candidate's position is a fair coin. Examples are drawn by :mod:`unifiedreward.synth.examples`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unifiedreward.synth.world import MOTION_ATTRIBUTES, SCENE_ATTRIBUTES, Clip, Scene

__all__ = [
    "AUX_COMBOS",
    "CAPTION_KINDS",
    "COMBOS",
    "DIFFICULTY_PRESETS",
    "FAMILY",
    "IMAGE_QUESTIONS",
    "MODES",
    "SHORT",
    "SPLITS",
    "TASKS",
    "VERSION",
    "VIDEO_QUESTIONS",
    "DifficultyMix",
    "Example",
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
#: The protocol family and version every prompt and answer is rendered in.
FAMILY = "qwen"
VERSION = "1.0"

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

