"""Tiny offline models: tokenizer, processors, model builders and saving (unifiedreward.testing.tiny_models)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch

from unifiedreward.testing.tiny_models import (
    LLAVA_SPECIAL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    TINY_ARCHITECTURES,
    build_tiny_model,
    build_tiny_processor,
    build_tiny_tokenizer,
    save_tiny_model,
)

pytestmark = pytest.mark.smoke

# ~1,500 characters of English in the register of a judging prompt, NOT part of the tokenizer's training text.
HELD_OUT_PROMPT = (
    "You are shown a text prompt and two images that a text-to-image model generated for it. Decide which image "
    "is the better result. Judge two things: how faithfully each image depicts everything the prompt asks for "
    "(objects, counts, colors, spatial layout, style) and how good each image looks (sharpness, lighting, natural "
    "anatomy, no visual artifacts). Weigh both aspects, explain briefly, and end with exactly one of the lines "
    '"Image 1 is better" or "Image 2 is better". Prompt: an orange cat wearing a tiny wizard hat, sitting on a '
    "stack of old books in a candle-lit library, digital art. Now consider a second case: a video of a man riding "
    "a horse along a beach at sunset; rate the temporal coherence of the motion, whether the horse's legs move "
    "plausibly, whether the lighting stays consistent between frames, and whether the scene matches the prompt. "
    "Give each criterion a score from 1 to 10 and a short justification, then the final score. Finally, a "
    "question-answering case: the question asks how many people are sitting at the table in the picture, and two "
    "answers are given, one says four and one says five. Look at the image and decide which answer is correct, "
    "and if neither is, say so. Keep the answer short and do not repeat the question. Remember that a picture "
    "that is beautiful but ignores the prompt should not win against one that follows it. If both candidates "
    "fail in the same way, prefer the one whose mistakes are smaller and easier to notice for a viewer."
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def test_tokenizer_is_deterministic(tokenizer):
    other = build_tiny_tokenizer()
    assert other.get_vocab() == tokenizer.get_vocab()
    assert other(HELD_OUT_PROMPT).input_ids == tokenizer(HELD_OUT_PROMPT).input_ids
    assert other.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_tokenizer_special_tokens(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id == 0
    assert tokenizer.bos_token is None
    ids = [tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS]
    assert len(set(ids)) == len(QWEN_SPECIAL_TOKENS)
    for token, token_id in zip(QWEN_SPECIAL_TOKENS, ids, strict=True):
        assert tokenizer(token).input_ids == [token_id]  # one atomic token, even next to text
        assert tokenizer(f"a{token}b").input_ids[1:-1] == [token_id]
    assert tokenizer.chat_template == QWEN_CHAT_TEMPLATE
    assert "<image>" not in tokenizer.get_vocab()


def test_tokenizer_extra_special_tokens():
    tok = build_tiny_tokenizer(LLAVA_SPECIAL_TOKENS)
    base = build_tiny_tokenizer()
    assert len(tok) == len(base) + 2
    for token in LLAVA_SPECIAL_TOKENS:
        assert tok(f"x{token}\n").input_ids[1] == tok.convert_tokens_to_ids(token)
    # the shared part of the vocabulary keeps its ids
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in base.get_vocab().items())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "héllo wörld ß",
        "中文 テキスト 한국어",
        "emoji 🎉🦜 and \t tabs \n newlines",
        "\x00\x7f\u200b",
    ],
)
def test_tokenizer_encodes_every_string(tokenizer, text):
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text


def test_tokenizer_merges_shorten_english(tokenizer):
    n_chars = len(HELD_OUT_PROMPT)
    n_tokens = len(tokenizer(HELD_OUT_PROMPT).input_ids)
    assert 1400 <= n_chars <= 1600
    # bytes only would be one token per character; the learned merges make it well over 2x shorter
    assert n_tokens < n_chars / 2.2, (n_chars, n_tokens)


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_build_tiny_model(arch):
    processor = build_tiny_processor(arch)
    model = build_tiny_model(arch, processor.tokenizer, seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    assert 50_000 < n_params < 1_000_000
    assert not model.training
    assert model.dtype == torch.float32
    tok = processor.tokenizer
    assert model.config.get_text_config().vocab_size == len(tok)
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert model.generation_config.bos_token_id is None
    image_token_id = getattr(model.config, "image_token_id", None) or model.config.image_token_index
    assert image_token_id == tok.convert_tokens_to_ids(processor.image_token)
    assert model.config.model_type == arch


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_build_tiny_model_is_deterministic_per_seed(arch):
    processor = build_tiny_processor(arch)
    rng_before = torch.random.get_rng_state()
    first = build_tiny_model(arch, processor.tokenizer, seed=0).state_dict()
    assert torch.equal(rng_before, torch.random.get_rng_state()), "the global RNG must be left untouched"
    second = build_tiny_model(arch, processor.tokenizer, seed=0).state_dict()
    other = build_tiny_model(arch, processor.tokenizer, seed=1).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_build_tiny_processor(arch):
    processor = build_tiny_processor(arch)
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it good?"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert rendered.endswith("<|im_start|>assistant\n")
    assert rendered.count(processor.image_token) == 1
    if arch == "llava_onevision":
        assert rendered == "<|im_start|>user\n<image>\nIs it good?<|im_end|>\n<|im_start|>assistant\n"
        assert processor.num_image_tokens == 4
        assert processor.vision_feature_select_strategy == "full"
    else:
        assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
        assert "<|vision_start|><|image_pad|><|vision_end|>Is it good?" in rendered
        assert processor.image_processor.patch_size == (16 if arch == "qwen3_vl" else 14)


def test_llava_template_renders_strings_and_parts():
    processor = build_tiny_processor("llava_onevision")
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Rate it."}]},
        {"role": "assistant", "content": "Good."},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<video>\nRate it.<|im_end|>\n"
        "<|im_start|>assistant\nGood.<|im_end|>\n"
    )


def test_bad_arch_and_tokenizer():
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build_tiny_processor("llama")
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build_tiny_model("qwen2")
    with pytest.raises(ValueError, match="<image>"):
        build_tiny_processor("llava_onevision", build_tiny_tokenizer())


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_save_tiny_model(arch, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = save_tiny_model(arch, str(tmp_path / arch), seed=3)
    assert out == tmp_path / arch
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= files
    assert "chat_template.jinja" in files or "processor_config.json" in files
    reloaded = AutoModelForImageTextToText.from_pretrained(out)
    built = build_tiny_model(arch, seed=3)
    assert type(reloaded) is type(built)
    ref = built.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in reloaded.state_dict().items())
    processor = AutoProcessor.from_pretrained(out)
    assert type(processor) is type(build_tiny_processor(arch))


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_tiny_model_output_depends_on_the_input(arch):
    """Random but not degenerate: different prompts give clearly different next-token logits and continuations."""
    processor = build_tiny_processor(arch)
    model = build_tiny_model(arch, processor.tokenizer)
    texts = ["Image 1 is better.", "The second video looks smoother"]
    batch = processor.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[:, -1]
        generated = model.generate(**batch, max_new_tokens=4, do_sample=False)[:, batch["input_ids"].shape[1] :]
    assert (logits[0] - logits[1]).abs().max() > 0.1
    assert not torch.equal(generated[0], generated[1])
    assert len(set(generated[0].tolist())) > 1  # not stuck repeating one token


def test_product_code_does_not_import_the_test_fixtures():
    """The world, the demo and the tiny builders live in the package proper; only tests import ``testing``."""
    import ast
    from pathlib import Path

    import unifiedreward

    root = Path(unifiedreward.__file__).parent
    offenders = []
    for package in ("synth", "demo", "tiny"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                offenders += [f"{path.name}: {n}" for n in names if n.startswith("unifiedreward.testing")]
    assert offenders == []


def _plain(config) -> dict:
    """A config as a dict without its ``dtype`` entries (set when weights are built)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "dtype"}
        return value

    return strip(config.to_dict())


