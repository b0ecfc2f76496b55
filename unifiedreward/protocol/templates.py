"""The UnifiedReward prompt templates and what each one expects back.

The template *texts* live in ``templates.json`` beside this module, copied byte for byte from the upstream repository
(via the protocol reference, §1; see ``scripts/dev/extract_templates.py``). The released checkpoints were trained on
these exact strings, so nothing here edits them: ``tests/test_protocol_templates.py`` pins every one by SHA-256.

This module adds the *metadata* the rest of the package needs: which task and mode a template serves, which fields
it takes, how media are placed for each model family, and which answer format (:class:`AnswerFormat`) the parsers
should expect. :func:`select_template` maps ``(task, mode, family, version)`` to the template upstream uses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from importlib import resources

from unifiedreward.errors import TemplateError


class Task(str, Enum):
    """What is being judged."""

    IMAGE_GENERATION = "image_generation"
    IMAGE_UNDERSTANDING = "image_understanding"
    VIDEO_GENERATION = "video_generation"
    VIDEO_UNDERSTANDING = "video_understanding"
    IMAGE_EDITING = "image_editing"
    QA_GRADING = "qa_grading"


class Mode(str, Enum):
    """How it is judged: a verdict between two candidates, a score for one, or relative scores for two."""

    PAIR_RANK = "pair_rank"
    POINT_SCORE = "point_score"
    PAIR_SCORE = "pair_score"
    SYSTEM = "system"


class Verdict(str, Enum):
    """A pairwise decision. ``FIRST``/``SECOND`` refer to the order in which candidates were shown."""

    FIRST = "first"
    SECOND = "second"
    TIE = "tie"


class AnswerKind(str, Enum):
    """Which parser reads a template's answers."""

    VERDICT = "verdict"  # free text whose conclusion is one of a few verdict sentences
    THINK_VERDICT = "think_verdict"  # <think>...</think><answer>X 1 is better</answer>
    FINAL_SCORE = "final_score"  # ... Final Score: N
    DIMENSION_SCORES = "dimension_scores"  # "Alignment Score (1-5): X" lines (2.0 / v1.5)
    PAIR_SCORES = "pair_scores"  # 2.0 relative scores: per dimension, Image 1: x / Image 2: y
    EDIT_SCORES = "edit_scores"  # {"reasoning": ..., "score": [a, b]}
    EDIT_PAIR_SCORES = "edit_pair_scores"  # Image 1: x, Image 2: y (may be negative)
    FLEX = "flex"  # JSON object with "winner"
    GPT_JUDGE = "gpt_judge"  # {'pred': 'yes', 'score': 4}
    NONE = "none"


@dataclass(frozen=True)
class AnswerFormat:
    """What a template asks the model to answer.

    Attributes:
        kind: which parser applies.
        subject: the noun the verdict sentences use (``"Image"``, ``"Video"``, ``"Answer"``, ``"Response"``).
        tie_allowed: whether the template offers a tie; if not, a tie answer is invalid.
        candidates: the exact answer sentences the prompt asks for, per verdict (used to score answers directly
            from logits).
        score_range: inclusive ``(low, high)`` of a score; parsed scores outside it are invalid.
        dimensions: names of the scored dimensions, in the order the prompt lists them.
        dimension_range: inclusive range of each dimension score.
        verdict_marker: a phrase after which the verdict must appear (``"Overall Judgment"``), if the prompt fixes one.
    """

    kind: AnswerKind
    subject: str = ""
    tie_allowed: bool = True
    candidates: dict[Verdict, str] = field(default_factory=dict)
    score_range: tuple[float, float] | None = None
    dimensions: tuple[str, ...] = ()
    dimension_range: tuple[float, float] | None = None
    verdict_marker: str | None = None


