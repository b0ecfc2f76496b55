"""The video closed loop's parts: the tiny text-to-video model, the clip specs, the truth score, the ground-truth
rate, the control arms as VideoDPO training data, the report."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unifiedreward.demo.args import DemoArguments, resolve
from unifiedreward.demo.diffusion_loop import control_pairs, pair_precision
from unifiedreward.demo.report import diffusion_target_lines
from unifiedreward.demo.t2i import MAX_TOKENS, pretrain
from unifiedreward.demo.t2v import VIDEO_WORDS, build_video_pipeline, clip_batch, render_small_clip
from unifiedreward.demo.video_loop import (
    CLIP_ATTRIBUTES,
    _dpo,
    _write_pairs,
    clip_alignment,
    clip_truth_score,
    dpo_steps,
    every_pair_controls,
    loop_clip_spec,
    video_loop_table,
)
from unifiedreward.synth.world import item_rng


def test_clip_specs_fix_what_they_do_not_vary_and_splits_differ():
    specs = [loop_clip_spec(1, "sift", i, ("color", "change"))[0] for i in range(60)]
    assert {(s.shape, s.direction) for s in specs} == {("circle", "right")}
    assert len({s.color for s in specs}) > 3 and 15 < sum(s.end_color is not None for s in specs) < 45
    assert specs == [loop_clip_spec(1, "sift", i, ("color", "change"))[0] for i in range(60)]
    assert specs != [loop_clip_spec(1, "heldout", i, ("color", "change"))[0] for i in range(60)]
    fixed = [loop_clip_spec(1, "sift", i, ("shape",))[0] for i in range(30)]
    assert {(s.color, s.direction, s.end_color) for s in fixed} == {("red", "right", None)}
    for spec in [loop_clip_spec(2, "heldout", i)[0] for i in range(10)]:
        assert len(spec.caption().split()) <= MAX_TOKENS - 2 and set(spec.caption().split()) <= set(VIDEO_WORDS)


def test_video_pipeline_builds_pretrains_on_clips_and_reloads(tmp_path):
    from diffusers import DiffusionPipeline

    path = build_video_pipeline(tmp_path / "t2v", size=16, seed=0)
    pipe = DiffusionPipeline.from_pretrained(str(path))
    assert type(pipe).__name__ == "AnimateDiffPipeline" and type(pipe.unet).__name__ == "UNetMotionModel"
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    specs = [loop_clip_spec(0, "pretrain", i, ("color", "change")) for i in range(6)]
    clips = clip_batch([render_small_clip(spec, rng, 16, 4) for spec, rng in specs])
    assert clips.shape == (6, 4, 3, 16, 16) and clips.min() >= -1 and clips.max() <= 1
    history = pretrain(path, clips, [s.caption() for s, _ in specs], vae_steps=2, unet_steps=2, batch_size=3,
                       progress=False)  # fmt: skip
    assert len(history["vae"]) == len(history["unet"]) == 2 and history["scaling_factor"] > 0
    trained = DiffusionPipeline.from_pretrained(str(path))
    assert trained.vae.config.scaling_factor == pytest.approx(history["scaling_factor"])
    assert [k for k, v in trained.unet.state_dict().items() if not torch.equal(v, before[k])], "UNet unchanged"
    video = trained("a red circle moving right", num_frames=4, height=16, width=16, num_inference_steps=2,
                    guidance_scale=1.0, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]  # fmt: skip
    assert np.asarray(video).shape == (4, 16, 16, 3)


def test_clip_truth_score_orders_attributes_then_colour_distance():
    spec = loop_clip_spec(0, "heldout", 1, ("color", "change"))[0]
    clip = render_small_clip(spec, item_rng(0, 9), 16, 4)
    right = clip_truth_score(clip, spec)
    assert 3.5 < right <= 4.0
    other = next(c for c in ("green", "blue") if c not in (spec.color, spec.end_color))
    wrong = clip_truth_score(render_small_clip(dataclasses.replace(spec, color=other), item_rng(0, 9), 16, 4), spec)
    assert 2.0 < wrong < 3.6 and wrong < right  # the start colour (and, without a change, the end) wrong
    assert clip_truth_score(np.full((4, 16, 16, 3), 240, dtype=np.uint8), spec) == -1.0


class _Animator:
    """A stand-in video pipeline that draws the caption's clip (or a recoloured one) with the world's renderer."""

    def __init__(self, specs, recolor=None):
        self.specs = {s.caption(): s for s in specs}
        self.recolor = recolor
        self.seeds: list[int] = []

    def set_progress_bar_config(self, **_):
        pass

    def __call__(self, captions, *, generator, height, num_frames, **_):
        out = []
        for caption, gen in zip(captions, generator, strict=True):
            spec = self.specs[caption]
            if self.recolor:
                spec = dataclasses.replace(spec, color=self.recolor, end_color=None)
            self.seeds.append(gen.initial_seed())
            out.append(render_small_clip(spec, item_rng(gen.initial_seed(), 0), height, num_frames) / 255.0)
        return SimpleNamespace(frames=out)


def test_clip_alignment_checks_pixels_with_the_same_seeds_for_every_model():
    specs = [s for s in (loop_clip_spec(0, "heldout", i, ("color", "change"))[0] for i in range(12))
             if s.color != "red" and s.end_color is not None][:3]  # fmt: skip
    assert len(specs) == 3
    painter = _Animator(specs)
    result = clip_alignment(painter, specs, samples=2, seed=5, size=16, frames=4, steps=2, batch_size=4, keep=2)
    assert result["rates"] == dict.fromkeys(CLIP_ATTRIBUTES, 1.0) and len(result["clips"]) == 2
    assert result["clips"][0].shape == (4, 16, 16, 3) and result["clips"][0].dtype == np.uint8
    red = _Animator(specs, recolor="red")
    wrong = clip_alignment(red, specs, samples=2, seed=5, size=16, frames=4, steps=2, batch_size=8)["rates"]
    assert wrong["color"] == wrong["change"] == wrong["all"] == 0.0 and wrong["shape"] == wrong["direction"] == 1.0
    assert painter.seeds == red.seeds and len(set(painter.seeds)) == 6


def test_control_arms_are_videodpo_training_data(tmp_path):
    """Rendered clips as a generation folder: the ground-truth arm prefers the right clip, and its dpo_data.json
    trains with VideoDPO/train.py's code on the tiny AnimateDiff model."""
    from unifiedreward.dpo.video_generate import write_mp4
    from unifiedreward.media import load_video

    base = build_video_pipeline(tmp_path / "base", size=16, seed=0)
    gen = tmp_path / "generated"
    sets, scores = [], {}
    for i in range(4):
        spec = loop_clip_spec(0, "sift", i, ("color", "change"))[0]
        wrong = dataclasses.replace(spec, color=next(c for c in ("green", "blue") if c not in (spec.color,
                                                                                              spec.end_color)))  # fmt: skip
        names = []
        for k, drawn in enumerate((spec, wrong)):
            name = f"videos/s{i}-{k}.mp4"
            write_mp4(gen / name, render_small_clip(drawn, item_rng(i, k), 16, 4), fps=8, crf=10)
            names.append(name)
        sets.append({"id": f"s{i}", "caption": spec.caption(), "videos": names})
        scores[f"s{i}"] = {n: clip_truth_score(load_video(gen / n), spec) for n in names}
    in_order = {r["id"]: [scores[r["id"]][n] for n in r["videos"]] for r in sets}
    arms = control_pairs(sets, in_order, {s["id"] for s in sets}, 0, media="videos")
    truth = arms["ground truth"]
    assert [p["chosen"] for p in truth] == [f"videos/s{i}-0.mp4" for i in range(4)]  # decoded mp4s check out
    assert pair_precision(truth, scores)["precision"] == 1.0
    _write_pairs(tmp_path / "pairs.json", truth)
    args = resolve(DemoArguments(output_dir=str(tmp_path), quick=True, t2v_size=16, t2v_dpo_batch=2,
                                 t2v_dpo_epochs=0.5))  # fmt: skip
    assert dpo_steps(args, len(truth)) == 1  # 0.5 epochs of 4 pairs in batches of 2
    result = _dpo(args, base, tmp_path / "pairs.json", gen, tmp_path / "dpo", len(truth), 1)
    assert result["steps"] == 1 and np.isfinite(result["first_loss"])
    info = json.loads((tmp_path / "dpo" / "dpo_training.json").read_text())
    assert info["family"] == "animatediff" and info["base_model"] == str(base)
    assert info["ema_decay"] == 0.99  # --t2v_ema_decay reaches the trainer


