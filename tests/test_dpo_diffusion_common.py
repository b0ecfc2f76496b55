"""Tests for unifiedreward.dpo.diffusers_common: timestep draws, targets, reference models, optimizers, checkpoints."""

from __future__ import annotations

import sys

import pytest
import torch

from unifiedreward.dpo.diffusers_common import (
    TURBO_TIMESTEPS,
    Reference,
    ddpm_scheduler,
    latest_checkpoint,
    make_optimizer,
    noisy_and_target,
    prune_checkpoints,
    sample_timesteps,
)


def test_turbo_timestep_draw_yields_only_the_four_values():
    g = torch.Generator().manual_seed(0)
    t, sigmas = sample_timesteps(4000, "turbo", generator=g)
    assert sigmas is None and t.dtype == torch.long
    assert set(t.tolist()) == set(TURBO_TIMESTEPS) == {249, 499, 749, 999}


def test_uniform_and_logit_normal_draws():
    from diffusers import FlowMatchEulerDiscreteScheduler

    t, _ = sample_timesteps(2000, "uniform", generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0 and t.max() <= 999 and len(set(t.tolist())) > 500
    flow = FlowMatchEulerDiscreteScheduler(shift=3.0)
    t, s = sample_timesteps(2000, "logit_normal", generator=torch.Generator().manual_seed(0), flow_scheduler=flow)
    assert torch.allclose(t, s * 1000, atol=1e-3)
    assert 0 < s.min() and s.max() <= 1
    assert 0.6 < s.median() < 0.9  # logit-normal around u=0.5, pushed up by shift 3: 3*0.5/(1+2*0.5) = 0.75
    with pytest.raises(ValueError, match="timestep mode"):
        sample_timesteps(1, "cosine")


def test_zero_terminal_snr_scheduler(tmp_path):
    from diffusers import DDPMScheduler

    DDPMScheduler(beta_schedule="scaled_linear").save_pretrained(tmp_path / "scheduler")
    plain = ddpm_scheduler(str(tmp_path))
    zero = ddpm_scheduler(str(tmp_path), zero_terminal_snr=True)
    assert plain.alphas_cumprod[-1] > 1e-4
    assert zero.alphas_cumprod[-1] < 1e-6  # t = 999 sees pure noise (SDXL-Turbo, upstream)


def test_targets_per_prediction_type():
    from diffusers import DDPMScheduler

    x0, eps = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    sigma = torch.tensor([0.25, 1.0])
    xt, target = noisy_and_target(x0, eps, sigma * 1000, sigmas=sigma, prediction_type="flow_matching")
    assert torch.allclose(xt[0], 0.75 * x0[0] + 0.25 * eps[0]) and torch.allclose(xt[1], eps[1])
    assert torch.allclose(target, eps - x0)
    sched = DDPMScheduler()
    t = torch.tensor([10, 500])
    xt, target = noisy_and_target(x0, eps, t, scheduler=sched, prediction_type="epsilon")
    a = sched.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    assert torch.allclose(xt, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-6) and torch.equal(target, eps)
    _, v = noisy_and_target(x0, eps, t, scheduler=sched, prediction_type="v_prediction")
    assert torch.allclose(v, a.sqrt() * eps - (1 - a).sqrt() * x0, atol=1e-6)


def _tiny_unet():
    from diffusers import UNet2DConditionModel

    from unifiedreward.dpo.diffusion_tiny import TINY_UNET

    return UNet2DConditionModel(**TINY_UNET)


def test_reference_lora_disabled_is_the_base_and_copy_is_frozen():
    from unifiedreward.dpo.diffusion_models import add_lora

    unet = _tiny_unet()
    x, t, c = torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 3, 32)
    base = unet(x, t, encoder_hidden_states=c).sample.detach()
    add_lora(unet, 4)
    for name, p in unet.named_parameters():  # move the LoRA weights away from the identity init
        if "lora_B" in name:
            p.data.normal_()
    assert not torch.allclose(unet(x, t, encoder_hidden_states=c).sample, base, atol=1e-4)
    ref = Reference(unet, "lora_disabled")
    with ref.active() as model:
        out = model(x, t, encoder_hidden_states=c).sample
    assert torch.allclose(out, base, atol=1e-5) and not out.requires_grad
    assert not torch.allclose(unet(x, t, encoder_hidden_states=c).sample, base, atol=1e-4)  # adapters back on
    copy_ref = Reference(unet, "copy")
    assert copy_ref.model is not unet and not any(p.requires_grad for p in copy_ref.model.parameters())
    with pytest.raises(ValueError, match="LoRA"):
        Reference(_tiny_unet(), "lora_disabled")


def test_optimizers(monkeypatch):
    p = torch.nn.Parameter(torch.zeros(3))
    assert isinstance(make_optimizer("adamw", [p], lr=1e-3), torch.optim.AdamW)
    ada = make_optimizer("adafactor", [p], lr=1e-3)
    assert ada.defaults["relative_step"] is False and ada.defaults["clip_threshold"] == 1.0
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ImportError, match="pip install bitsandbytes"):
        make_optimizer("adamw_8bit", [p], lr=1e-3)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("sgd", [p], lr=1e-3)


def test_checkpoint_folders(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (2, 10, 9):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"
    prune_checkpoints(tmp_path, 1)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-x"]


@pytest.mark.parametrize(
    "config,kind",
    [("turbo_dpo.yaml", "train"), ("sd35_flow_dpo.yaml", "train"), ("turbo_generate.yaml", "generate"),
     ("turbo_sift.yaml", "sift")],
)  # fmt: skip
def test_shipped_configs_parse(config, kind):
    from pathlib import Path

    from unifiedreward.args import parse_args
    from unifiedreward.dpo.diffusion_args import DiffusionDPOArguments
    from unifiedreward.dpo.diffusion_generate import GenerationArguments
    from unifiedreward.dpo.diffusion_sift import SiftArguments

    cls = {"train": DiffusionDPOArguments, "generate": GenerationArguments, "sift": SiftArguments}[kind]
    path = Path(__file__).parents[1] / "DiffusionDPO" / "configs" / config
    (args,) = parse_args([cls], ["--config", str(path), "--seed", "7"])
    assert args.seed == 7  # a flag overrides the file
    if config == "turbo_dpo.yaml":
        assert (args.beta_dpo, args.optimizer, args.scale_lr, args.resolved_timesteps("unet")) == (
            5000.0, "adafactor", True, "turbo")  # fmt: skip
        assert args.validation_prompts and len(args.validation_prompts) == 2
    if config == "sd35_flow_dpo.yaml":
        args.check("flow")
        assert args.reference == "lora_disabled" and args.lora_rank == 64
