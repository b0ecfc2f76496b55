"""Parsers on clean answers and on the messy ones real models give. Invalid answers never become a verdict."""

from __future__ import annotations

import pytest

from unifiedreward.protocol import (
    TEMPLATES,
    AnswerKind,
    PairwiseResult,
    PointwiseResult,
    Verdict,
    parse_answer,
    parse_dimension_scores,
    parse_edit_scores,
    parse_flex,
    parse_gpt_grade,
    parse_pair_scores,
    parse_score,
    parse_verdict,
)

pytestmark = pytest.mark.unit

F, S, T = Verdict.FIRST, Verdict.SECOND, Verdict.TIE


@pytest.mark.parametrize(
    ("template", "answer", "verdict"),
    [
        # the exact sentences each template asks for
        ("T-IG-PAIR-LLAVA", "Image 1 is better than Image 2.", F),
        ("T-IG-PAIR-LLAVA", "Image 2 is better than Image 1.", S),
        ("T-IG-PAIR-LLAVA", "Both images are equally good.", T),
        ("T-IG-PAIR-QWEN", "Image 1 is better.", F),
        ("T-IG-PAIR-QWEN", "Image 2 is better.", S),
        ("T-VG-PAIR-QWEN", "Video 2 is better,", S),
        ("T-VG-PAIR-QWEN", "Both videos are equally good.", T),
        ("T-VG-PAIR-LLAVA", "Video 1 is better than Video 2.", F),
        ("T-IU-PAIR-QWEN", "Answer 2 is better", S),
        ("T-VU-PAIR", "Accuracy: ...\nOverall Judgment: Answer 1 is better than Answer 2.", F),
        ("T-THINK-IG", "<think>1. Semantic: Image 1 (9/10)</think>\n<answer>Image 2 is better</answer>", S),
        ("T-THINK3-VU", "<think>...</think><answer>Answer 1 is better</answer>", F),
        # messy: prose, markdown, case, emphasis inside the sentence
        ("T-IG-PAIR-QWEN", "After careful comparison, I think **Image 2 is better.**", S),
        ("T-IG-PAIR-QWEN", "## Conclusion\nimage 1 IS better overall.", F),
        ("T-IG-PAIR-QWEN", "Image **1** is better.", F),
        ("T-IG-PAIR-QWEN", "Image 1 is clearly better than Image 2 in alignment and quality.", F),
        ("T-VG-PAIR-QWEN", "Final judgment: `Video 1 is better`", F),
        ("T-IU-PAIR-QWEN", "Answer 1 describes the dog correctly, so Answer 1 is better.", F),
        # the verdict region wins over earlier discussion
        ("T-THINK-IG", "<think>Image 2 is better in color but</think><answer>Image 1 is better</answer>", F),
        ("T-VU-PAIR", "Answer 2 is better for clarity.\nOverall Judgment: Answer 1 is better than Answer 2.", F),
        ("T-IG-PAIR-QWEN", "Image 2 is better at colour. Conclusion: Image 1 is better.", F),
        # the marker exists but holds no verdict: fall back to the whole answer
        ("T-VU-PAIR", "Overall Judgment is below.\nAnswer 2 is better than Answer 1.", S),
        # unclosed answer tag (generation cut off after the verdict)
        ("T-THINK-VG", "<think>long...</think><answer>Video 2 is better", S),
        # a "better than" whose object names itself is not a verdict
        ("T-IG-PAIR-LLAVA", "Image 1 is better than Image 1. Image 2 is better than Image 1.", S),
    ],
)
def test_verdicts(template, answer, verdict):
    result = parse_answer(template, answer)
    assert isinstance(result, PairwiseResult)
    assert result.verdict is verdict, result.reason
    assert result.valid and result.status == "valid" and result.reason is None
    assert result.raw == answer


@pytest.mark.parametrize(
    ("template", "answer", "reason"),
    [
        ("T-IG-PAIR-QWEN", "", "empty"),
        ("T-IG-PAIR-QWEN", "   \n ", "empty"),
        ("T-IG-PAIR-QWEN", None, "empty"),
        ("T-IG-PAIR-QWEN", "Final", "no verdict"),  # issue #6: 4-bit quantised output
        ("T-IG-PAIR-QWEN", "Both are nice pictures of a cat.", "no verdict"),
        ("T-IG-PAIR-QWEN", "Image 1 is better. Actually, Image 2 is better.", "ambiguous"),
        ("T-IG-PAIR-QWEN", "Image 1 is better than Image 2. Both images are equally good.", "ambiguous"),
        ("T-VG-PAIR-QWEN", "Video 1 is better,' 'Video 2 is better,' or 'Both videos are equally good.'", "ambiguous"),
        ("T-IG-PAIR-QWEN", "Image 1 is not better than Image 2", "no verdict"),
        ("T-IU-PAIR-QWEN", "Both answers are equally good.", "forbids ties"),
        ("T-VU-PAIR", "Overall Judgment: Answer X is better.", "no verdict"),
        ("T-THINK-IU", "<think>Answer 1 (8/10); Answer 2 (6/10)</think><answer></answer>", "no verdict"),
        ("T-THINK-IG", "<answer>Image 1 is better</answer> ... <answer>Image 2 is better and Image 1 is better</answer>",
         "ambiguous"),
    ],
)  # fmt: skip
def test_invalid_verdicts_are_reported_never_defaulted(template, answer, reason):
    result = parse_answer(template, answer)
    assert result.verdict is None
    assert not result.valid and result.status == "invalid"
    assert reason in result.reason