def test_every_pair_controls_take_each_truth_pair_and_shuffle_the_reward_models():
    sets = [{"id": f"s{i}", "caption": f"caption {i}", "videos": [f"s{i}-{k}.mp4" for k in range(4)]}
            for i in range(6)]  # fmt: skip
    # clip k of every set: attributes right 4, 3, 3, 1 (ceil), the two 3s apart only in colour distance
    truth = {s["id"]: dict(zip(s["videos"], (3.99, 2.8, 2.9, 0.7), strict=True)) for s in sets}
    arms = every_pair_controls(sets, truth, [], seed=0)
    assert [(p["chosen"][-5], p["rejected"][-5]) for p in arms["ground truth"][:5]] == [
        ("0", "1"), ("0", "2"), ("0", "3"), ("1", "3"), ("2", "3")]  # fmt: skip  (1 vs 2: colour only, no pair)
    assert len(arms["ground truth"]) == 30 and arms["random"] == []
    # the reward model's pairs: 4 per set (3 apart in attributes right, 1 only in colour distance)
    rm = [{"id": s["id"], "caption": s["caption"], "chosen": s["videos"][a], "rejected": s["videos"][b],
           "chosen_score": 9.0} for s in sets for a, b in ((0, 1), (0, 3), (2, 3), (2, 1))]  # fmt: skip
    shuffled = every_pair_controls(sets, truth, rm, seed=3)["random"]
    assert [{p["chosen"], p["rejected"]} for p in shuffled] == [{p["chosen"], p["rejected"]} for p in rm]
    assert all(set(p) == {"id", "caption", "chosen", "rejected"} for p in shuffled)
    apart = [p for p in shuffled if {p["chosen"][-5], p["rejected"][-5]} != {"1", "2"}]
    better = sum(truth[p["id"]][p["chosen"]] > truth[p["id"]][p["rejected"]] for p in apart)
    assert len(apart) == 18 and better == 9  # exactly half keep the better clip as chosen
    colour_only = [p for p in shuffled if {p["chosen"][-5], p["rejected"][-5]} == {"1", "2"}]
    assert len(colour_only) == 6 and sum(p["chosen"].endswith("-2.mp4") for p in colour_only) == 3
    assert shuffled == every_pair_controls(sets, truth, rm, seed=3)["random"]  # seeded


