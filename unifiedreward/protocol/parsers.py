"""Turn a reward model's answer into a typed result.

Upstream decides with substring tests on the whole output (protocol reference §2): an answer that mentions both
options counts as correct whatever the gold is, unreadable answers become silent wins or ties, and scores stay
strings. Here every parser returns a result that carries the raw text and is either *valid* (a verdict or a numeric
score) or *invalid* with a reason. Nothing is ever defaulted.

Pairwise rules (:func:`parse_verdict`):

1. Markdown emphasis (``**``, ``__``, backticks, ``#``) is ignored.
2. The verdict is read from the most specific place the answer offers: the last ``<answer>...</answer>`` block (an
   unclosed ``<answer>`` reads to the end), else the text after the last ``Overall Judgment`` / ``Final answer`` /
   ``Conclusion`` / ``Verdict`` marker, else the whole answer.
3. In that region, verdict sentences are found with anchored patterns: ``Image 1 is better`` (optionally ``than
   Image 2``), ``Image 2 is better than Image 1``, ``Both images are equally good`` (subject per template).
4. If all verdict sentences there agree, that is the verdict; if they disagree (e.g. ``Image 1 is better ... Image 2
   is better``), the answer is invalid ("ambiguous"); if there is none, invalid ("no verdict"). A tie where the
   template forbids ties is invalid.

Point-score rules (:func:`parse_score`): the number after the last ``Final Score`` (``Final Score: 4.5``,
``**Final Score:** 4``, ``Final Score: [4]``, ``Final Score: 4/5``); or an answer that is just a number. A score
outside the template's range, or written out of another denominator (``8/10`` on a 1-5 scale), is invalid.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field, replace

from unifiedreward.protocol.templates import AnswerFormat, AnswerKind, TemplateSpec, Verdict, get_template

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class PairwiseResult:
    """A pairwise judgment.

    Attributes:
        verdict: ``FIRST``/``SECOND``/``TIE`` when the answer could be read, else ``None``.
        raw: the model's answer, untouched.
        reason: why the answer is invalid (``None`` when valid).
        think: the ``<think>`` block of a CoT answer, if any.
        dimension_scores: per-dimension ``(first, second)`` scores (2.0 pair score, Edit pair score).
        scores: overall ``(first, second)`` scores where the format gives them (mean over dimensions).
        probabilities: ``P(verdict)`` from the model's logits (fast path), if computed.
        details: other parsed content (e.g. Flex's per-category JSON, the other order's answer).
        swapped: the candidates were shown to the model in the reverse order; ``verdict``, scores and
            probabilities are already mapped back to the request's order.
        consistent: when judged in both orders, whether the two verdicts agree (``None``: not judged twice).
    """

    verdict: Verdict | None
    raw: str
    reason: str | None = None
    think: str | None = None
    dimension_scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    scores: tuple[float, float] | None = None
    probabilities: dict[Verdict, float] | None = None
    details: dict | None = None
    swapped: bool = False
    consistent: bool | None = None

    @property
    def valid(self) -> bool:
        """True when a verdict was read."""
        return self.verdict is not None

    @property
    def status(self) -> str:
        """``"valid"``, ``"invalid"``, or ``"inconsistent"`` (both orders judged, they disagree and no verdict could
        be decided). A disagreement that averaged probabilities resolve keeps its verdict: ``"valid"`` with
        ``consistent=False`` (the rule is in :mod:`unifiedreward.judge.judge`)."""
        if self.consistent is False and self.verdict is None:
            return "inconsistent"
        return "valid" if self.valid else "invalid"

    def unswapped(self) -> PairwiseResult:
        """This result with first and second exchanged (verdict, scores, probabilities, ``swapped`` flag)."""
        flip = {Verdict.FIRST: Verdict.SECOND, Verdict.SECOND: Verdict.FIRST, Verdict.TIE: Verdict.TIE}
        return replace(
            self,
            verdict=None if self.verdict is None else flip[self.verdict],
            dimension_scores={k: (v[1], v[0]) for k, v in self.dimension_scores.items()},
            scores=None if self.scores is None else (self.scores[1], self.scores[0]),
            probabilities=None if self.probabilities is None else {flip[k]: v for k, v in self.probabilities.items()},
            swapped=not self.swapped,
        )


@dataclass(frozen=True)
class PointwiseResult:
    """A pointwise judgment.

    Attributes:
        score: the overall score as a float, ``None`` when the answer could not be read. For multi-dimension
            formats without an overall score (2.0 ``Alignment/Coherence/Style``, Edit), the mean of the dimensions.
        raw: the model's answer, untouched.
        reason: why the answer is invalid (``None`` when valid).
        score_range: the template's inclusive range for ``score``.
        dimension_scores: per-dimension scores (lower-cased names), e.g. ``{"visual quality": 4.0}``.
        word_scores: v1.5 ``Word-wise Scores`` as ``(word, score)`` pairs, if present.
        think: the ``<think>`` block, if any.
        expected_score: the expectation of the score under the model's distribution (fast path), if computed.
    """

    score: float | None
    raw: str
    reason: str | None = None
    score_range: tuple[float, float] | None = None
    dimension_scores: dict[str, float] = field(default_factory=dict)
    word_scores: list[tuple[str, float]] | None = None
    think: str | None = None
    expected_score: float | None = None

    @property
    def valid(self) -> bool:
        """True when a score was read."""
        return self.score is not None

    @property
    def status(self) -> str:
        """``"valid"`` or ``"invalid"``."""
        return "valid" if self.valid else "invalid"


@dataclass(frozen=True)
class GradeResult:
    """A QA grade from an LLM judge (``{'pred': 'yes', 'score': 4}``)."""

    correct: bool | None
    score: float | None
    raw: str
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.correct is not None and self.score is not None


# ----------------------------------------------------------------------------------------------------------- helpers
_MARKDOWN = re.compile(r"\*\*|__|`|^#+\s*", re.MULTILINE)
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_MARKERS = ("overall judgment", "overall judgement", "final answer", "final verdict", "conclusion", "verdict")


def strip_markdown(text: str) -> str:
    """Remove emphasis and heading markup that models wrap answers in."""
    return _MARKDOWN.sub("", text)


def extract_think(text: str) -> str | None:
    """The content of the first ``<think>`` block (to ``</think>`` or the end), stripped; ``None`` if absent."""
    match = _THINK.search(text)
    return match.group(1).strip() if match else None


def extract_answer_block(text: str) -> str | None:
    """The content of the last ``<answer>`` block (an unclosed one reads to the end); ``None`` if absent."""
    blocks = _ANSWER_BLOCK.findall(text)
    return blocks[-1].strip() if blocks else None


def _verdict_region(text: str, marker: str | None) -> str:
    answer = extract_answer_block(text)
    if answer is not None:
        return answer
    lowered = text.lower()
    markers = (marker.lower(),) if marker else ()
    for candidate in markers + _MARKERS:
        pos = lowered.rfind(candidate)
        if pos >= 0:
            return text[pos + len(candidate) :]
    return text


def _verdict_patterns(subject: str) -> tuple[re.Pattern, re.Pattern]:
    subjects = {"Response": "Response|Answer", "Answer": "Answer|Response"}.get(subject, re.escape(subject))
    win = re.compile(
        rf"\b(?:{subjects})\s*([12])\b\s*(?:\([^)]*\)\s*)?(?:is|was)\s+(?:clearly\s+|slightly\s+|much\s+|overall\s+)?"
        rf"(?:the\s+)?(?:better|superior|preferred)\b(?:\s+than\s+(?:{subjects})\s*([12])\b)?",
        re.IGNORECASE,
    )
    tie = re.compile(rf"\b(?:both|the\s+two)\s+(?:{subjects})s?\s+(?:are\s+)?equally\s+good\b", re.IGNORECASE)
    return win, tie


def _find_verdicts(region: str, subject: str) -> list[Verdict]:
    win, tie = _verdict_patterns(subject)
    found: list[tuple[int, Verdict]] = []
    for match in win.finditer(region):
        first, other = match.group(1), match.group(2)
        if other is not None and other == first:
            continue  # "Image 1 is better than Image 1": not a verdict
        found.append((match.start(), Verdict.FIRST if first == "1" else Verdict.SECOND))
    found.extend((match.start(), Verdict.TIE) for match in tie.finditer(region))
    return [verdict for _, verdict in sorted(found, key=lambda item: item[0])]


# ---------------------------------------------------------------------------------------------------------- pairwise
def parse_verdict(
    text: str | None, *, subject: str = "Image", tie_allowed: bool = True, marker: str | None = None
) -> PairwiseResult:
    """Read a pairwise verdict from free text (rules in the module docstring).

    Args:
        text: the model's answer.
        subject: the noun of the verdict sentences (``"Image"``, ``"Video"``, ``"Answer"``, ``"Response"``).
        tie_allowed: whether ``Both ... are equally good`` is an acceptable answer.
        marker: a phrase the template asks the verdict to follow (e.g. ``"Overall Judgment"``).

    Example:
        >>> parse_verdict("Both look fine, but **Image 2 is better.**").verdict
        <Verdict.SECOND: 'second'>
    """
    raw = "" if text is None else text
    if not raw.strip():
        return PairwiseResult(None, raw, reason="empty answer")
    think = extract_think(raw)
    clean = strip_markdown(raw)
    region = _verdict_region(clean, marker)
    verdicts = set(_find_verdicts(region, subject))
    if not verdicts and region is not clean:
        verdicts = set(_find_verdicts(clean, subject))  # the marker led nowhere: fall back to the whole answer
    if not verdicts:
        return PairwiseResult(None, raw, reason=f"no verdict found ('{subject} 1/2 is better' expected)", think=think)
    if len(verdicts) > 1:
        names = ", ".join(sorted(v.value for v in verdicts))
        return PairwiseResult(None, raw, reason=f"ambiguous answer: states several verdicts ({names})", think=think)
    (verdict,) = verdicts
    if verdict is Verdict.TIE and not tie_allowed:
        return PairwiseResult(None, raw, reason="tie given where the template forbids ties", think=think)
    return PairwiseResult(verdict, raw, think=think)


def parse_pair_scores(
    text: str | None, *, subject: str = "Image", dimensions: tuple[str, ...], value_range=(0.0, 1.0)
) -> PairwiseResult:
    """Read UnifiedReward-2.0 relative scores: for each dimension, ``{subject} 1: x`` and ``{subject} 2: y``.

    The verdict is the candidate with the larger score summed over dimensions (equal sums: ``TIE``); ``scores`` are
    the per-candidate means. Every dimension must be present with both values inside ``value_range``.
    """
    raw = "" if text is None else text
    if not raw.strip():
        return PairwiseResult(None, raw, reason="empty answer")
    clean = strip_markdown(raw)
    per_dim: dict[str, tuple[float, float]] = {}
    for dim in dimensions:
        pattern = re.compile(
            rf"{re.escape(dim)}\s*:?\s*[-*]?\s*{subject}\s*1\s*:\s*({_NUM})\s*[-*,;]?\s*{subject}\s*2\s*:\s*({_NUM})",
            re.IGNORECASE,
        )
        matches = pattern.findall(clean)
        if not matches:
            return PairwiseResult(None, raw, reason=f"missing scores for {dim!r}")
        first, second = (float(v) for v in matches[-1])
        lo, hi = value_range
        if not (lo <= first <= hi and lo <= second <= hi):
            return PairwiseResult(None, raw, reason=f"{dim} scores {first}, {second} outside [{lo}, {hi}]")
        per_dim[_dim_key(dim)] = (first, second)
    total_1 = sum(v[0] for v in per_dim.values())
    total_2 = sum(v[1] for v in per_dim.values())
    verdict = Verdict.FIRST if total_1 > total_2 else Verdict.SECOND if total_2 > total_1 else Verdict.TIE
    n = len(per_dim)
    return PairwiseResult(verdict, raw, dimension_scores=per_dim, scores=(total_1 / n, total_2 / n))


def parse_edit_pair_scores(text: str | None, *, subject: str = "Image") -> PairwiseResult:
    """Read Edit pair scores ``Image 1: x`` / ``Image 2: y`` (integers or floats, possibly negative)."""
    raw = "" if text is None else text
    clean = strip_markdown(raw)
    values = []
    for idx in ("1", "2"):
        found = re.findall(rf"(?:Edited\s+)?{subject}\s*{idx}\s*(?:score)?\s*[:=\-]\s*({_NUM})", clean, re.IGNORECASE)
        if not found:
            return PairwiseResult(None, raw, reason=f"no score for {subject} {idx}")
        values.append(float(found[-1]))
    first, second = values
    verdict = Verdict.FIRST if first > second else Verdict.SECOND if second > first else Verdict.TIE
    return PairwiseResult(verdict, raw, scores=(first, second))


def _load_json_object(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    body = text[start : end + 1]
    for loader in (json.loads, ast.literal_eval):
        try:
            value = loader(body)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_flex(text: str | None, *, subject: str = "Image") -> PairwiseResult:
    """Read a UnifiedReward-Flex answer: a JSON object (fenced or not) whose ``winner`` is ``"Image 1"``/``"Image 2"``."""
    raw = "" if text is None else text
    obj = _load_json_object(raw)
    if obj is None:
        return PairwiseResult(None, raw, reason="no JSON object in the answer")
    winner = str(obj.get("winner", "")).strip()
    match = re.fullmatch(rf"{subject}\s*([12])", winner, re.IGNORECASE)
    if not match:
        return PairwiseResult(None, raw, reason=f"'winner' is {winner!r}, expected '{subject} 1' or '{subject} 2'")
    verdict = Verdict.FIRST if match.group(1) == "1" else Verdict.SECOND
    return PairwiseResult(verdict, raw, details=obj)


# --------------------------------------------------------------------------------------------------------- pointwise
_FINAL = re.compile(
    rf"final\s*score\s*(?:\([^)]*\))?\s*[:：=]?\s*\[?\s*({_NUM})\s*\]?(?:\s*(?:/|out\s+of)\s*({_NUM}))?",
    re.IGNORECASE,
)
_DIM_LINE = re.compile(rf"^\s*(?:[-*•]\s*|\(?\d+[.)]\s*)?([A-Za-z][\w\- ]*?(?:\s*\([^)]*\))?)\s*:\s*({_NUM})\s*$")


def _dim_key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def _in_range(value: float, value_range: tuple[float, float] | None) -> bool:
    return value_range is None or value_range[0] <= value <= value_range[1]


def parse_score(
    text: str | None,
    *,
    score_range: tuple[float, float] | None = None,
    dimensions: tuple[str, ...] = (),
    dimension_range: tuple[float, float] | None = None,
) -> PointwiseResult:
    """Read ``Final Score: N`` (rules in the module docstring) plus any ``name: value`` dimension lines.

    Args:
        text: the model's answer.
        score_range: inclusive range of the final score; outside it the answer is invalid.
        dimensions: dimension names the template asks for (recorded when present; not required).
        dimension_range: if given, a listed dimension outside it makes the answer invalid.

    Example:
        >>> parse_score("Looks good.\\n**Final Score:** 4.5", score_range=(1, 5)).score
        4.5
    """
    raw = "" if text is None else text
    if not raw.strip():
        return PointwiseResult(None, raw, reason="empty answer", score_range=score_range)
    think = extract_think(raw)
    clean = strip_markdown(raw)
    dims = _dimension_lines(clean)
    for name in dimensions:
        value = dims.get(_dim_key(name))
        if value is not None and not _in_range(value, dimension_range):
            return PointwiseResult(
                None, raw, reason=f"{name} = {value:g} outside {dimension_range}", score_range=score_range,
                dimension_scores=dims, think=think,
            )  # fmt: skip
    matches = _FINAL.findall(clean)
    if matches:
        value_text, denominator = matches[-1]
        value = float(value_text)
        if denominator and score_range is not None and float(denominator) != score_range[1]:
            reason = f"score given out of {denominator}, expected out of {score_range[1]:g}"
            return PointwiseResult(None, raw, reason=reason, score_range=score_range, dimension_scores=dims, think=think)
    elif re.fullmatch(rf"\s*{_NUM}\s*\.?\s*", clean):
        value = float(clean.strip().rstrip("."))
    else:
        return PointwiseResult(
            None, raw, reason="no 'Final Score:' found", score_range=score_range, dimension_scores=dims, think=think
        )
    if not math.isfinite(value) or not _in_range(value, score_range):
        return PointwiseResult(
            None, raw, reason=f"score {value:g} outside {score_range}", score_range=score_range,
            dimension_scores=dims, think=think,
        )  # fmt: skip
    return PointwiseResult(value, raw, score_range=score_range, dimension_scores=dims, think=think)


def _dimension_lines(clean: str) -> dict[str, float]:
    dims: dict[str, float] = {}
    for line in clean.splitlines():
        match = _DIM_LINE.match(line)
        if match and not match.group(1).lower().startswith("final score"):
            dims[_dim_key(match.group(1))] = float(match.group(2))
    return dims


_WORD_SCORES = re.compile(r"Word-wise\s+Scores\s*:\s*(\[.*?\]\])", re.IGNORECASE | re.DOTALL)


def parse_dimension_scores(
    text: str | None, *, dimensions: tuple[str, ...], dimension_range: tuple[float, float] | None = None
) -> PointwiseResult:
    """Read ``Alignment Score (1-5): X``-style lines (2.0 ACS/APS, v1.5 ACS); all ``dimensions`` are required.

    ``score`` is the mean of the dimensions (upstream defines no overall score for these formats). v1.5's
    ``Word-wise Scores: [["word", s], ...]`` list is returned in ``word_scores`` when it parses.
    """
    raw = "" if text is None else text
    if not raw.strip():
        return PointwiseResult(None, raw, reason="empty answer", score_range=dimension_range)
    clean = strip_markdown(raw)
    dims: dict[str, float] = {}
    for name in dimensions:
        pattern = re.compile(rf"{re.escape(name)}\s*(?:\([^)]*\))?\s*[:：]\s*\[?\s*({_NUM})", re.IGNORECASE)
        found = pattern.findall(clean)
        if not found:
            return PointwiseResult(None, raw, reason=f"missing {name!r}", score_range=dimension_range)
        value = float(found[-1])
        if not _in_range(value, dimension_range):
            return PointwiseResult(
                None, raw, reason=f"{name} = {value:g} outside {dimension_range}", score_range=dimension_range
            )
        dims[_dim_key(name)] = value
    words = None
    match = _WORD_SCORES.search(clean)
    if match:
        try:
            parsed = json.loads(match.group(1))
            words = [(str(w), float(s)) for w, s in parsed]
        except (ValueError, TypeError):
            words = None
    score = sum(dims.values()) / len(dims)
    return PointwiseResult(score, raw, score_range=dimension_range, dimension_scores=dims, word_scores=words)


def parse_edit_scores(
    text: str | None, *, dimensions: tuple[str, str], dimension_range: tuple[float, float] = (0, 25)
) -> PointwiseResult:
    """Read an Edit pointwise answer ``{"reasoning": ..., "score": [a, b]}`` (dict, JSON or Python literal)."""
    raw = "" if text is None else text
    obj = _load_json_object(raw)
    values = obj.get("score") if obj else None
    if values is None:
        found = re.search(rf"score\W*\[\s*({_NUM})\s*,\s*({_NUM})\s*\]", raw, re.IGNORECASE)
        values = [found.group(1), found.group(2)] if found else None
    if not isinstance(values, (list, tuple)) or len(values) != 2:
        return PointwiseResult(None, raw, reason="no 'score': [a, b] list", score_range=dimension_range)
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return PointwiseResult(None, raw, reason=f"non-numeric scores {values!r}", score_range=dimension_range)
    for name, value in zip(dimensions, numbers, strict=True):
        if not _in_range(value, dimension_range):
            return PointwiseResult(None, raw, reason=f"{name} = {value:g} outside {dimension_range}")
    dims = dict(zip(dimensions, numbers, strict=True))
    return PointwiseResult(sum(numbers) / 2, raw, score_range=dimension_range, dimension_scores=dims)


def parse_gpt_grade(text: str | None) -> GradeResult:
    """Read the video-QA GPT judge's ``{'pred': 'yes'|'no', 'score': n}`` (score kept as a float, not truncated)."""
    raw = "" if text is None else text
    obj = _load_json_object(raw)
    if obj is None:
        return GradeResult(None, None, raw, reason="no dict in the answer")
    pred = str(obj.get("pred", "")).strip().lower()
    correct = True if pred.startswith("yes") else False if pred.startswith("no") else None
    try:
        score = float(obj.get("score"))
    except (TypeError, ValueError):
        score = None
    if correct is None or score is None or not 0 <= score <= 5:
        return GradeResult(None, None, raw, reason=f"bad pred/score: {obj!r}")
    return GradeResult(correct, score, raw)


