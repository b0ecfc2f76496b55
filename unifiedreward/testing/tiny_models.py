"""Tiny random vision-language models, built offline, for tests and smoke runs.

Everything here is constructed from configs in memory: no file is downloaded and no hub is contacted. The models
have the real architectures of the reward models UnifiedReward uses (Qwen2.5-VL, Qwen2-VL, Qwen3-VL and
LLaVA-OneVision) with a few hundred thousand random parameters, so the whole load -> prompt -> process -> generate
path can be exercised on a CPU in milliseconds. Their outputs are meaningless but deterministic given ``seed``.

The tokenizer is a real byte-level BPE :class:`~transformers.Qwen2Tokenizer` (every string is encodable) with the
Qwen special tokens and a few hundred merges learned, deterministically, from a built-in English text in the style
of reward-model judging prompts, so long prompts stay reasonably short.

The builders live in the package proper (:mod:`unifiedreward.tiny`); this module fixes the test fixtures' sizes
(:data:`TEST_SIZE`) and tokenizer, and re-exports the names tests and users import from here.

Example:
    >>> from unifiedreward.testing.tiny_models import build_tiny_model, build_tiny_processor
    >>> processor = build_tiny_processor("qwen2_5_vl")
    >>> model = build_tiny_model("qwen2_5_vl", processor.tokenizer)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unifiedreward.tiny.models import (
    TINY_ARCHITECTURES,
    TinySize,
    build_config,
    build_model,
    build_processor,
    check_arch,
)
from unifiedreward.tiny.tokenizer import (
    LLAVA_CHAT_TEMPLATE,
    LLAVA_SPECIAL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    byte_bpe_tokenizer,
    train_byte_bpe,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, ProcessorMixin, Qwen2Tokenizer

__all__ = [
    "LLAVA_CHAT_TEMPLATE",
    "LLAVA_SPECIAL_TOKENS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "TEST_SIZE",
    "TINY_ARCHITECTURES",
    "build_tiny_model",
    "build_tiny_processor",
    "build_tiny_tokenizer",
    "save_tiny_model",
    "train_byte_bpe",
]

#: The test fixtures' sizes: text 2 layers x 64 (4 heads, 2 KV heads), vision 2 x 32, large random weights.
TEST_SIZE = TinySize(mrope_section=(2, 3, 3))

# Upper bound on the BPE merges learned for the tiny tokenizer (vocabulary = 1 + 256 bytes + merges + specials).
# With min_frequency=2 the built-in corpus yields fewer (about 490): every merge is seen at least twice.
_NUM_MERGES = 640

# Original English text in the register of reward-model prompts (image / video generation and understanding
# judging), used only to learn the tiny tokenizer's merges. Changing it changes every tiny tokenizer.
_MERGE_CORPUS = """\
You are given a text caption and two generated images based on that caption. Your task is to evaluate and compare
the two images based on two key criteria. First, alignment with the caption: assess how well each image matches
the content described in the caption, including the objects, their attributes, their relationships, the scene,
the style and the overall theme. Second, overall image quality: examine the visual quality of each image,
including clarity, detail, color, lighting, composition, realism, aesthetics and the absence of artifacts or
distortions. Compare both images using these criteria and decide which image is better overall.
Please provide your judgment in the following format. Image 1 is better, or Image 2 is better.
The caption of the generated images is: a red bicycle leaning against a wooden fence in the morning light.

You are given a text prompt and a generated video based on that prompt. Your task is to evaluate the video based
on three criteria: visual quality, temporal consistency and alignment with the text. Assess the clarity of each
frame, the smoothness of the motion, the stability of the objects over time and how well the video follows the
description of the prompt. Give a score from 1 to 5 for each criterion, where 1 is the worst and 5 is the best,
and then give a final score. Output your evaluation in the following format:
Alignment Score (1-5): X
Coherence Score (1-5): Y
Style Score (1-5): Z
Final Score: the average of the scores above.