@dataclass(frozen=True)
class TemplateSpec:
    """One upstream prompt template.

    Attributes:
        id: the reference's template id, e.g. ``"T-IG-PAIR-QWEN"``.
        task, mode: what the template judges.
        version: model generation it belongs to: ``"1.0"``, ``"1.5"``, ``"2.0"``, ``"think"``, ``"think-qwen3"``,
            ``"edit"``, ``"flex"`` or ``"pipeline"`` (used only by upstream's data pipelines).
        families: model families the text was written for (``"qwen"`` content parts, ``"llava"`` image tokens).
        media: the visual inputs, in order: ``"image"``, ``"video"`` or ``"image"`` repeated, e.g.
            ``("image", "image")`` for an image pair; ``()`` for text only.
        fields: placeholder names used in the text (upstream spelling, e.g. ``Query``, ``R1``).
        answer: what the model is asked to answer.
        source: the upstream file the text comes from.
    """

    id: str
    task: Task
    mode: Mode
    version: str
    families: tuple[str, ...]
    media: tuple[str, ...]
    fields: tuple[str, ...]
    answer: AnswerFormat
    source: str

    @property
    def text(self) -> str:
        """The exact upstream text, with ``{placeholders}`` unfilled."""
        return raw_templates()[self.id]

    @property
    def inline_image_tokens(self) -> int:
        """How many ``<image>`` tokens the LLaVA text itself carries at its start (0: prefix added per frame)."""
        match = _INLINE_PREFIX.match(self.text)
        return match.group(0).count("<image>") if match else 0


# A leading run of "<image>\n" tokens (upstream writes image pairs as "<image>\n <image>\n").
_INLINE_PREFIX = re.compile(r"^(?: ?<image>\n)+")


@cache
def raw_templates() -> dict[str, str]:
    """All template texts keyed by id, exactly as upstream wrote them."""
    data = resources.files("unifiedreward.protocol").joinpath("templates.json").read_text(encoding="utf-8")
    return json.loads(data)


def _verdicts(subject: str, first: str, second: str, tie: str | None = None) -> dict[Verdict, str]:
    out = {Verdict.FIRST: first, Verdict.SECOND: second}
    if tie is not None:
        out[Verdict.TIE] = tie
    return out


_IG, _IU, _VG, _VU = Task.IMAGE_GENERATION, Task.IMAGE_UNDERSTANDING, Task.VIDEO_GENERATION, Task.VIDEO_UNDERSTANDING
_PR, _PS, _PAIRS = Mode.PAIR_RANK, Mode.POINT_SCORE, Mode.PAIR_SCORE
_BOTH, _QWEN, _LLAVA = ("qwen", "llava"), ("qwen",), ("llava",)
_PAIR_FIELDS = ("Query", "R1", "R2")

_LLAVA_IMG = AnswerFormat(
    AnswerKind.VERDICT,
    "Image",
    candidates=_verdicts(
        "Image", "Image 1 is better than Image 2.", "Image 2 is better than Image 1.", "Both images are equally good."
    ),
)
_QWEN_IMG = AnswerFormat(
    AnswerKind.VERDICT,
    "Image",
    candidates=_verdicts("Image", "Image 1 is better.", "Image 2 is better.", "Both images are equally good."),
)
_LLAVA_VID = AnswerFormat(
    AnswerKind.VERDICT,
    "Video",
    candidates=_verdicts(
        "Video", "Video 1 is better than Video 2.", "Video 2 is better than Video 1.", "Both videos are equally good."
    ),
)
_QWEN_VID = AnswerFormat(
    AnswerKind.VERDICT,
    "Video",
    candidates=_verdicts("Video", "Video 1 is better,", "Video 2 is better,", "Both videos are equally good."),
)
_ANSWER_NO_TIE = AnswerFormat(
    AnswerKind.VERDICT,
    "Answer",
    tie_allowed=False,
    candidates=_verdicts("Answer", "Answer 1 is better", "Answer 2 is better"),
)
_OVERALL = AnswerFormat(
    AnswerKind.VERDICT,
    "Answer",
    tie_allowed=False,
    verdict_marker="Overall Judgment",
    candidates=_verdicts(
        "Answer",
        "Overall Judgment: Answer 1 is better than Answer 2.",
        "Overall Judgment: Answer 2 is better than Answer 1.",
    ),
)
_RESPONSE_FREE = AnswerFormat(AnswerKind.VERDICT, "Response", tie_allowed=False)


def _think(subject: str) -> AnswerFormat:
    return AnswerFormat(
        AnswerKind.THINK_VERDICT,
        subject,
        tie_allowed=False,
        candidates=_verdicts(subject, f"<answer>{subject} 1 is better</answer>", f"<answer>{subject} 2 is better</answer>"),
    )


def _final(low: float, high: float, dims: tuple[str, ...] = (), dim_range: tuple[float, float] | None = None):
    return AnswerFormat(AnswerKind.FINAL_SCORE, score_range=(low, high), dimensions=dims, dimension_range=dim_range)