def test_think_block_is_extracted():
    result = parse_answer("T-THINK-IU", "<think>\nAnswer 1 (9/10)\n</think>\n<answer>Answer 1 is better</answer>")
    assert result.think == "Answer 1 (9/10)"
    assert result.verdict is F


def test_response_subject_for_free_form_llava_prompts():
    assert parse_answer("T-IU-PAIR-LLAVA", "Response 2 is better because ...").verdict is S
    assert parse_answer("T-VU-PAIR-LLAVA-HEAD", "I find that Response 1 is better.").verdict is F


@pytest.mark.parametrize(
    ("template", "answer", "score"),
    [
        ("T-IG-POINT", "red (color): 1\ncube (object): 1\nFinal Score: 4", 4.0),
        ("T-IG-POINT", "Final Score: 4.5", 4.5),
        ("T-IG-POINT", "**Final Score:** 3", 3.0),
        ("T-IG-POINT", "Final Score: [5]", 5.0),
        ("T-IG-POINT", "final score:2", 2.0),
        ("T-IG-POINT", "Final Score: 4/5", 4.0),
        ("T-IG-POINT", "Final Score: 3 out of 5", 3.0),
        ("T-IG-POINT", "  4  ", 4.0),
        ("T-IG-POINT", "Final Score: 2\nOn reflection...\nFinal Score: 3", 3.0),  # last one counts
        ("T-IU-POINT-QWEN", "The response is accurate.\nFinal Score: 85", 85.0),
        ("T-IU-POINT-LLAVA", "Final Score: 0", 0.0),
        ("T-IU-POINT-LLAVA", "Final Score: 100", 100.0),
        ("T-VU-POINT", "Final Score: 1", 1.0),
        ("T-IG-POINT-10", "Final Score: 10", 10.0),
    ],
)
def test_scores(template, answer, score):
    result = parse_answer(template, answer)
    assert isinstance(result, PointwiseResult)
    assert result.score == score and isinstance(result.score, float), result.reason
    assert result.valid


def test_scores_are_numbers_not_strings():
    # upstream compares "10" < "9" as strings; our scores order numerically
    ten = parse_answer("T-IG-POINT-10", "Final Score: 10").score
    nine = parse_answer("T-IG-POINT-10", "Final Score: 9").score
    assert max(ten, nine) == 10.0


@pytest.mark.parametrize(
    ("template", "answer", "reason"),
    [
        ("T-IG-POINT", "Final Score: 7", "outside"),
        ("T-IG-POINT", "Final Score: 0", "outside"),
        ("T-IG-POINT", "Final Score: -1", "outside"),
        ("T-IU-POINT-QWEN", "Final Score: 101", "outside"),
        ("T-IG-POINT", "Final Score: 8/10", "out of 10"),
        ("T-IG-POINT", "The image has 3 cats and 2 dogs.", "no 'Final Score:'"),
        ("T-IG-POINT", "Final Score: N/A", "no 'Final Score:'"),
        ("T-IG-POINT", "", "empty"),
        ("T-VG-POINT", "visual quality: 9\nFinal Score: 6", "visual quality = 9 outside"),
    ],
)
def test_invalid_scores(template, answer, reason):
    result = parse_answer(template, answer)
    assert result.score is None and not result.valid
    assert reason in result.reason


def test_video_point_dimensions():
    answer = (
        "visual quality: 4\ntemporal consistency: 3\ndynamic degree: 2\n"
        "text-to-video alignment: 1\nfactual consistency: 4\nFinal Score: 6"
    )
    result = parse_answer("T-VG-POINT", answer)
    assert result.score == 6.0 and result.score_range == (1, 10)
    assert result.dimension_scores == {
        "visual quality": 4.0,
        "temporal consistency": 3.0,
        "dynamic degree": 2.0,
        "text-to-video alignment": 1.0,
        "factual consistency": 4.0,
    }