You are presented with two generated videos (Video 1 and Video 2) along with a shared text prompt. Your task is
to compare the two videos and determine which one is better aligned with the prompt and has higher quality.
Consider the motion, the physical plausibility, the visual appeal and the faithfulness to the description.
Answer with the index of the better video: Video 1 is better or Video 2 is better.

You are provided with an image and a question about this image, as well as two answers to the question.
Your task is to judge which answer is more accurate, more helpful and better grounded in the visual content of
the image. A good answer correctly describes what is shown, does not invent objects that are not present, and
responds directly to the question. Compare Answer 1 and Answer 2 and then state your decision.
Question: What is the man in the blue shirt holding in his right hand?
Answer 1: He is holding a cup of coffee while talking on the phone.
Answer 2: The man is holding a small black umbrella.
Please output which answer is better: Answer 1 is better or Answer 2 is better.

You are an expert evaluator of images and videos. Think step by step about the evidence before giving the final
answer. Describe the main differences between the two candidates, explain the reasoning behind your choice and
finally give the conclusion. Be objective, be concise and do not let the order in which the candidates are
presented influence your judgment. The final answer should be written on the last line.
Your response should follow this structure: first the analysis of each candidate, then the comparison, then the
final decision in the required format.

The photo shows a quiet street with old houses, tall green trees, a blue sky with white clouds and people walking
with their dogs. A cat is sleeping on the window of a small house, and a child is playing with a yellow ball in
the garden. The camera slowly moves from the left to the right while the sun sets behind the mountains, and the
water of the lake reflects the orange light of the evening. Two dogs run across the field and jump over a log.
A woman in a long dress is standing on the bridge and looking at the boats on the river.

Evaluate the generated content carefully. The response should be accurate, relevant, detailed and consistent with
the given instruction. If the image contains text, check whether the text is rendered correctly and is readable.
If the video contains people or animals, check whether their bodies, faces and hands look natural and whether the
movement is smooth and physically realistic. Point out any missing objects, wrong colors, wrong counts, wrong
positions or wrong actions. A higher score means a better result. When both candidates are equally good or equally
bad, choose the one with fewer problems. The evaluation must be based only on what can be seen, not on guesses.
Here is the instruction that was given to the generation model, followed by the outputs that need to be judged.
Please read the instruction first, then look at each output, and then write your answer.
There are many different kinds of scenes: a busy city at night with bright lights and cars, a forest covered in
snow, a beach with palm trees and waves, a kitchen with fresh fruit on the table, a portrait of an old man with a
gray beard, a painting in the style of an impressionist artist, a cartoon robot, a close-up of a flower, a bird
flying over the ocean, a group of friends having dinner, a train crossing a bridge and a spaceship above a planet.

For each pair, first look at what the prompt requires and make a short list of the important elements. Then check
every element in the first output and in the second output. Some elements are easy to verify, such as the number
of people, the color of a car or the position of a lamp; others need more attention, such as the mood of a scene,
the style of a drawing or the expression on a face. Write down which requirements are satisfied, which are only
partly satisfied and which are missing. After that, compare the general quality: is the picture sharp or blurry,
are the shapes correct, are there strange textures, broken lines, extra fingers, duplicated objects or unreadable
letters? Is the video stable, or do objects appear and disappear between frames? Does the camera motion feel
natural? Finally, combine these observations into a single decision and explain it in two or three sentences.
The final line of your answer must contain only the decision, with no extra words, so that it can be parsed.
"""


@functools.lru_cache(maxsize=1)
def _train_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The tiny tokenizer's vocabulary and merges, learned from ``_MERGE_CORPUS`` (cached; do not mutate)."""
    return train_byte_bpe(_MERGE_CORPUS.splitlines(keepends=True), _NUM_MERGES)


