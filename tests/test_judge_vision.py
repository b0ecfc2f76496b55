"""Cheap vision encoding (unifiedreward.judge.vision): batched windowed attention and per-call feature reuse.

Every optimised path is compared with the stock transformers path on tiny random models (fp32, CPU).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.judge.vision import (
    VisionFeatureCache,
    build_attention_plan,
    encode_vision,
    is_patched,
    patch_qwen25_vision_attention,
    patch_vision_attention,
    supports_fast_vision_attention,
    supports_vision_feature_cache,
    unpatch_vision_attention,
    vision_feature_cache,
)
from unifiedreward.testing.tiny_models import build_tiny_model, build_tiny_processor

pytestmark = pytest.mark.smoke

ATOL = 1e-5
IMG = "<|vision_start|><|image_pad|><|vision_end|>"
VID = "<|vision_start|><|video_pad|><|vision_end|>"
QWEN_ARCHS = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")


@pytest.fixture(scope="module")
def tiny():
    """``arch -> (model, processor)``, built once per module (models are never left patched by a test)."""
    built = {}

    def get(arch: str):
        if arch not in built:
            processor = build_tiny_processor(arch)
            built[arch] = (build_tiny_model(arch, processor.tokenizer), processor)
        return built[arch]

    return get


def _image(seed: int, height: int, width: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _video(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def _count_tower_rows(model) -> tuple[list[int], object]:
    """Patch rows each vision-tower call received (forward pre-hook) and the hook handle."""
    rows: list[int] = []
    handle = model.model.visual.register_forward_pre_hook(lambda mod, args: rows.append(int(args[0].shape[0])))
    return rows, handle


def _vision_inputs(grid_thw: list[tuple[int, int, int]], patch: int = 14, seed: int = 0):
    """Random patch rows for a tiny tower: ``(pixel_values (N, 3*2*patch*patch), grid_thw (n, 3))``."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.tensor(grid_thw)
    return torch.randn(int(grid.prod(-1).sum()), 3 * 2 * patch * patch, generator=generator), grid


# ------------------------------------------------------------------------------------------------- plan & geometry


def test_attention_plan_groups_equal_lengths():
    # windows of 16, 16, 8 | 16, 8, 8, 4: three lengths -> three groups, a permutation is needed
    lengths = [16, 16, 8, 16, 8, 8, 4]
    cu = torch.tensor([0, *np.cumsum(lengths).tolist()], dtype=torch.int32)
    plan = build_attention_plan(cu)
    assert plan.seq_len == sum(lengths)
    assert plan.groups == ((16, 3), (8, 3), (4, 1))
    assert plan.num_chunks == len(lengths)
    assert plan.perm is not None and torch.equal(plan.perm[plan.inv_perm], torch.arange(sum(lengths)))
    assert plan.perm[:16].tolist() == list(range(16)) and plan.perm[32:48].tolist() == list(range(40, 56))
    # equal chunks (or consecutive runs of equal chunks) need no permutation; empty chunks are dropped
    assert build_attention_plan(torch.tensor([0, 64, 128, 192])).perm is None
    plan = build_attention_plan(torch.tensor([0, 64, 64, 128, 160, 192]))
    assert plan.groups == ((64, 2), (32, 2)) and plan.perm is None
    with pytest.raises(ValueError, match="start at 0"):
        build_attention_plan(torch.tensor([4, 8]))


def test_qwen25_7b_window_geometry():
    """7B tower (patch 14, merge 2, window 112): 8x8 = 64-patch windows; edge windows only off the 112 px grid."""
    from transformers.vision_utils import get_vision_window_index

    _, cu = get_vision_window_index(torch.tensor([[1, 32, 32]]), 2, 112, 14)  # a 448x448 image
    assert (cu[1:] - cu[:-1]).tolist() == [64] * 16
    _, cu = get_vision_window_index(torch.tensor([[1, 34, 34]]), 2, 112, 14)  # 476x476: edge windows
    assert sorted(build_attention_plan(cu).groups) == [(4, 1), (16, 8), (64, 16)]  # 3 attention calls, not 25


