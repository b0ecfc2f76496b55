"""VideoDPO training on tiny offline Wan (flow) and AnimateDiff (ε) pipelines saved and loaded by path.

Pins: one noise draw and one timestep per pair (recovered from the denoiser's inputs); two optimizer steps each for
Wan and AnimateDiff, full and LoRA (weights move, the LoRA base does not, the first loss is ln 2); text embeddings
encoded once and hit on the second epoch and on resume (the encoder is never loaded again); resume continues the
step count; latent cache; validation clips from cached embeddings; the saved weights load back into the pipeline and
``VideoDPO/inference.py`` samples with them.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from unifiedreward.dpo.diffusers_common import Reference
from unifiedreward.dpo.video_args import VideoDPOArguments
from unifiedreward.dpo.video_models import load_family
from unifiedreward.dpo.video_tiny import save_tiny_animatediff, save_tiny_wan
from unifiedreward.dpo.video_train import dpo_step, train
from unifiedreward.synth.media import write_video
from unifiedreward.testing.media import make_frames


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny Wan + AnimateDiff pipelines and a 2-pair data set of distinct synthetic clips."""
    root = tmp_path_factory.mktemp("video_dpo")
    data = root / "data"
    (data / "videos").mkdir(parents=True)
    for i in range(4):
        write_video(data / "videos" / f"{i}.mp4", make_frames(5, 32, 32, seed=i), fps=8)
    pairs = [{"caption": "a red cat", "chosen": "videos/0.mp4", "rejected": "videos/1.mp4"},
             {"caption": "blue dog", "chosen": "videos/2.mp4", "rejected": "videos/3.mp4"}]  # fmt: skip
    (data / "dpo_data.json").write_text(json.dumps(pairs))
    return {"wan": str(save_tiny_wan(root / "wan")), "animatediff": str(save_tiny_animatediff(root / "ad")),
            "data": str(data / "dpo_data.json")}  # fmt: skip


def _args(tiny, family: str, out: Path, **kw) -> VideoDPOArguments:
    frames = 5 if family == "wan" else 2
    base = dict(model=tiny[family], data_path=tiny["data"], output_dir=str(out), num_frames=frames, height=16,
                width=16, max_sequence_length=16, max_train_steps=2, checkpointing_steps=0, learning_rate=1e-3)  # fmt: skip
    return VideoDPOArguments(**{**base, **kw})


def _script(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, Path(__file__).resolve().parents[1] / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_pair_shares_one_noise_draw_and_one_timestep(tiny):
    family = load_family(tiny["wan"])
    seen = []
    family.model.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw), with_kwargs=True)
    z_w, z_l = torch.randn(3, 16, 2, 2, 2), torch.randn(3, 16, 2, 2, 2)
    loss, stats = dpo_step(family, family.model, Reference(family.model, "copy"), z_w, z_l, torch.randn(3, 4, 32),
                           beta=500.0, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert len(seen) == 2  # policy, then the reference copy (the deep copy keeps the hook): the same inputs
    assert torch.equal(seen[0]["hidden_states"], seen[1]["hidden_states"])
    t, x_t = seen[0]["timestep"], seen[0]["hidden_states"]
    assert x_t.shape[0] == 6 and torch.equal(t[:3], t[3:]) and len(set(t[:3].tolist())) == 3  # one t per pair
    sigma = (t / 1000).view(-1, 1, 1, 1, 1)
    noise = (x_t - (1 - sigma) * torch.cat([z_w, z_l])) / sigma  # x_t = (1 - σ) z + σ ε  =>  ε
    torch.testing.assert_close(noise[:3], noise[3:], rtol=0, atol=1e-4)  # the winner's ε is the loser's ε
    assert not torch.allclose(noise[0], noise[1])  # ... and each pair has its own
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6) and stats["reward_margin"].item() == 0.0