def test_every_pair_sifting_needs_pointwise(tmp_path):
    with pytest.raises(ValueError, match="--t2v_pairs all needs --t2v_strategy pointwise"):
        resolve(DemoArguments(output_dir=str(tmp_path), quick=True, t2v_strategy="tournament"))
    assert resolve(DemoArguments(output_dir=str(tmp_path), quick=True, t2v_strategy="tournament",
                                 t2v_pairs="best_worst")).t2v_pairs == "best_worst"  # fmt: skip


def test_video_table_and_targets():
    def arm(gain):
        gains = {"color": gain, "shape": 0.0, "direction": -0.01, "change": gain, "all": gain}
        return {"pairs": 50, "precision": 1.0, "rates": {k: 0.4 + v for k, v in gains.items()}, "gains": gains}

    loop = {"size": 16, "frames": 4, "strategy": "tournament", "heldout_prompts": 64, "eval_samples": 3,
            "seconds": 330.0, "before": dict.fromkeys(CLIP_ATTRIBUTES, 0.4),
            "arms": {"reward model": arm(0.1), "ground truth": arm(0.12), "random": arm(-0.01)}}  # fmt: skip
    table = video_loop_table(loop)
    assert table.startswith("Video loop (16px 4-frame text-to-video model (AnimateDiff)")
    assert "by `tournament` sifting; 330 s)" in table  # a loop of before the pair modes
    every = video_loop_table({**loop, "strategy": "pointwise", "pair_mode": "all", "dpo_steps": 290})
    assert "by `pointwise` sifting (every pair of clips whose scores differ), 290 DPO steps per arm; 330 s)" in every
    assert "| model | pairs | pair precision vs truth | color | shape | direction | change | all |" in table
    assert "| DPO: reward model | 50 | 100.0% | 50.0% (+10.0) | 40.0% (+0.0) | 39.0% (-1.0) | 50.0% (+10.0) |" in table
    lines = diffusion_target_lines(loop, "video loop")
    assert lines[-1] == "- video loop <= 6 min on 2 CPU cores: 5.5 min on this machine (met)"
    assert all("not met" not in line for line in lines)


def test_the_video_loop_refuses_unknown_attributes(tmp_path):
    from unifiedreward.demo.video_loop import run_video_loop

    args = resolve(DemoArguments(output_dir=str(tmp_path), quick=True, t2v_vary="color,position"))
    with pytest.raises(ValueError, match="--t2v_vary"):
        run_video_loop(args, tmp_path, tmp_path / "model")