# ---------------------------------------------------------------------------------------------------------- dispatch
def parse_answer(template: TemplateSpec | str, text: str | None) -> PairwiseResult | PointwiseResult | GradeResult:
    """Parse ``text`` with the parser the template's answer format calls for."""
    spec = get_template(template) if isinstance(template, str) else template
    fmt: AnswerFormat = spec.answer
    kind = fmt.kind
    if kind is AnswerKind.VERDICT:
        return parse_verdict(text, subject=fmt.subject, tie_allowed=fmt.tie_allowed, marker=fmt.verdict_marker)
    if kind is AnswerKind.THINK_VERDICT:
        return parse_verdict(text, subject=fmt.subject, tie_allowed=fmt.tie_allowed)
    if kind is AnswerKind.FINAL_SCORE:
        return parse_score(
            text, score_range=fmt.score_range, dimensions=fmt.dimensions, dimension_range=fmt.dimension_range
        )
    if kind is AnswerKind.DIMENSION_SCORES:
        return parse_dimension_scores(text, dimensions=fmt.dimensions, dimension_range=fmt.dimension_range)
    if kind is AnswerKind.PAIR_SCORES:
        return parse_pair_scores(
            text, subject=fmt.subject, dimensions=fmt.dimensions, value_range=fmt.dimension_range or (0.0, 1.0)
        )
    if kind is AnswerKind.EDIT_SCORES:
        return parse_edit_scores(text, dimensions=fmt.dimensions, dimension_range=fmt.dimension_range or (0, 25))
    if kind is AnswerKind.EDIT_PAIR_SCORES:
        return parse_edit_pair_scores(text, subject=fmt.subject)
    if kind is AnswerKind.FLEX:
        return parse_flex(text, subject=fmt.subject)
    if kind is AnswerKind.GPT_JUDGE:
        return parse_gpt_grade(text)
    raise ValueError(f"template {spec.id} expects no answer")
