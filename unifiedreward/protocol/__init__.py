"""The UnifiedReward protocol: prompt templates (verbatim), rendering, and answer parsers.

This package is the single source of truth for prompt text and answer formats: training data, judging, preference
construction and evaluation all import from here.

Example:
    >>> from unifiedreward.protocol import render_prompt, parse_answer
    >>> prompt = render_prompt(task="image_generation", mode="pair_rank", family="qwen",
    ...                        images=[img1, img2], prompt="a red cube")          # doctest: +SKIP
    >>> parse_answer(prompt.meta["template_id"], "Image 2 is better.").verdict    # doctest: +SKIP
    <Verdict.SECOND: 'second'>
"""

from unifiedreward.protocol.parsers import (
    GradeResult,
    PairwiseResult,
    PointwiseResult,
    extract_answer_block,
    extract_think,
    parse_answer,
    parse_dimension_scores,
    parse_edit_pair_scores,
    parse_edit_scores,
    parse_flex,
    parse_gpt_grade,
    parse_pair_scores,
    parse_score,
    parse_verdict,
)
from unifiedreward.protocol.render import LLAVA_SYSTEM_PROMPT, fill_template, render_prompt
from unifiedreward.protocol.templates import (
    TEMPLATES,
    VERSIONS,
    AnswerFormat,
    AnswerKind,
    Mode,
    Task,
    TemplateSpec,
    Verdict,
    get_template,
    raw_templates,
    select_template,
)

__all__ = [
    "LLAVA_SYSTEM_PROMPT",
    "TEMPLATES",
    "VERSIONS",
    "AnswerFormat",
    "AnswerKind",
    "GradeResult",
    "Mode",
    "PairwiseResult",
    "PointwiseResult",
    "Task",
    "TemplateSpec",
    "Verdict",
    "extract_answer_block",
    "extract_think",
    "fill_template",
    "get_template",
    "parse_answer",
    "parse_dimension_scores",
    "parse_edit_pair_scores",
    "parse_edit_scores",
    "parse_flex",
    "parse_gpt_grade",
    "parse_pair_scores",
    "parse_score",
    "parse_verdict",
    "raw_templates",
    "render_prompt",
    "select_template",
]