# ------------------------------------------------------------------------------------------------- batched attention

TOWER_CASES = {
    "one_image": [(1, 8, 8)],
    "images_with_edge_windows": [(1, 6, 8), (1, 10, 10), (1, 4, 6), (1, 8, 8), (1, 6, 8)],
    "video": [(3, 6, 8)],
    "video_and_images": [(2, 4, 6), (1, 10, 10), (1, 4, 4)],
}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("case", sorted(TOWER_CASES))
def test_batched_attention_matches_stock_tower(tiny, case, attn):
    model, _ = tiny("qwen2_5_vl")
    model.set_attn_implementation(attn)
    try:
        pixel_values, grid = _vision_inputs(TOWER_CASES[case])
        with torch.no_grad():
            ref = model.model.visual(pixel_values, grid_thw=grid)
            with patch_qwen25_vision_attention(model) as handle:
                assert is_patched(model)
                out = model.model.visual(pixel_values, grid_thw=grid)
        assert not is_patched(model)
    finally:
        model.set_attn_implementation("sdpa")
    torch.testing.assert_close(out.pooler_output, ref.pooler_output, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, atol=ATOL, rtol=0)
    # one batched forward per block, and far fewer attention calls than the stock per-chunk loop
    assert handle.stats["forwards"] == 2 and handle.stats["fallbacks"] == 0
    assert handle.stats["plans"] == 2  # one per cu_seqlens tensor (windows, full), not one per layer
    from transformers.vision_utils import get_vision_window_index

    _, cu_window = get_vision_window_index(grid, 2, model.config.vision_config.window_size, 14)
    lengths = (cu_window[1:] - cu_window[:-1]).tolist()
    stock_calls = len(lengths) + int(grid[:, 0].sum())  # windowed block: per window; full block: per frame
    distinct = len(set(lengths)) + len(set((grid[:, 1] * grid[:, 2]).tolist()))
    assert handle.stats["attention_calls"] == distinct
    assert distinct < stock_calls


@pytest.mark.parametrize("arch", QWEN_ARCHS)
def test_batched_attention_matches_stock_model_logits(tiny, arch):
    """Two prompts, images of several sizes (edge windows) and a video; also greedy generation."""
    model, processor = tiny(arch)
    images = [_image(1, 84, 112), _image(2, 112, 112), _image(3, 56, 84)]
    texts = [f"judge {IMG} versus {IMG} now", f"and {IMG} with {VID} here"]
    inputs = processor(
        text=texts,
        images=images,
        videos=[_video(4, 4, 56, 84)],
        return_tensors="pt",
        padding=True,
        padding_side="left",
    )
    with torch.no_grad():
        ref = model(**inputs).logits
        ref_gen = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        with patch_vision_attention(model) as handle:
            out = model(**inputs).logits
            gen = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    assert torch.equal(gen, ref_gen)
    assert handle.stats["forwards"] > 0 and not is_patched(model)


def test_patch_is_per_instance_and_reversible(tiny):
    model, _ = tiny("qwen2_5_vl")
    other = build_tiny_model("qwen2_5_vl", seed=1)
    attention = [m for m in model.modules() if supports_fast_vision_attention(m)]
    assert len(attention) == model.config.vision_config.depth
    stock_forward = type(attention[0]).forward
    handle = patch_vision_attention(model)
    try:
        assert is_patched(model) and not is_patched(other)
        assert patch_vision_attention(model) is handle  # patching twice returns the live handle
        assert all("forward" in m.__dict__ for m in attention)
        assert type(attention[0]).forward is stock_forward  # the class is untouched
        assert not any("forward" in m.__dict__ for m in other.modules() if supports_fast_vision_attention(m))
    finally:
        assert unpatch_vision_attention(model)
    assert not is_patched(model) and not any("forward" in m.__dict__ for m in attention)
    handle.unpatch()  # idempotent
    assert not unpatch_vision_attention(model)


