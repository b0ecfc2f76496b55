"""Seeded, batch-invariant sampling in the in-process backend (``unifiedreward.judge.sampling``,
``TransformersBackend.sample``).

What infer+sift relies on: a sample's tokens depend only on its prompt, its seed, its sample index and the decoding
settings; the global torch RNG is untouched; the checkpoint's generation_config never changes how we decode.
"""

from __future__ import annotations

import pytest
import torch

from unifiedreward.chat import ChatPrompt
from unifiedreward.judge import GenerationConfig, TransformersBackend
from unifiedreward.judge.sampling import SeededSamplingProcessor, explicit_generate_kwargs, row_seed

SAMPLE = GenerationConfig(max_new_tokens=8, temperature=1.0, n=2)


def _prompt(text: str) -> ChatPrompt:
    return ChatPrompt(messages=[{"role": "user", "content": [{"type": "text", "text": text}]}])


PROMPTS = [_prompt("hello there"), _prompt("a much longer prompt about cats, dogs and a red square"), _prompt("x")]


def _texts(rows) -> list[list[str]]:
    return [[g.text for g in row] for row in rows]


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models("qwen2_5_vl")


# ----------------------------------------------------------------------------------------------------------------
# the logits processor


@pytest.mark.unit
def test_processor_draws_from_the_filtered_distribution():
    """4000 rows, each with its own seed, over P = (0.6, 0.3, 0.1): frequencies match; top_k=2 drops the last."""
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(4000, -1)
    draws = SeededSamplingProcessor(range(4000), temperature=1.0)(None, logits).argmax(-1)
    freq = torch.bincount(draws, minlength=3).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)
    top2 = SeededSamplingProcessor(range(4000), temperature=1.0, top_k=2)(None, logits).argmax(-1)
    assert set(top2.tolist()) == {0, 1}
    nucleus = SeededSamplingProcessor(range(4000), temperature=1.0, top_p=0.5)(None, logits).argmax(-1)
    assert set(nucleus.tolist()) == {0}  # 0.6 >= 0.5: the nucleus is the top token alone


@pytest.mark.unit
def test_processor_output_is_one_hot_and_rows_are_independent():
    scores = torch.randn(3, 11)
    out = SeededSamplingProcessor([7, 8, 9], temperature=0.7)(None, scores)
    assert ((out == 0).sum(-1) == 1).all() and torch.isinf(out).sum() == 3 * 10
    # row 1 alone, seeded like row 1 of the batch, draws the same token
    alone = SeededSamplingProcessor([8], temperature=0.7)(None, scores[1:2])
    assert alone.argmax(-1).item() == out[1].argmax(-1).item()


@pytest.mark.unit
def test_row_seed_is_stable_and_distinct():
    assert row_seed(3, 0) == row_seed(3, 0)
    assert len({row_seed(s, j) for s in range(20) for j in range(5)}) == 100
    assert 0 <= row_seed(-1, 2) < 2**63


@pytest.mark.unit
def test_every_decoding_setting_is_explicit():
    kwargs = explicit_generate_kwargs(GenerationConfig(max_new_tokens=5, repetition_penalty=1.2), pad_token_id=0)
    assert kwargs["do_sample"] is False and kwargs["num_beams"] == 1
    assert kwargs["max_new_tokens"] == 5 and kwargs["repetition_penalty"] == 1.2
    assert all(kwargs[k] is not None for k in ("temperature", "top_k", "top_p", "no_repeat_ngram_size"))


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [{"temperature": -1}, {"top_p": 0}, {"top_k": -1}, {"repetition_penalty": 0}, {"n": 0}, {"max_new_tokens": 0}],
)
def test_generation_config_validates(bad):
    with pytest.raises(ValueError):
        GenerationConfig(**bad)


# ----------------------------------------------------------------------------------------------------------------
# the backend