_ACS = ("Alignment Score", "Coherence Score", "Style Score")
_APS = ("Alignment Score", "Physics Score", "Style Score")
_VG_DIMS = (
    "visual quality",
    "temporal consistency",
    "dynamic degree",
    "text-to-video alignment",
    "factual consistency",
)


def _spec(tid, task, mode, version, families, media, fields, answer, source) -> TemplateSpec:
    return TemplateSpec(tid, task, mode, version, families, tuple(media), tuple(fields), answer, source)


_II, _I, _VV, _V = ("image", "image"), ("image",), ("video", "video"), ("video",)
_SPECS: tuple[TemplateSpec, ...] = (
    # --- 1.0, image generation
    _spec("T-IG-PAIR-LLAVA", _IG, _PR, "1.0", _LLAVA, _II, ["prompt"], _LLAVA_IMG,
          "inference_llava/image_generation/pair_rank_image_generation.py"),
    _spec("T-IG-PAIR-QWEN", _IG, _PR, "1.0", _QWEN, _II, ["prompt"], _QWEN_IMG,
          "inference_qwen/image_generation/qwen_pair_rank_image_generation.py"),
    _spec("T-IG-POINT", _IG, _PS, "1.0", _BOTH, _I, ["prompt"], _final(1, 5),
          "inference_{llava,qwen}/image_generation/*point_score_image_generation.py"),
    _spec("T-IG-POINT-ACS-V15", _IG, _PS, "1.5", _BOTH, _I, ["prompt"],
          AnswerFormat(AnswerKind.DIMENSION_SCORES, dimensions=_ACS, dimension_range=(1, 5)),
          "inference_{llava,qwen}/image_generation/*point_score_ACS_image_generation.py"),
    # --- 1.0, image understanding
    _spec("T-IU-PAIR-LLAVA", _IU, _PR, "1.0", _LLAVA, _I, _PAIR_FIELDS, _RESPONSE_FREE,
          "inference_llava/image_understanding/pair_rank_image_understanding.py"),
    _spec("T-IU-PAIR-QWEN", _IU, _PR, "1.0", _BOTH, _I, _PAIR_FIELDS, _ANSWER_NO_TIE,
          "inference_qwen/image_understanding/qwen_pair_rank_image_understanding.py"),
    _spec("T-IU-POINT-LLAVA", _IU, _PS, "1.0", _LLAVA, _I, ["Query", "Response"], _final(0, 100),
          "inference_llava/image_understanding/point_score_image_understanding.py"),
    _spec("T-IU-POINT-QWEN", _IU, _PS, "1.0", _QWEN, _I, ["Query", "Response"], _final(0, 100),
          "inference_qwen/image_understanding/qwen_point_score_image_understanding.py"),
    # --- 1.0, video generation
    _spec("T-VG-PAIR-LLAVA", _VG, _PR, "1.0", _LLAVA, _VV, ["prompt"], _LLAVA_VID,
          "inference_llava/video_generation/pair_rank_video_generation.py"),
    _spec("T-VG-PAIR-QWEN", _VG, _PR, "1.0", _BOTH, _VV, ["prompt"], _QWEN_VID,
          "inference_qwen/video_generation/qwen_pair_rank_video_generation.py"),
    _spec("T-VG-POINT", _VG, _PS, "1.0", _BOTH, _V, ["prompt"], _final(1, 10, _VG_DIMS, (1, 4)),
          "inference_{llava,qwen}/video_generation/*point_score_video_generation.py"),
    # --- 1.0, video understanding
    _spec("T-VU-PAIR", _VU, _PR, "1.0", _BOTH, _V, _PAIR_FIELDS, _OVERALL,
          "inference_qwen/video_understanding/qwen_pair_rank_video_understanding.py"),
    _spec("T-VU-PAIR-LLAVA-HEAD", _VU, _PR, "1.0", _LLAVA, _V, _PAIR_FIELDS, _RESPONSE_FREE,
          "inference_llava/video_understanding/pair_rank_video_understanding.py"),
    _spec("T-VU-POINT", _VU, _PS, "1.0", _BOTH, _V, ["Query", "Response"], _final(1, 5),
          "inference_{llava,qwen}/video_understanding/*point_score_video_understanding.py"),
    # --- 2.0 (served by vLLM upstream; videos are sent as frames)
    _spec("T-V2-PAIRSCORE-IMG", _IG, _PAIRS, "2.0", _QWEN, _II, ["prompt"],
          AnswerFormat(AnswerKind.PAIR_SCORES, "Image", dimensions=_ACS, dimension_range=(0, 1)),
          "inference_qwen/UnifiedReward-2.0-inference/pair_score_image_generation.py"),
    _spec("T-V2-PAIRSCORE-VID", _VG, _PAIRS, "2.0", _QWEN, _VV, ["prompt"],
          AnswerFormat(AnswerKind.PAIR_SCORES, "Video", dimensions=_ACS, dimension_range=(0, 1)),
          "inference_qwen/UnifiedReward-2.0-inference/pair_score_video_generation.py"),
    _spec("T-V2-POINT-ACS", _IG, _PS, "2.0", _QWEN, _I, ["prompt"],
          AnswerFormat(AnswerKind.DIMENSION_SCORES, dimensions=_ACS, dimension_range=(1, 5)),
          "inference_qwen/UnifiedReward-2.0-inference/point_score_ACS_image_generation.py"),
    _spec("T-V2-POINT-APS", _VG, _PS, "2.0", _QWEN, _V, ["prompt"],
          AnswerFormat(AnswerKind.DIMENSION_SCORES, dimensions=_APS, dimension_range=(1, 5)),
          "inference_qwen/UnifiedReward-2.0-inference/point_score_APS_video_generation.py"),
    # --- Think (CoT), LLaVA / Qwen2.5-VL
    _spec("T-THINK-IG", _IG, _PR, "think", _BOTH, _II, ["prompt"], _think("Image"),
          "UnifiedReward-Think/inference_*/image_generation/*infer_cot_image_generation.py"),
    _spec("T-THINK-IU", _IU, _PR, "think", _BOTH, _I, _PAIR_FIELDS, _think("Answer"),
          "UnifiedReward-Think/inference_*/image_understanding/*infer_cot_image_understanding.py"),
    _spec("T-THINK-VG", _VG, _PR, "think", _BOTH, _VV, ["prompt"], _think("Video"),
          "UnifiedReward-Think/inference_*/video_generation/*infer_cot_video_generation.py"),
    _spec("T-THINK-VU", _VU, _PR, "think", _BOTH, _V, _PAIR_FIELDS, _think("Answer"),
          "UnifiedReward-Think/inference_*/video_understanding/*infer_cot_video_understanding.py"),
    # --- Think, Qwen3-VL / Qwen3.5 (vLLM)
    _spec("T-THINK3-IG", _IG, _PR, "think-qwen3", _QWEN, _II, ["prompt"], _think("Image"),
          "UnifiedReward-Think-qwen3-inference/qwen3_infer_cot_image_generation.py"),
    _spec("T-THINK3-IU", _IU, _PR, "think-qwen3", _QWEN, _I, _PAIR_FIELDS, _think("Answer"),
          "UnifiedReward-Think-qwen3-inference/qwen3_infer_cot_image_understanding.py"),
    _spec("T-THINK3-VG", _VG, _PR, "think-qwen3", _QWEN, _VV, ["prompt"], _think("Video"),
          "UnifiedReward-Think-qwen3-inference/qwen3_infer_cot_video_generation.py"),
    _spec("T-THINK3-VU", _VU, _PR, "think-qwen3", _QWEN, _V, _PAIR_FIELDS, _think("Answer"),
          "UnifiedReward-Think-qwen3-inference/qwen3_infer_cot_video_understanding.py"),
    _spec("T-GRPO-SYSTEM", _IG, Mode.SYSTEM, "think", _BOTH, (), (), AnswerFormat(AnswerKind.NONE),
          "UnifiedReward-Think/src/open_r1/grpo.py (defined, unused upstream)"),
    # --- Edit (vLLM)
    _spec("T-EDIT-PAIRRANK", Task.IMAGE_EDITING, _PR, "edit", _QWEN, ("image", "image", "image"), ["instruction"],
          AnswerFormat(AnswerKind.VERDICT, "Image", tie_allowed=False), "UnifiedReward-Edit/edit_pairwise_rank.py"),
    _spec("T-EDIT-PAIRSCORE", Task.IMAGE_EDITING, _PAIRS, "edit", _QWEN, ("image", "image", "image"), ["instruction"],
          AnswerFormat(AnswerKind.EDIT_PAIR_SCORES, "Image"), "UnifiedReward-Edit/edit_paiwise_score.py"),
    _spec("T-EDIT-POINT-IF", Task.IMAGE_EDITING, _PS, "edit", _QWEN, _II, ["instruction"],
          AnswerFormat(AnswerKind.EDIT_SCORES, dimensions=("editing_success", "overediting"), dimension_range=(0, 25)),
          "UnifiedReward-Edit/edit_pointwise_instruction_following.py"),
    _spec("T-EDIT-POINT-Q", Task.IMAGE_EDITING, _PS, "edit", _QWEN, _I, (),
          AnswerFormat(AnswerKind.EDIT_SCORES, dimensions=("naturalness", "artifacts"), dimension_range=(0, 25)),
          "UnifiedReward-Edit/edit_pointwise_quality.py"),
    # --- Flex (vLLM)
    _spec("T-FLEX-IMG", _IG, _PR, "flex", _QWEN, _II, ["prompt"], AnswerFormat(AnswerKind.FLEX, "Image", False),
          "UnifiedReward-Flex/flex_pair_rank_image_generation.py"),
    _spec("T-FLEX-VID", _VG, _PR, "flex", _QWEN, _VV, ["prompt"], AnswerFormat(AnswerKind.FLEX, "Video", False),
          "UnifiedReward-Flex/flex_pair_rank_video_generation.py"),
    # --- used by upstream pipelines only
    _spec("T-PREF-IU-PAIR", _IU, _PR, "pipeline", _LLAVA, _I, _PAIR_FIELDS,
          AnswerFormat(AnswerKind.VERDICT, "Answer", tie_allowed=False, verdict_marker="Overall Judgment"),
          "preference_data_construction/image_understanding/infer+sift.py"),
    _spec("T-PREF-VU-PAIR", _VU, _PR, "pipeline", _LLAVA, _V, _PAIR_FIELDS, _OVERALL,
          "preference_data_construction/video_understanding/infer+sift.py"),
    _spec("T-IG-POINT-10", _IG, _PS, "pipeline", _LLAVA, _I, ["prompt"], _final(1, 10),
          "DiffusionDPO/sift_dpo_data.py"),
    _spec("T-VG-PAIR-VDPO", _VG, _PR, "pipeline", _LLAVA, _VV, ["prompt"], _LLAVA_VID, "VideoDPO/sift_dpo_data.py"),
    _spec("T-VG-POINT-VDPO", _VG, _PS, "pipeline", _LLAVA, _V, ["prompt"], _final(1, 10),
          "VideoDPO/sift_dpo_data.py"),
    _spec("T-IG-POINT-SGLANG", _IG, _PS, "pipeline", _LLAVA, _I, ["prompt"], _final(1, 5),
          "sglang_llava/sglang_inference.py"),
    _spec("T-GPT-JUDGE-SYSTEM", Task.QA_GRADING, Mode.SYSTEM, "pipeline", _QWEN, (), (),
          AnswerFormat(AnswerKind.NONE), "benchmark_evaluation/DPO_eval/eval_gpt.py"),
    _spec("T-GPT-JUDGE-USER", Task.QA_GRADING, _PS, "pipeline", _QWEN, (), ["question", "answer", "pred"],
          AnswerFormat(AnswerKind.GPT_JUDGE, score_range=(0, 5)), "benchmark_evaluation/DPO_eval/eval_gpt.py"),
)  # fmt: skip

