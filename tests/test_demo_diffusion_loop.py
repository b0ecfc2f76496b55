"""The diffusion closed loop's parts: the tiny text-to-image model, the controls, the ground-truth rate, the report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from unifiedreward.demo.diffusion_loop import (
    LOOP_ATTRIBUTES,
    alignment,
    control_pairs,
    diffusion_loop_table,
    loop_spec,
    pair_precision,
)
from unifiedreward.demo.report import diffusion_target_lines
from unifiedreward.demo.t2i import (
    CAPTION_WORDS,
    MAX_TOKENS,
    build_pipeline,
    pretrain,
    render_small,
    scene_batch,
    word_tokenizer,
)


def test_word_tokenizer_one_token_per_word():
    tokenizer = word_tokenizer()
    for word in CAPTION_WORDS:
        assert len(tokenizer(word).input_ids) == 3, word  # <s> word </s>
    ids = tokenizer("a red circle on the left", padding="max_length", max_length=MAX_TOKENS).input_ids
    assert tokenizer.convert_ids_to_tokens(ids[:8]) == ["<s>", "a", "red", "circle", "on", "the", "left", "</s>"]
    assert ids[8:] == [tokenizer.pad_token_id] * (MAX_TOKENS - 8) and tokenizer.pad_token_id == tokenizer.eos_token_id
    assert tokenizer.convert_ids_to_tokens(tokenizer("a pink circle").input_ids)[2] == "<unk>"


def test_pipeline_builds_pretrains_and_reloads(tmp_path):
    from diffusers import DiffusionPipeline

    path = build_pipeline(tmp_path / "t2i", size=16, seed=0)
    pipe = DiffusionPipeline.from_pretrained(str(path))
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.unet.config.sample_size == 8
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.tokenizer("a red circle").input_ids == word_tokenizer()("a red circle").input_ids  # saved and loaded
    unet_before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}

    specs = [loop_spec(0, "pretrain", i) for i in range(8)]
    pixels = scene_batch([render_small(spec, rng, 16) for spec, rng in specs])
    assert pixels.shape == (8, 3, 16, 16) and pixels.min() >= -1 and pixels.max() <= 1
    history = pretrain(path, pixels, [spec.caption() for spec, _ in specs], vae_steps=2, unet_steps=3, batch_size=4,
                       progress=False)  # fmt: skip
    assert len(history["vae"]) == 2 and len(history["unet"]) == 3
    trained = DiffusionPipeline.from_pretrained(str(path))
    assert trained.vae.config.scaling_factor == pytest.approx(history["scaling_factor"])
    with torch.no_grad():
        latents = trained.vae.encode(pixels).latent_dist.mode() * trained.vae.config.scaling_factor
    assert latents.shape == (8, 4, 8, 8) and latents.std().item() == pytest.approx(1.0, rel=1e-4)
    changed = [k for k, v in trained.unet.state_dict().items() if not torch.equal(v, unet_before[k])]
    assert changed, "pre-training left the UNet unchanged"
    image = trained("a red circle on the left", num_inference_steps=2, guidance_scale=1.0, height=16, width=16,
                    generator=torch.Generator().manual_seed(0)).images[0]  # fmt: skip
    assert image.size == (16, 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_pipeline(tmp_path / "bad", size=30)


def test_loop_specs_are_seeded_single_objects_and_splits_differ():
    first = [loop_spec(3, "sift", i)[0] for i in range(20)]
    assert first == [loop_spec(3, "sift", i)[0] for i in range(20)]
    assert {spec.count for spec in first} == {1}
    assert first != [loop_spec(3, "heldout", i)[0] for i in range(20)]
    assert first != [loop_spec(4, "sift", i)[0] for i in range(20)]


def _set(key, n=4):
    return {"id": key, "caption": f"caption {key}", "images": [f"image_{key}_{j}.png" for j in range(n)]}


def test_control_pairs_ground_truth_and_balanced_random():
    sets = [_set("a"), _set("b"), _set("c"), _set("d")]
    scores = {"a": [3, 1, 3, 0], "b": [2, 2, 2, 2], "c": [1, 2, 1, 1], "d": [2.9, 2.95, 2.8, 2.9]}
    arms = control_pairs(sets, scores, kept={"a", "b"}, seed=0)
    truth = {p["id"]: p for p in arms["ground truth"]}
    assert set(truth) == {"a", "c"}  # b: all equal; d: as many attributes right, only colour distances differ
    assert truth["a"]["chosen"] in {"image_a_0.png", "image_a_2.png"} and truth["a"]["rejected"] == "image_a_3.png"
    assert truth["c"]["chosen"] == "image_c_1.png" and truth["c"]["caption"] == "caption c"
    assert [p["id"] for p in arms["random"]] == ["a", "b"]  # only the sets the reward model kept
    assert control_pairs(sets, scores, kept={"a", "b"}, seed=0) == arms

    many = [_set(str(i), 2) for i in range(101)]
    by_name = {str(i): [2, 0] for i in range(101)}
    names = {s["id"]: dict(zip(s["images"], by_name[s["id"]], strict=True)) for s in many}
    for seed in range(3):
        pairs = control_pairs(many, by_name, kept={s["id"] for s in many}, seed=seed)["random"]
        counts = pair_precision(pairs, names)
        assert counts["right"] + counts["reversed"] == 101 and counts["right"] in {50, 51}


def test_pair_precision():
    scores = {"a": {"x": 3, "y": 1, "z": 1}}
    pairs = [{"id": "a", "chosen": "x", "rejected": "y"}, {"id": "a", "chosen": "y", "rejected": "x"},
             {"id": "a", "chosen": "y", "rejected": "z"}]  # fmt: skip
    assert pair_precision(pairs, scores) == {"right": 1, "reversed": 1, "same": 1, "precision": 0.5}
    assert pair_precision([], scores)["precision"] is None


class _Painter:
    """A stand-in pipeline that draws the caption's scene (or a recoloured one) with the world's renderer."""

    def __init__(self, recolor: str | None = None):
        self.recolor = recolor
        self.seeds: list[int] = []

    def set_progress_bar_config(self, **_):
        pass

    def __call__(self, captions, *, generator, height, **_):
        import dataclasses

        from unifiedreward.synth.world import item_rng

        images = []
        for caption, gen in zip(captions, generator, strict=True):
            spec = CAPTIONS[caption]
            if self.recolor:
                spec = dataclasses.replace(spec, color=self.recolor)
            seed = gen.initial_seed()
            self.seeds.append(seed)
            images.append(render_small(spec, item_rng(seed, 0), height))
        return SimpleNamespace(images=images)


CAPTIONS: dict = {}


def test_alignment_checks_pixels_with_the_same_seeds_for_every_model():
    specs = [loop_spec(0, "heldout", i)[0] for i in range(6)]
    specs = [s for s in specs if s.color != "red"][:4]
    CAPTIONS.update({s.caption(): s for s in specs})
    painter = _Painter()
    result = alignment(painter, specs, samples=2, seed=5, size=32, steps=2, batch_size=3, keep=3)
    assert result["rates"] == dict.fromkeys(LOOP_ATTRIBUTES, 1.0) and len(result["images"]) == 3
    red = _Painter(recolor="red")
    wrong = alignment(red, specs, samples=2, seed=5, size=32, steps=2, batch_size=8)["rates"]
    assert wrong["color"] == 0.0 and wrong["all"] == 0.0 and wrong["shape"] == wrong["position"] == 1.0
    assert painter.seeds == red.seeds and len(set(painter.seeds)) == 8  # one seed per (caption, sample)


def _loop(reward, truth, rand, worst=0.0, seconds=300.0):
    def arm(gain):
        gains = {"color": gain * 2, "shape": worst, "position": 0.0, "all": gain}
        return {"pairs": 100, "precision": 0.9, "rates": {k: 0.5 + v for k, v in gains.items()}, "gains": gains}

    return {"size": 32, "strategy": "tournament", "heldout_prompts": 96, "eval_samples": 3, "seconds": seconds,
            "before": dict.fromkeys(LOOP_ATTRIBUTES, 0.5),
            "arms": {"reward model": arm(reward), "ground truth": arm(truth), "random": arm(rand)}}  # fmt: skip


def test_diffusion_table_and_targets():
    loop = _loop(0.06, 0.08, 0.0)
    table = diffusion_loop_table(loop)
    assert "| base (before DPO) | - | - | 50.0% | 50.0% | 50.0% | 50.0% |" in table
    assert "| DPO: reward model | 100 | 90.0% | 62.0% (+12.0) | 50.0% (+0.0) | 50.0% (+0.0) | 56.0% (+6.0) |" in table
    lines = diffusion_target_lines(loop)
    assert all(line.endswith(("met", "met on this seed", "(met)")) and "not met" not in line for line in lines)
    bad = diffusion_target_lines(_loop(0.01, 0.0, 0.0, worst=-0.05, seconds=400))
    assert "not met on this seed" in bad[0] and bad[1] == "- ground-truth pairs at least as much: +0.0: not met"
    assert "random pairs <= +2 and >= 3 below the reward model: +0.0: not met" in bad[2]
    assert "worst: reward model -5.0, ground truth -5.0" in bad[3] and bad[3].endswith("not met")
    assert "6.7 min" in bad[4] and bad[4].endswith("(not met)")


def test_loop_spec_fixes_what_it_does_not_vary():
    specs = [loop_spec(1, "sift", i, ("color",))[0] for i in range(30)]
    assert {(s.shape, s.position, s.count) for s in specs} == {("circle", "left", 1)}
    assert len({s.color for s in specs}) > 3


def test_truth_score_orders_attributes_then_colour_distance():
    import dataclasses

    from PIL import Image

    from unifiedreward.demo.diffusion_loop import truth_score
    from unifiedreward.synth.world import item_rng

    spec = loop_spec(0, "heldout", 0, ("color",))[0]
    image = render_small(spec, item_rng(0, 9), 32)
    right = truth_score(image, spec)
    assert 2.5 < right <= 3.0  # three attributes right, a small distance to the base colour (jitter, blur)
    other = next(c for c in ("red", "blue") if c != spec.color)
    wrong = truth_score(render_small(dataclasses.replace(spec, color=other), item_rng(0, 9), 32), spec)
    assert 1.5 < wrong <= 2.0 and wrong < right
    assert truth_score(Image.new("RGB", (32, 32), (240, 240, 240)), spec) == -1.0


def test_the_diffusion_loop_refuses_unknown_attributes(tmp_path):
    from unifiedreward.demo.args import DemoArguments, resolve
    from unifiedreward.demo.diffusion_loop import run_diffusion_loop

    args = resolve(DemoArguments(quick=True, output_dir=str(tmp_path), t2i_vary="color,count"))
    with pytest.raises(ValueError, match="--t2i_vary"):
        run_diffusion_loop(args, tmp_path, tmp_path / "model")