def test_patch_rejects_models_without_qwen_vision_attention(tiny):
    model = build_tiny_model("llava_onevision")
    with pytest.raises(TypeError, match="nothing to patch"):
        patch_vision_attention(model)
    handle = patch_vision_attention(model, strict=False)
    assert handle.modules == [] and not is_patched(model)


def test_other_attention_implementations_take_the_stock_path(tiny):
    """Anything but sdpa/eager (flash varlen, flex, hub kernels) runs the untouched stock forward."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    AttentionInterface.register("unifiedreward_test_attention", sdpa_attention_forward)
    model, _ = tiny("qwen2_5_vl")
    vision_config = model.model.visual.config
    pixel_values, grid = _vision_inputs([(1, 6, 8), (1, 4, 4)])
    with torch.no_grad():
        ref = model.model.visual(pixel_values, grid_thw=grid).pooler_output
        with patch_vision_attention(model) as handle:
            vision_config._attn_implementation = "unifiedreward_test_attention"
            try:
                out = model.model.visual(pixel_values, grid_thw=grid).pooler_output
            finally:
                vision_config._attn_implementation = "sdpa"
    assert handle.stats["fallbacks"] == vision_config.depth and handle.stats["forwards"] == 0
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------------- feature reuse


@pytest.mark.parametrize("arch", QWEN_ARCHS)
def test_repeated_image_is_encoded_once(tiny, arch):
    """A batch where the same image appears 4 times: the tower sees it once; logits and greedy text are stock."""
    model, processor = tiny(arch)
    same, other = _image(10, 84, 112), _image(11, 112, 84)
    texts = [f"first {IMG} vs {IMG}", f"second {IMG} vs {IMG}", f"third {IMG} vs {IMG}"]
    images = [same, other, other, same, same, same]  # `same` x4, `other` x2
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
    grid = inputs["image_grid_thw"]
    rows_per_item = grid.prod(-1).tolist()
    rows, hook = _count_tower_rows(model)
    try:
        with torch.no_grad():
            ref = model(**inputs).logits
            ref_gen = model.generate(**inputs, max_new_tokens=5, do_sample=False)
            assert rows == [sum(rows_per_item)] * 2
            rows.clear()
            with vision_feature_cache(model) as cache:
                out = model(**inputs).logits
                assert rows == [rows_per_item[0] + rows_per_item[1]]  # `same` x4 and `other` x2 -> 2 items
                gen = model.generate(**inputs, max_new_tokens=5, do_sample=False)
                assert len(rows) == 1  # the second call is served from the cache: no tower call at all
    finally:
        hook.remove()
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    assert torch.equal(gen, ref_gen)
    stats = cache.stats
    assert (stats.items, stats.encoded, stats.duplicates, stats.hits) == (12, 2, 4, 6)
    assert stats.patches_encoded == rows_per_item[0] + rows_per_item[1]
    assert "get_image_features" not in model.model.__dict__  # restored on exit


def test_videos_and_images_mixed_are_deduplicated(tiny):
    model, processor = tiny("qwen2_5_vl")
    image, video = _image(20, 56, 84), _video(21, 4, 56, 56)
    texts = [f"a {IMG} {VID}", f"b {VID} {IMG}", f"c {IMG}"]
    inputs = processor(
        text=texts, images=[image, image, image], videos=[video, video], return_tensors="pt", padding=True
    )
    rows, hook = _count_tower_rows(model)
    try:
        with torch.no_grad():
            ref = model(**inputs).logits
            rows.clear()
            with vision_feature_cache(model) as cache, patch_vision_attention(model):
                out = model(**inputs).logits
    finally:
        hook.remove()
    image_rows = int(inputs["image_grid_thw"][0].prod())
    video_rows = int(inputs["video_grid_thw"][0].prod())
    assert sorted(rows) == sorted([image_rows, video_rows])
    assert (cache.stats.items, cache.stats.encoded) == (5, 2)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_distinct_images_are_not_conflated(tiny):
    """Same size, and even one pixel apart: different items; each keeps its own features."""
    model, processor = tiny("qwen2_5_vl")
    base = np.asarray(_image(30, 84, 112)).copy()
    nudged = base.copy()
    nudged[40, 50, 1] ^= 1
    images = [Image.fromarray(base), Image.fromarray(nudged), _image(31, 84, 112), Image.fromarray(base)]
    inputs = processor(text=[f"{IMG} {IMG}", f"{IMG} {IMG}"], images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]).pooler_output
        with vision_feature_cache(model) as cache:
            out = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]).pooler_output
    assert (cache.stats.encoded, cache.stats.duplicates) == (3, 1)
    assert len(out) == 4
    for mine, stock in zip(out, ref, strict=True):
        torch.testing.assert_close(mine, stock, atol=ATOL, rtol=0)
    assert not torch.equal(out[0], out[1])


def test_encode_vision_feeds_mm_encoder_outputs(tiny):
    """The functional form: precomputed, deduplicated features passed as ``mm_encoder_outputs``."""
    model, processor = tiny("qwen3_vl")  # deepstack features travel too
    a, b = _image(40, 64, 96), _image(41, 96, 64)
    inputs = processor(text=[f"{IMG} {IMG}", f"{IMG} {IMG}"], images=[a, b, b, a], return_tensors="pt", padding=True)
    cache = VisionFeatureCache()
    with torch.no_grad():
        ref = model(**inputs).logits
        features = encode_vision(model, inputs["pixel_values"], inputs["image_grid_thw"], cache=cache)
        kwargs = {k: v for k, v in inputs.items() if k != "pixel_values"}
        out = model(**kwargs, mm_encoder_outputs={"image": features}).logits
        again = encode_vision(model, inputs["pixel_values"], inputs["image_grid_thw"], cache=cache)
    assert len(features.pooler_output) == 4 and len(features.deepstack_features) == 2
    assert (cache.stats.encoded, cache.stats.duplicates, cache.stats.hits) == (2, 2, 4)
    assert again.last_hidden_state is None  # not kept by default (the model does not read it)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="modality"):
        encode_vision(model, inputs["pixel_values"], inputs["image_grid_thw"], modality="audio")


def test_last_hidden_state_and_tuple_outputs(tiny):
    model, processor = tiny("qwen2_5_vl")
    a, b = _image(50, 84, 112), _image(51, 56, 56)
    inputs = processor(text=[f"{IMG} {IMG} {IMG}"], images=[a, b, a], return_tensors="pt")
    args = (inputs["pixel_values"], inputs["image_grid_thw"])
    with torch.no_grad():
        ref = model.model.get_image_features(*args)
        with vision_feature_cache(model, VisionFeatureCache(keep_last_hidden_state=True)) as cache:
            first = model.model.get_image_features(*args)
            second = model.model.get_image_features(*args)
            as_tuple = model.model.get_image_features(*args, return_dict=False)
    for out in (first, second):
        torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, atol=ATOL, rtol=0)
        torch.testing.assert_close(torch.cat(out.pooler_output), torch.cat(ref.pooler_output), atol=ATOL, rtol=0)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], second.last_hidden_state)
    assert cache.stats.encoded == 2 and cache.stats.hits == 6


def test_grad_mode_dedupes_within_call_only(tiny):
    model, processor = tiny("qwen2_5_vl")
    image = _image(60, 56, 84)
    inputs = processor(text=[f"{IMG} {IMG}"], images=[image, image], return_tensors="pt")
    rows, hook = _count_tower_rows(model)
    weight = model.model.visual.patch_embed.proj.weight
    try:
        with vision_feature_cache(model) as cache:
            loss = model(**inputs).logits.float().pow(2).mean()
            loss.backward()
            assert weight.grad is not None and weight.grad.abs().sum() > 0
            model(**inputs)
    finally:
        hook.remove()
        model.zero_grad(set_to_none=True)
    one_image = int(inputs["image_grid_thw"][0].prod())
    assert rows == [one_image, one_image]  # deduplicated in each call, never served from the cache
    assert len(cache) == 0 and cache.stats.hits == 0 and cache.stats.duplicates == 2


def test_accelerate_hooked_module_keeps_its_hook(tiny):
    """With an accelerate device-map hook the hook's ``_old_forward`` is swapped, the hook itself stays."""
    model, _ = tiny("qwen2_5_vl")
    attention = model.model.visual.blocks[0].attn
    calls = []

    def hooked_forward(*args, **kwargs):  # what accelerate's add_hook_to_module installs
        calls.append(1)
        return attention._old_forward(*args, **kwargs)

    attention.__dict__["_hf_hook"] = object()
    attention.__dict__["_old_forward"] = attention.forward
    attention.__dict__["forward"] = hooked_forward
    pixel_values, grid = _vision_inputs([(1, 6, 8)])
    try:
        with torch.no_grad():
            ref = model.model.visual(pixel_values, grid_thw=grid).pooler_output
            with patch_vision_attention(model) as handle:
                assert attention.__dict__["forward"] is hooked_forward
                out = model.model.visual(pixel_values, grid_thw=grid).pooler_output
            assert handle.stats["forwards"] == 2 and len(calls) == 2
            assert attention.__dict__["_old_forward"].__func__ is type(attention).forward  # restored
    finally:
        for key in ("_hf_hook", "_old_forward", "forward"):
            attention.__dict__.pop(key, None)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_bypass_cache_binding_and_restore(tiny):
    model, processor = tiny("qwen2_5_vl")
    other_model, _ = tiny("qwen2_vl")
    image = _image(70, 56, 56)
    inputs = processor(text=[f"{IMG} {IMG}"], images=[image, image], return_tensors="pt")
    cache = VisionFeatureCache(max_items=1)
    with torch.no_grad(), vision_feature_cache(model, cache):
        model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"], output_hidden_states=True)
        assert cache.stats.bypassed == 1 and len(cache) == 0
    with pytest.raises(ValueError, match="another model"), vision_feature_cache(other_model, cache):
        pass
    llava = build_tiny_model("llava_onevision")
    assert supports_vision_feature_cache(model) and not supports_vision_feature_cache(llava)
    with pytest.raises(TypeError, match="Qwen-style"), vision_feature_cache(llava):
        pass
    with pytest.raises(RuntimeError, match="boom"), vision_feature_cache(model):
        assert "get_image_features" in model.model.__dict__
        raise RuntimeError("boom")
    assert "get_image_features" not in model.model.__dict__ and "get_video_features" not in model.model.__dict__