TEMPLATES: dict[str, TemplateSpec] = {spec.id: spec for spec in _SPECS}

# (task, mode, version) -> {family: template id}. "1.0" follows the upstream inference scripts of each family.
# Image-understanding pair rank on LLaVA uses the Qwen text behind "<image>\n", as upstream's LLaVA VL-RewardBench
# scripts do: the LLaVA inference prompt (T-IU-PAIR-LLAVA) names no answer format, so its answers cannot be scored.
_DEFAULTS: dict[tuple[Task, Mode, str], dict[str, str]] = {
    (_IG, _PR, "1.0"): {"qwen": "T-IG-PAIR-QWEN", "llava": "T-IG-PAIR-LLAVA"},
    (_IG, _PS, "1.0"): {"qwen": "T-IG-POINT", "llava": "T-IG-POINT"},
    (_IU, _PR, "1.0"): {"qwen": "T-IU-PAIR-QWEN", "llava": "T-IU-PAIR-QWEN"},
    (_IU, _PS, "1.0"): {"qwen": "T-IU-POINT-QWEN", "llava": "T-IU-POINT-LLAVA"},
    (_VG, _PR, "1.0"): {"qwen": "T-VG-PAIR-QWEN", "llava": "T-VG-PAIR-LLAVA"},
    (_VG, _PS, "1.0"): {"qwen": "T-VG-POINT", "llava": "T-VG-POINT"},
    (_VU, _PR, "1.0"): {"qwen": "T-VU-PAIR", "llava": "T-VU-PAIR"},
    (_VU, _PS, "1.0"): {"qwen": "T-VU-POINT", "llava": "T-VU-POINT"},
    (_IG, _PS, "1.5"): {"qwen": "T-IG-POINT-ACS-V15", "llava": "T-IG-POINT-ACS-V15"},
    (_IG, _PAIRS, "2.0"): {"qwen": "T-V2-PAIRSCORE-IMG"},
    (_VG, _PAIRS, "2.0"): {"qwen": "T-V2-PAIRSCORE-VID"},
    (_IG, _PS, "2.0"): {"qwen": "T-V2-POINT-ACS"},
    (_VG, _PS, "2.0"): {"qwen": "T-V2-POINT-APS"},
    (_IG, _PR, "think"): {"qwen": "T-THINK-IG", "llava": "T-THINK-IG"},
    (_IU, _PR, "think"): {"qwen": "T-THINK-IU", "llava": "T-THINK-IU"},
    (_VG, _PR, "think"): {"qwen": "T-THINK-VG", "llava": "T-THINK-VG"},
    (_VU, _PR, "think"): {"qwen": "T-THINK-VU", "llava": "T-THINK-VU"},
    (_IG, _PR, "think-qwen3"): {"qwen": "T-THINK3-IG"},
    (_IU, _PR, "think-qwen3"): {"qwen": "T-THINK3-IU"},
    (_VG, _PR, "think-qwen3"): {"qwen": "T-THINK3-VG"},
    (_VU, _PR, "think-qwen3"): {"qwen": "T-THINK3-VU"},
    (_IG, _PR, "flex"): {"qwen": "T-FLEX-IMG"},
    (_VG, _PR, "flex"): {"qwen": "T-FLEX-VID"},
}
# 2.0 checkpoints keep the 1.0 pair-rank prompts (upstream README: "classic" prompts still apply).
for _task in (_IG, _IU, _VG, _VU):
    _DEFAULTS[(_task, _PR, "2.0")] = {"qwen": _DEFAULTS[(_task, _PR, "1.0")]["qwen"]}
    _DEFAULTS.setdefault((_task, _PS, "2.0"), {"qwen": _DEFAULTS[(_task, _PS, "1.0")]["qwen"]})