def test_wan_two_full_steps_then_resume_continues_and_caches_hit(tiny, tmp_path):
    family = "wan"
    before = _weights(load_family(tiny[family]).model)
    result = train(_args(tiny, family, tmp_path / "out", checkpointing_steps=1, cache_latents=True))
    assert [row["step"] for row in result["history"]] == [1, 2]
    assert [row["epoch"] for row in result["history"]] == [0, 0]
    assert result["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at step 1
    # 2 captions + "" encoded once before training, every step served from the cache
    assert result["text_cache"] == {"hits": 2, "misses": 3}
    assert result["latent_cache"] == {"hits": 0, "misses": 4}
    after = load_family(tiny[family]).model.from_pretrained(tmp_path / "out/transformer").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    info = json.loads((tmp_path / "out/dpo_training.json").read_text())
    assert info["lora"] is False and info["global_step"] == 2 and info["family"] == family
    # resume: steps 3-4 are the second epoch; nothing is encoded again, latents come from the cache
    resumed = train(_args(tiny, family, tmp_path / "out", max_train_steps=4, cache_latents=True))
    assert [(row["step"], row["epoch"]) for row in resumed["history"]] == [(3, 1), (4, 1)]
    assert resumed["text_cache"] == {"hits": 2, "misses": 0}
    assert resumed["latent_cache"] == {"hits": 4, "misses": 0}
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


def test_wan_lora_two_epochs_against_the_lora_disabled_reference(tiny, tmp_path):
    from unifiedreward.dpo.video_inference import load_trained_video_pipeline
    from unifiedreward.media import load_video

    args = _args(tiny, "wan", tmp_path / "out", lora_rank=4, max_train_steps=4, gradient_checkpointing=True,
                 validation_prompts=["a red cat"], validation_inference_steps=2)  # fmt: skip
    result = train(args)
    sample = load_video(tmp_path / "out/samples/step-4/0.mp4")  # a validation clip from the cached embeddings
    assert sample.frames.shape == (5, 16, 16, 3)
    assert [(row["step"], row["epoch"]) for row in result["history"]] == [(1, 0), (2, 0), (3, 1), (4, 1)]
    # 2 captions + "" + the validation prompt encoded once; the second epoch and the sample hit the cache only
    assert result["text_cache"] == {"hits": 6, "misses": 3}
    assert result["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert all(row["policy_mse"] != row["ref_mse"] for row in result["history"][1:])  # the policy left the reference
    assert (tmp_path / "out/pytorch_lora_weights.safetensors").is_file()
    pipe = load_trained_video_pipeline(tmp_path / "out")
    assert any("lora" in name for name, _ in pipe.transformer.named_parameters())
    # VideoDPO/inference.py samples with the recorded base + the LoRA weights
    script = _script("VideoDPO/inference.py")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(["a red cat"]))
    argv = ["--trained", str(tmp_path / "out"), "--model", "recorded", "--prompts_file", str(prompts),
            "--output_dir", str(tmp_path / "sampled"), "--num_videos", "2", "--num_frames", "5", "--height", "16",
            "--width", "16", "--num_inference_steps", "2", "--max_sequence_length", "16", "--progress", "false"]  # fmt: skip
    assert script.main(argv) == 0
    record = json.loads((tmp_path / "sampled/data.json").read_text())[0]
    assert [load_video(tmp_path / "sampled" / v).frames.shape for v in record["videos"]] == [(5, 16, 16, 3)] * 2


@pytest.mark.parametrize("lora_rank", [0, 4], ids=["full", "lora"])
def test_animatediff_two_steps(tiny, tmp_path, lora_rank):
    from unifiedreward.dpo.video_inference import load_trained_video_pipeline

    before = _weights(load_family(tiny["animatediff"]).model)
    result = train(_args(tiny, "animatediff", tmp_path / "out", lora_rank=lora_rank, gradient_checkpointing=True))
    assert [row["step"] for row in result["history"]] == [1, 2]
    assert result["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert result["history"][1]["policy_mse"] != result["history"][1]["ref_mse"]  # the policy left the reference
    assert result["text_cache"] == {"hits": 2, "misses": 3}
    info = json.loads((tmp_path / "out/dpo_training.json").read_text())
    assert info["family"] == "animatediff" and info["lora"] is bool(lora_rank)
    unet = load_trained_video_pipeline(tmp_path / "out").unet
    if lora_rank:
        assert any("lora" in name for name, _ in unet.named_parameters())
    else:
        after = unet.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)


def test_animatediff_ema_saves_the_average_and_checkpoints_it(tiny, tmp_path):
    from unifiedreward.dpo.video_inference import load_trained_video_pipeline

    start = _weights(load_family(tiny["animatediff"]).model)
    train(_args(tiny, "animatediff", tmp_path / "raw", max_train_steps=3))
    train(_args(tiny, "animatediff", tmp_path / "ema", max_train_steps=3, use_ema=True, checkpointing_steps=3))
    raw = load_trained_video_pipeline(tmp_path / "raw").unet.state_dict()
    ema = load_trained_video_pipeline(tmp_path / "ema").unet.state_dict()
    moved = [k for k in start if not torch.equal(start[k], raw[k])]
    assert moved and any(not torch.equal(raw[k], ema[k]) for k in moved)  # the same run, other weights saved

    def distance(weights):
        return sum(float((weights[k] - start[k]).double().norm()) for k in moved)

    # the average of the three steps' weights (decay 0, 2/11, 3/12) lies nearer the start than the last ones
    assert 0 < distance(ema) < distance(raw)
    assert list((tmp_path / "ema" / "checkpoint-3").glob("custom_checkpoint_0.*"))  # the EMA resumes with the run
    infos = [json.loads((tmp_path / name / "dpo_training.json").read_text()) for name in ("raw", "ema")]
    assert [info["ema_decay"] for info in infos] == [None, 0.999]
    with pytest.raises(ValueError, match="--ema_decay"):
        _args(tiny, "animatediff", tmp_path / "bad", use_ema=True, ema_decay=1.0).check()