def build_tiny_tokenizer(extra_special_tokens: Sequence[str] = ()) -> Qwen2Tokenizer:
    """Build the tiny byte-level BPE ``Qwen2Tokenizer`` (deterministic: the same tokenizer on every call).

    Args:
        extra_special_tokens: more special tokens to add after the Qwen ones (LLaVA-OneVision needs
            ``("<image>", "<video>")``, see :data:`LLAVA_SPECIAL_TOKENS`).

    Returns:
        A ``Qwen2Tokenizer`` with ``<|endoftext|>`` (id 0, also the pad token), the 256 byte symbols, the learned
        merges, then the specials ``<|im_start|>`` ... ``<|video_pad|>`` and ``extra_special_tokens``. The eos
        token is ``<|im_end|>``; there is no bos token; the Qwen chat template is attached.
    """
    vocab, merges = _train_merges()
    return byte_bpe_tokenizer(vocab, merges, extra_special_tokens=extra_special_tokens)


def _default_tokenizer(arch: str) -> Qwen2Tokenizer:
    return build_tiny_tokenizer(LLAVA_SPECIAL_TOKENS if arch == "llava_onevision" else ())


def build_tiny_processor(arch: str, tokenizer: Qwen2Tokenizer | None = None) -> ProcessorMixin:
    """Build the processor of a tiny model (:func:`unifiedreward.tiny.build_processor`).

    Args:
        arch: one of :data:`TINY_ARCHITECTURES`.
        tokenizer: the tokenizer to use; by default :func:`build_tiny_tokenizer` (with ``<image>``/``<video>``
            for LLaVA-OneVision). It is used as is (not copied).

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    check_arch(arch)
    return build_processor(arch, tokenizer if tokenizer is not None else _default_tokenizer(arch))


def _build_config(arch: str, tokenizer: Qwen2Tokenizer) -> Any:
    return build_config(arch, tokenizer, TEST_SIZE)


def build_tiny_model(arch: str, tokenizer: Qwen2Tokenizer | None = None, seed: int = 0) -> PreTrainedModel:
    """Build a tiny random ``*ForConditionalGeneration`` model (float32, CPU, ``eval()`` mode) of :data:`TEST_SIZE`.

    Args:
        arch: one of :data:`TINY_ARCHITECTURES`.
        tokenizer: the tokenizer whose vocabulary and special-token ids the model uses; by default
            :func:`build_tiny_tokenizer` (the same one :func:`build_tiny_processor` builds by default).
        seed: seed of the random initialisation; the same ``(arch, tokenizer, seed)`` gives identical weights.

    Returns:
        The model, with a ``generation_config`` whose ``eos_token_id`` is ``<|im_end|>`` and ``pad_token_id`` is
        ``<|endoftext|>``, so greedy ``generate`` runs without warnings. Text: 2 layers, hidden 64, tied
        embeddings; vision: 2 layers, hidden 32.

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    check_arch(arch)
    tokenizer = tokenizer if tokenizer is not None else _default_tokenizer(arch)
    return build_model(arch, tokenizer, TEST_SIZE, seed=seed)


def save_tiny_model(arch: str, path: str | Path, *, tokenizer: Qwen2Tokenizer | None = None, seed: int = 0) -> Path:
    """Build a tiny model and its processor and ``save_pretrained`` both into ``path``.

    Args:
        arch: one of :data:`TINY_ARCHITECTURES`.
        path: output folder (created if needed).
        tokenizer: as in :func:`build_tiny_model`.
        seed: as in :func:`build_tiny_model`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`. It holds ``config.json``, ``generation_config.json``,
        ``model.safetensors``, ``processor_config.json``, ``tokenizer.json``, ``tokenizer_config.json`` and
        ``chat_template.jinja``, loadable with ``AutoProcessor`` / ``AutoModelForImageTextToText``.
    """
    check_arch(arch)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer if tokenizer is not None else _default_tokenizer(arch)
    processor = build_tiny_processor(arch, tokenizer)
    model = build_tiny_model(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