VERSIONS = ("1.0", "1.5", "2.0", "think", "think-qwen3", "flex")


def get_template(template_id: str) -> TemplateSpec:
    """Return the template with this id (e.g. ``"T-IG-PAIR-QWEN"``); :class:`TemplateError` if unknown."""
    try:
        return TEMPLATES[template_id]
    except KeyError:
        raise TemplateError(f"unknown template id {template_id!r}; known: {', '.join(TEMPLATES)}") from None


def select_template(task: Task | str, mode: Mode | str, family: str = "qwen", version: str = "1.0") -> TemplateSpec:
    """The template upstream uses for ``task`` x ``mode`` on a ``family`` checkpoint of a given ``version``.

    Args:
        task: e.g. ``"image_generation"``.
        mode: ``"pair_rank"``, ``"point_score"`` or ``"pair_score"``.
        family: ``"qwen"`` (Qwen2/2.5/3-VL checkpoints) or ``"llava"`` (LLaVA-OneVision checkpoints).
        version: one of :data:`VERSIONS`.

    Raises:
        TemplateError: if upstream has no such prompt (e.g. a 2.0 prompt for a LLaVA checkpoint).
    """
    try:
        key = (Task(task), Mode(mode), version)
    except ValueError as err:
        raise TemplateError(str(err)) from None
    choices = _DEFAULTS.get(key)
    if not choices or family not in choices:
        options = sorted(f"{t.value}/{m.value}/{v}/{f}" for (t, m, v), fams in _DEFAULTS.items() for f in fams)
        raise TemplateError(
            f"no template for task={key[0].value} mode={key[1].value} family={family} version={version}; "
            f"available: {', '.join(options)}"
        )
    return TEMPLATES[choices[family]]
