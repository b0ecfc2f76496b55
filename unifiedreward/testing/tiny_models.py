"""Tiny random vision-language models, built offline, for tests and smoke runs.

Everything here is constructed from configs in memory: no file is downloaded and no hub is contacted. The models
have the real architectures of the reward models UnifiedReward uses (Qwen2.5-VL, Qwen2-VL, Qwen3-VL and
LLaVA-OneVision) with a few hundred thousand random parameters, so the whole load -> prompt -> process -> generate
path can be exercised on a CPU in milliseconds. Their outputs are meaningless but deterministic given ``seed``.

The tokenizer is a real byte-level BPE :class:`~transformers.Qwen2Tokenizer` (every string is encodable) with the
Qwen special tokens and a few hundred merges learned, deterministically, from a built-in English text in the style
of reward-model judging prompts, so long prompts stay reasonably short.

Example:
    >>> from unifiedreward.testing.tiny_models import build_tiny_model, build_tiny_processor
    >>> processor = build_tiny_processor("qwen2_5_vl")
    >>> model = build_tiny_model("qwen2_5_vl", processor.tokenizer)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, ProcessorMixin, Qwen2Tokenizer

__all__ = [
    "LLAVA_CHAT_TEMPLATE",
    "LLAVA_SPECIAL_TOKENS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "TINY_ARCHITECTURES",
    "build_tiny_model",
    "build_tiny_processor",
    "build_tiny_tokenizer",
    "save_tiny_model",
]

TINY_ARCHITECTURES: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "llava_onevision")

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
LLAVA_SPECIAL_TOKENS: tuple[str, ...] = ("<image>", "<video>")

#: The official Qwen2-VL / Qwen2.5-VL chat template (default system turn, ``{"type": "image"}`` parts rendered as
#: ``<|vision_start|><|image_pad|><|vision_end|>``). Used for all three tiny Qwen models.
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: A plain ChatML template for the tiny LLaVA-OneVision model: string content as is; content parts rendered in
#: order (image -> ``<image>\n``, video -> ``<video>\n``, text -> its text); no default system turn.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'video' %}<video>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

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


def train_byte_bpe(texts: Iterable[str], num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn byte-level BPE merges from ``texts`` with the exact normalizer and pre-tokenizer of ``Qwen2Tokenizer``.

    The ``tokenizers`` trainer is deterministic for a fixed input (checked across processes and hash seeds).

    Returns:
        ``(vocab, merges)``: token -> id (``<|endoftext|>`` is 0, then the 256 byte symbols, then one token per
        merge) and the ordered list of merges (at most ``num_merges``: fewer when no pair is seen twice).
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer_tok = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix=""))
    trainer_tok.normalizer = normalizers.NFC()
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=1 + len(alphabet) + num_merges,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
    )
    trainer_tok.train_from_iterator(list(texts), trainer=trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]
    vocab = dict(model["vocab"])
    # The trainer numbers the byte symbols by first occurrence; renumber so ids do not depend on the corpus text
    # beyond the merges: <|endoftext|> = 0, the sorted byte alphabet, then merged tokens in merge order.
    ordered = ["<|endoftext|>", *alphabet]
    seen = set(ordered)
    for left, right in merges:
        token = left + right
        if token not in seen:
            seen.add(token)
            ordered.append(token)
    missing = set(vocab) - seen
    if missing:  # pragma: no cover - would mean the trainer produced tokens that are neither bytes nor merges
        raise RuntimeError(f"unexpected tokens from the BPE trainer: {sorted(missing)[:5]}")
    return {token: i for i, token in enumerate(ordered)}, merges  # type: ignore[return-value]


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
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_merges()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    specials = [t for t in (*QWEN_SPECIAL_TOKENS[1:], *extra_special_tokens) if t not in QWEN_SPECIAL_TOKENS[:1]]
    tokenizer.add_special_tokens({"additional_special_tokens": list(dict.fromkeys(specials))})
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    tokenizer.model_max_length = 32768
    return tokenizer


def _check_arch(arch: str) -> None:
    if arch not in TINY_ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {', '.join(TINY_ARCHITECTURES)}")


def _default_tokenizer(arch: str) -> Qwen2Tokenizer:
    return build_tiny_tokenizer(LLAVA_SPECIAL_TOKENS if arch == "llava_onevision" else ())


def _token_ids(tokenizer: Qwen2Tokenizer, tokens: Sequence[str]) -> dict[str, int]:
    ids = {}
    unknown = tokenizer.convert_tokens_to_ids(tokenizer.unk_token) if tokenizer.unk_token else None
    for token in tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == unknown or token not in tokenizer.get_vocab():
            raise ValueError(f"the tokenizer has no token {token!r}; build it with build_tiny_tokenizer(...)")
        ids[token] = token_id
    return ids


# LLaVA-OneVision geometry: 28x28 tiles of 14x14 patches -> 2x2 = 4 features per tile.
_LLAVA_TILE = 28
_LLAVA_PATCH = 14
_LLAVA_PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]


def build_tiny_processor(arch: str, tokenizer: Qwen2Tokenizer | None = None) -> ProcessorMixin:
    """Build the processor (tokenizer + image processor + video processor) of a tiny model.

    Args:
        arch: one of :data:`TINY_ARCHITECTURES`.
        tokenizer: the tokenizer to use; by default :func:`build_tiny_tokenizer` (with ``<image>``/``<video>``
            for LLaVA-OneVision). It is used as is (not copied).

    Returns:
        - ``qwen2_5_vl``: ``Qwen2_5_VLProcessor``, patch 14, merge 2, 4..16 merged tokens per image.
        - ``qwen2_vl``: ``Qwen2VLProcessor``, same geometry.
        - ``qwen3_vl``: ``Qwen3VLProcessor``, patch 16 (image sides are rounded to multiples of 32).
        - ``llava_onevision``: ``LlavaOnevisionProcessor``, 28x28 tiles, 4 tokens per tile, anyres pinpoints up
          to 56x56, ``vision_feature_select_strategy="full"``, :data:`LLAVA_CHAT_TEMPLATE`.

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    _check_arch(arch)
    tokenizer = tokenizer if tokenizer is not None else _default_tokenizer(arch)
    if arch == "llava_onevision":
        _token_ids(tokenizer, LLAVA_SPECIAL_TOKENS)
        from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

        size = {"height": _LLAVA_TILE, "width": _LLAVA_TILE}
        return LlavaOnevisionProcessor(
            image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=_LLAVA_PINPOINTS),
            tokenizer=tokenizer,
            video_processor=LlavaOnevisionVideoProcessor(size=size),
            num_image_tokens=(_LLAVA_TILE // _LLAVA_PATCH) ** 2,
            vision_feature_select_strategy="full",
            chat_template=LLAVA_CHAT_TEMPLATE,
        )

    _token_ids(tokenizer, QWEN_SPECIAL_TOKENS)
    from transformers import Qwen2VLImageProcessor

    if arch == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        factor = 32  # patch 16 x merge 2
        size = {"shortest_edge": factor * factor * 4, "longest_edge": factor * factor * 16}
        kwargs: dict[str, Any] = {"size": size, "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2}
        return Qwen3VLProcessor(
            image_processor=Qwen2VLImageProcessor(**kwargs),
            tokenizer=tokenizer,
            video_processor=Qwen3VLVideoProcessor(cap_pixels_per_frame=True, **kwargs),
            chat_template=QWEN_CHAT_TEMPLATE,
        )

    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    factor = 28  # patch 14 x merge 2
    size = {"shortest_edge": factor * factor * 4, "longest_edge": factor * factor * 16}
    kwargs = {"size": size, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    processor_cls = Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen2VLProcessor
    return processor_cls(
        image_processor=Qwen2VLImageProcessor(**kwargs),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(cap_pixels_per_frame=True, **kwargs),
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def _text_config(tokenizer: Qwen2Tokenizer, ids: dict[str, int], **extra: Any) -> dict[str, Any]:
    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
        # Large random weights: with the usual 0.02 the (tied) embedding of the last input token dominates the
        # logits, so every prompt greedily continues with the same token and batching bugs go unnoticed.
        "initializer_range": 0.2,
    }
    config.update(extra)
    return config


def _build_config(arch: str, tokenizer: Qwen2Tokenizer) -> Any:
    if arch == "llava_onevision":
        from transformers import LlavaOnevisionConfig

        ids = _token_ids(tokenizer, (*QWEN_SPECIAL_TOKENS, *LLAVA_SPECIAL_TOKENS))
        return LlavaOnevisionConfig(
            vision_config={
                "model_type": "siglip_vision_model",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": _LLAVA_TILE,
                "patch_size": _LLAVA_PATCH,
                "vision_use_head": False,
            },
            text_config={"model_type": "qwen2", **_text_config(tokenizer, ids)},
            image_token_index=ids["<image>"],
            video_token_index=ids["<video>"],
            image_grid_pinpoints=_LLAVA_PINPOINTS,
            vision_feature_select_strategy="full",
            vision_feature_layer=-1,
            tie_word_embeddings=True,
        )

    ids = _token_ids(tokenizer, QWEN_SPECIAL_TOKENS)
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
    }
    mrope = {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]}
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        return Qwen2_5_VLConfig(
            text_config=_text_config(tokenizer, ids, rope_parameters=mrope),
            vision_config={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 64,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 56,
                "fullatt_block_indexes": [1],
                "tokens_per_second": 2,
            },
            **common,
        )
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig

        return Qwen2VLConfig(
            text_config=_text_config(tokenizer, ids, rope_parameters=mrope),
            vision_config={
                "depth": 2,
                "embed_dim": 32,
                "hidden_size": 64,
                "mlp_ratio": 2,
                "num_heads": 2,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
            },
            **common,
        )
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        text_config=_text_config(tokenizer, ids, head_dim=16, rope_parameters={**mrope, "mrope_interleaved": True}),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0, 1],
        },
        **common,
    )


def build_tiny_model(arch: str, tokenizer: Qwen2Tokenizer | None = None, seed: int = 0) -> PreTrainedModel:
    """Build a tiny random ``*ForConditionalGeneration`` model (float32, CPU, ``eval()`` mode).

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
    _check_arch(arch)
    import torch
    from transformers import AutoModelForImageTextToText

    tokenizer = tokenizer if tokenizer is not None else _default_tokenizer(arch)
    config = _build_config(arch, tokenizer)
    cpu_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    finally:
        torch.random.set_rng_state(cpu_state)
    ids = _token_ids(tokenizer, ("<|im_end|>", "<|endoftext|>"))
    generation_config = model.generation_config
    generation_config.bos_token_id = None
    generation_config.eos_token_id = ids["<|im_end|>"]
    generation_config.pad_token_id = ids["<|endoftext|>"]
    generation_config.do_sample = False
    return model.eval()


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
    _check_arch(arch)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer if tokenizer is not None else _default_tokenizer(arch)
    processor = build_tiny_processor(arch, tokenizer)
    model = build_tiny_model(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