def test_one_parametrised_builder_serves_the_tests_and_the_demo():
    from unifiedreward import tiny
    from unifiedreward.demo import DemoArguments, build_model
    from unifiedreward.demo.args import model_size
    from unifiedreward.synth import build_world_tokenizer
    from unifiedreward.testing import media as testing_media
    from unifiedreward.testing import tiny_models

    # the test fixtures re-export the package's builders (one implementation each)
    assert tiny_models.train_byte_bpe is tiny.train_byte_bpe
    assert tiny_models.QWEN_SPECIAL_TOKENS is tiny.QWEN_SPECIAL_TOKENS
    from unifiedreward.synth.media import write_video

    assert testing_media.write_video is write_video
    tokenizer = build_tiny_tokenizer()
    fixture = tiny_models.build_tiny_model("qwen2_5_vl", tokenizer).config
    assert _plain(fixture) == _plain(tiny.build_config("qwen2_5_vl", tokenizer, tiny_models.TEST_SIZE))
    assert (fixture.text_config.hidden_size, fixture.text_config.num_hidden_layers) == (64, 2)
    assert fixture.text_config.initializer_range == 0.2 and fixture.vision_config.fullatt_block_indexes == [1]
    # the demo's model: the same builder with its own sizes (text 4 x 128, vision 4 x 64, std 0.02)
    world = build_world_tokenizer()
    for arch in ("qwen2_vl", "qwen2_5_vl"):
        args = DemoArguments(arch=arch)
        model = build_model(world, args)
        config = model.config
        assert _plain(config) == _plain(tiny.build_config(arch, world, model_size(args)))
        assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (128, 4)
        assert config.text_config.initializer_range == 0.02 and config.vision_config.depth == 4
        assert config.text_config.rope_parameters["mrope_section"] == [6, 5, 5]  # sums to head_dim / 2 = 16
        if arch == "qwen2_5_vl":
            assert config.vision_config.fullatt_block_indexes == [0, 1, 2, 3]
            assert config.vision_config.window_size == 112
        else:
            assert model.num_parameters() == 970_496  # the size docs/demo.md states
        again = build_model(world, args)
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True))
