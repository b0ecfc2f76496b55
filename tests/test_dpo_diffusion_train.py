"""Diffusion-DPO / Flow-DPO training on tiny offline pipelines loaded by path: two steps (full and LoRA),
inference loads the result, resume continues the step count."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.dpo.diffusion_args import DiffusionDPOArguments
from unifiedreward.dpo.diffusion_data import PairDataset, load_pairs
from unifiedreward.dpo.diffusion_inference import InferenceArguments, generate_images
from unifiedreward.dpo.diffusion_models import load_trained_pipeline
from unifiedreward.dpo.diffusion_tiny import save_tiny_sd, save_tiny_sd3, save_tiny_sdxl
from unifiedreward.dpo.diffusion_train import train

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"sd": str(save_tiny_sd(root / "sd")), "sd3": str(save_tiny_sd3(root / "sd3"))}


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Four pairs in upstream's format, with upstream's leftover 'prompt' column and one label_0 = 0 record."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "images_dpo").mkdir()
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        for role in ("a", "b"):
            pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images_dpo" / f"image_{i}_{role}.png")
        records.append({"id": f"image_dpo_{i}", "prompt": "x", "caption": "a red cat", "jpg_0": f"image_{i}_a.png",
                        "jpg_1": f"image_{i}_b.png", "label_0": int(i != 3), "chosen_score": "8"})  # fmt: skip
    (root / "dpo_data.json").write_text(json.dumps(records))
    return root


def _args(model, data, out, **overrides) -> DiffusionDPOArguments:
    values = dict(pretrained_model=model, dataset_dir=str(data), output_dir=str(out), resolution=16,
                  train_batch_size=2, max_train_steps=2, learning_rate=1e-3, beta_dpo=500.0, checkpointing_steps=0,
                  hflip=False)  # fmt: skip
    values.update(overrides)
    return DiffusionDPOArguments(**values)


def test_pair_dataset_puts_the_winner_first_and_drops_extra_columns(pairs_dir):
    data = load_pairs(pairs_dir)
    assert data.column_names == ["caption", "jpg_0", "jpg_1", "label_0"]
    ds = PairDataset(data, pairs_dir / "images_dpo", 16, hflip=False)
    item = ds[3]  # label_0 == 0: jpg_1 is the winner
    expected = ds[0]["pixels"].new_tensor(np.asarray(Image.open(pairs_dir / "images_dpo" / "image_3_b.png")
                                                     .resize((19, 16), Image.BILINEAR).crop((2, 0, 18, 16))))  # fmt: skip
    assert item["pixels"].shape == (2, 3, 16, 16)
    assert torch.allclose(item["pixels"][0], expected.permute(2, 0, 1) / 127.5 - 1)


@pytest.mark.parametrize("kind,lora", [("sd", 0), ("sd", 4), ("sd3", 0), ("sd3", 4)])
def test_two_steps_then_inference_loads_the_result(models, pairs_dir, tmp_path, kind, lora):
    out = tmp_path / "out"
    result = train(_args(models[kind], pairs_dir, out, lora_rank=lora))
    assert result["global_step"] == 2 and [h["step"] for h in result["history"]] == [1, 2]
    first = result["history"][0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference before the first update
    assert abs(first["reward_margin"]) < 1e-3  # float noise only: implicit_acc may be anything here
    assert result["history"][1]["loss"] != pytest.approx(math.log(2), abs=1e-6)  # the update moved the policy
    info = json.loads((out / "dpo_training.json").read_text())
    assert info["lora"] is bool(lora) and info["global_step"] == 2
    component = "unet" if kind == "sd" else "transformer"
    assert (out / ("pytorch_lora_weights.safetensors" if lora else component)).exists()

    from diffusers import DiffusionPipeline

    def sample(pipe):
        kwargs = {"max_sequence_length": 16} if kind == "sd3" else {}
        return pipe("a cat", num_inference_steps=1, height=16, width=16, output_type="np", guidance_scale=0.0,
                    generator=torch.Generator().manual_seed(0), **kwargs).images  # fmt: skip

    trained = load_trained_pipeline(out, fuse_lora=bool(lora))
    assert not np.allclose(sample(DiffusionPipeline.from_pretrained(models[kind])), sample(trained), atol=0, rtol=0)
    files = generate_images(InferenceArguments(trained=str(out), output_dir=str(tmp_path / "img"), prompts=["a cat"],
                                               num_inference_steps=1, height=16, width=16), pipe=trained)  # fmt: skip
    assert Image.open(files[0]).size == (16, 16)


def test_resume_continues_the_step_count_and_the_run(models, pairs_dir, tmp_path):
    full = train(_args(models["sd"], pairs_dir, tmp_path / "full", checkpointing_steps=1, lora_rank=4))
    assert sorted(p.name for p in (tmp_path / "full").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-1", resumed_dir / "checkpoint-1")
    resumed = train(_args(models["sd"], pairs_dir, resumed_dir, lora_rank=4, resume_from_checkpoint="latest"))
    assert resumed["global_step"] == 2 and [h["step"] for h in resumed["history"]] == [2]
    # the same data order, noise and timesteps as the uninterrupted run (RNG states restored, own shuffle)
    assert resumed["history"][0]["loss"] == pytest.approx(full["history"][1]["loss"], rel=1e-5)
    assert json.loads((resumed_dir / "dpo_training.json").read_text())["global_step"] == 2


def test_sdxl_turbo_uses_turbo_timesteps_and_micro_conditioning(pairs_dir, tmp_path, monkeypatch):
    import unifiedreward.dpo.diffusion_train as module

    seen = []
    real = module.sample_timesteps

    def spy(batch, mode, **kwargs):
        t, s = real(batch, mode, **kwargs)
        seen.append((mode, t.tolist()))
        return t, s

    monkeypatch.setattr(module, "sample_timesteps", spy)
    calls = []
    real_predict = module.DiffusionModels.predict

    def predict_spy(self, model, noisy, timesteps, cond, time_ids=None):
        calls.append((cond["pooled"].shape, time_ids.clone()))
        return real_predict(self, model, noisy, timesteps, cond, time_ids)

    monkeypatch.setattr(module.DiffusionModels, "predict", predict_spy)
    turbo = save_tiny_sdxl(tmp_path / "tiny-sdxl-turbo")
    result = train(_args(str(turbo), pairs_dir, tmp_path / "out", max_train_steps=1, random_crop=True))
    assert result["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert seen and all(mode == "turbo" and set(t) <= {249, 499, 749, 999} for mode, t in seen)
    (pooled_shape, time_ids), _ = calls  # policy and reference on [winners; losers]
    assert pooled_shape == (4, 32)
    # [orig_h, orig_w, crop_top, crop_left, 16, 16]: 20 x 24 images resized to 16 x 19, cropped in x only
    assert time_ids[:, :2].tolist() == [[20, 24]] * 4 and time_ids[:, 4:].tolist() == [[16, 16]] * 4
    assert time_ids[:, 2].eq(0).all() and time_ids[:, 3].le(3).all()


def test_timestep_mode_must_fit_the_model(models, pairs_dir, tmp_path):
    with pytest.raises(ValueError, match="does not fit"):
        train(_args(models["sd3"], pairs_dir, tmp_path / "bad", timesteps="turbo"))


def test_missing_tracker_fails_before_loading(pairs_dir, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ImportError, match="pip install tensorboard"):
        train(_args("no/such/model", pairs_dir, tmp_path / "out", report_to="tensorboard"))