def test_v2_point_scores():
    answer = "Alignment Score (1-5): 2.6947\nCoherence Score (1-5): 2.3715\nStyle Score (1-5): 2.8025"
    result = parse_answer("T-V2-POINT-ACS", answer)
    assert result.dimension_scores == {"alignment score": 2.6947, "coherence score": 2.3715, "style score": 2.8025}
    assert result.score == pytest.approx((2.6947 + 2.3715 + 2.8025) / 3)
    aps = parse_answer("T-V2-POINT-APS", "**Alignment Score (1-5):** 4\nPhysics Score (1-5): 3\nStyle Score (1-5): 5")
    assert aps.dimension_scores["physics score"] == 3.0 and aps.score == 4.0
    missing = parse_answer("T-V2-POINT-APS", "Alignment Score (1-5): 4\nStyle Score (1-5): 5")
    assert not missing.valid and "Physics Score" in missing.reason
    out = parse_dimension_scores("Alignment Score: 6\nCoherence Score: 3\nStyle Score: 3",
                                 dimensions=("Alignment Score", "Coherence Score", "Style Score"),
                                 dimension_range=(1, 5))  # fmt: skip
    assert not out.valid and "outside" in out.reason


def test_v15_word_scores():
    answer = (
        'Word-wise Scores: [["red", 0.1], ["cube", 2.5], ["[No_mistakes]", 1.2]]\n\n'
        "Alignment Score (1-5): 3\nCoherence Score (1-5): 4\nStyle Score (1-5): 5"
    )
    result = parse_answer("T-IG-POINT-ACS-V15", answer)
    assert result.word_scores == [("red", 0.1), ("cube", 2.5), ("[No_mistakes]", 1.2)]
    assert result.score == 4.0


def test_v2_pair_scores():
    answer = (
        "Alignment Score:\n Image 1: 0.4357\n Image 2: 0.5643\n\n"
        "Coherence Score:\n Image 1: 0.418\n Image 2: 0.582\n\n"
        "Style Score:\n Image 1: 0.4079\n Image 2: 0.5921"
    )
    result = parse_answer("T-V2-PAIRSCORE-IMG", answer)
    assert result.verdict is S
    assert result.dimension_scores["alignment score"] == (0.4357, 0.5643)
    assert result.scores == pytest.approx(((0.4357 + 0.418 + 0.4079) / 3, (0.5643 + 0.582 + 0.5921) / 3))
    video = answer.replace("Image", "Video").replace("0.5643", "0.9").replace("0.4357", "0.1")
    assert parse_answer("T-V2-PAIRSCORE-VID", video).verdict is S
    tie = parse_pair_scores("Alignment Score: Image 1: 0.5 Image 2: 0.5", dimensions=("Alignment Score",))
    assert tie.verdict is T
    bad = parse_answer("T-V2-PAIRSCORE-IMG", answer.replace("0.5921", "1.7"))
    assert not bad.valid and "outside" in bad.reason
    partial = parse_answer("T-V2-PAIRSCORE-IMG", "Alignment Score:\n Image 1: 0.4\n Image 2: 0.6")
    assert not partial.valid and "Coherence Score" in partial.reason


def test_edit_and_flex_and_gpt_grade():
    result = parse_answer("T-EDIT-POINT-IF", '{"reasoning": "ok", "score": [20, 15]}')
    assert result.dimension_scores == {"editing_success": 20.0, "overediting": 15.0} and result.score == 17.5
    assert parse_edit_scores("{'reasoning': 'x', 'score': [3, 30]}", dimensions=("a", "b")).valid is False
    assert parse_answer("T-EDIT-POINT-Q", "reasoning... score = [12.5, 25]").dimension_scores["artifacts"] == 25.0
    pair = parse_answer("T-EDIT-PAIRSCORE", "Edited Image 1: -2\nEdited Image 2: 3.5")
    assert pair.verdict is S and pair.scores == (-2.0, 3.5)
    flex = parse_flex('```json\n{"categories": [], "reason": "r", "winner": "Image 2"}\n```')
    assert flex.verdict is S and flex.details["reason"] == "r"
    assert parse_answer("T-FLEX-VID", '{"winner": "Video 1"}').verdict is F
    assert not parse_flex('{"winner": "Image 1/2"}').valid
    assert not parse_flex("no json here").valid
    grade = parse_gpt_grade("{'pred': 'yes', 'score': 4.8}")
    assert grade.correct is True and grade.score == 4.8  # not truncated to 4
    assert parse_gpt_grade('{"pred": "no", "score": 1}').correct is False
    assert not parse_gpt_grade("yes, 4").valid
    assert not parse_gpt_grade("{'pred': 'maybe', 'score': 3}").valid


def test_every_answer_template_has_a_parser_and_candidates_parse_back():
    for spec in TEMPLATES.values():
        if spec.answer.kind is AnswerKind.NONE:
            with pytest.raises(ValueError):
                parse_answer(spec, "anything")
            continue
        assert not parse_answer(spec, "").valid, spec.id
        # the exact answer sentences a template offers are read back as their own verdicts
        for verdict, sentence in spec.answer.candidates.items():
            assert parse_answer(spec, sentence).verdict is verdict, (spec.id, sentence)


def test_direct_parser_arguments():
    assert parse_verdict("Video 1 is better", subject="Video").verdict is F
    assert parse_verdict("Image 1 is better", subject="Video").verdict is None
    assert parse_score("Final Score: 12").score == 12.0  # no range given: any number