@pytest.mark.smoke
def test_same_seed_same_samples_whatever_the_batch(tiny):
    """Batch size, prompt order and batch neighbours change nothing; n samples per prompt differ."""
    model, processor = tiny
    seeds = [11, 12, 13]
    batched = TransformersBackend(model, processor, batch_size=4).sample(PROMPTS, SAMPLE, seeds=seeds)
    alone = TransformersBackend(model, processor, batch_size=1).sample(PROMPTS[::-1], SAMPLE, seeds=seeds[::-1])
    assert _texts(batched) == _texts(alone[::-1])
    assert all(len(row) == SAMPLE.n and row[0].text != row[1].text for row in batched)
    assert [[g.meta["seed"] for g in row] for row in batched] == [[s, s] for s in seeds]
    assert [[g.meta["sample_index"] for g in row] for row in batched] == [[0, 1]] * 3
    # copies of one prompt with one seed, in different batches and rows, give the same samples
    copies = TransformersBackend(model, processor, batch_size=3).sample([PROMPTS[0]] * 4, SAMPLE, seeds=[11] * 4)
    assert all(_texts([row]) == _texts(batched[:1]) for row in copies)


@pytest.mark.smoke
def test_different_seeds_give_different_samples(tiny):
    model, processor = tiny
    backend = TransformersBackend(model, processor, batch_size=4)
    first = backend.sample(PROMPTS, SAMPLE, seeds=[1, 2, 3])
    second = backend.sample(PROMPTS, SAMPLE, seeds=[4, 5, 6])
    assert all(a[0].text != b[0].text for a, b in zip(first, second, strict=True))
    # config.seed is the default seed of every prompt
    seeded = GenerationConfig(max_new_tokens=8, temperature=1.0, n=2, seed=1)
    assert _texts(backend.sample(PROMPTS[:1], seeded)) == _texts(first[:1])


@pytest.mark.smoke
def test_global_rng_is_untouched(tiny):
    model, processor = tiny
    backend = TransformersBackend(model, processor, batch_size=2)
    before = torch.random.get_rng_state()
    backend.sample(PROMPTS, GenerationConfig(max_new_tokens=4, temperature=1.0, seed=0))
    backend.sample(PROMPTS, GenerationConfig(max_new_tokens=4, temperature=1.0))  # fresh seeds: OS entropy
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.smoke
def test_checkpoint_generation_config_does_not_leak(tiny, monkeypatch):
    """A checkpoint shipping top_k=1 (Qwen2.5-VL's) must not turn sampling greedy, nor its repetition_penalty
    change greedy answers."""
    model, processor = tiny
    backend = TransformersBackend(model, processor, batch_size=4)
    greedy_config = GenerationConfig(max_new_tokens=8)
    clean_samples = _texts(backend.sample(PROMPTS, SAMPLE, seeds=[1, 2, 3]))
    clean_greedy = [g.text for g in backend.generate(PROMPTS, greedy_config)]
    monkeypatch.setattr(model.generation_config, "top_k", 1)
    monkeypatch.setattr(model.generation_config, "top_p", 0.001)
    monkeypatch.setattr(model.generation_config, "repetition_penalty", 50.0)
    monkeypatch.setattr(model.generation_config, "do_sample", True)
    assert _texts(backend.sample(PROMPTS, SAMPLE, seeds=[1, 2, 3])) == clean_samples
    assert [g.text for g in backend.generate(PROMPTS, greedy_config)] == clean_greedy
    assert [row[0] for row in clean_samples] != clean_greedy  # sampling is not greedy


@pytest.mark.smoke
def test_generate_and_sample_arguments(tiny):
    model, processor = tiny
    backend = TransformersBackend(model, processor)
    with pytest.raises(ValueError, match="sample"):
        backend.generate(PROMPTS, SAMPLE)
    with pytest.raises(ValueError, match="seeds"):
        backend.sample(PROMPTS, SAMPLE, seeds=[1])
    greedy = backend.sample(PROMPTS[:1], GenerationConfig(max_new_tokens=4, n=2))
    assert greedy[0][0].text == greedy[0][1].text and "seed" not in greedy[0][0].meta