def test_eager_batches_are_capped_in_memory(tiny, monkeypatch):
    """Eager materialises the scores, so its batches are split to bound memory; results are unchanged."""
    from unifiedreward.judge import vision_attention

    model, _ = tiny("qwen2_5_vl")
    heads = model.config.vision_config.num_heads
    monkeypatch.setattr(vision_attention, "_EAGER_MAX_SCORES", 2 * heads * 16 * 16)  # at most two 16-token windows per call
    pixel_values, grid = _vision_inputs([(1, 8, 8), (1, 6, 8)])
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            ref = model.model.visual(pixel_values, grid_thw=grid).pooler_output
            with patch_vision_attention(model) as handle:
                out = model.model.visual(pixel_values, grid_thw=grid).pooler_output
    finally:
        model.set_attn_implementation("sdpa")
    # windowed block: 6 windows of 16 -> 3 calls, 2 of 8 -> 1; full block: 64 and 48 tokens -> 1 call each
    assert handle.stats["attention_calls"] == 3 + 1 + 2
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_cache_evicts_least_recently_used(tiny):
    model, processor = tiny("qwen2_5_vl")
    a, b = _image(80, 56, 56), _image(81, 56, 56)
    batches = [processor(text=[IMG], images=[image], return_tensors="pt") for image in (a, b, a)]
    cache = VisionFeatureCache(max_items=1)
    with torch.no_grad(), vision_feature_cache(model, cache):
        for inputs in batches:
            model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        assert len(cache) == 1 and cache.stats.encoded == 3  # `a` was evicted by `b`
        model.model.get_image_features(batches[2]["pixel_values"], batches[2]["image_grid_thw"])
    assert cache.stats.hits == 1 and cache.stats.encoded == 3
    cache.clear()
    assert len(cache) == 0
