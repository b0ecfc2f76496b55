"""Tests for unifiedreward.dpo.losses (Diffusion-DPO / Flow-DPO loss)."""

from __future__ import annotations

import math

import pytest
import torch

from unifiedreward.dpo.losses import diffusion_dpo_loss, per_sample_mse


def test_loss_matches_hand_computed_values():
    # sample 1: inside = -0.5*10*((0.1-0.2)-(0)) = 0.5 -> log(1+e^-0.5) = 0.474077
    # sample 2: inside = -0.5*10*((0.3-0.1)-(0)) = -1.0 -> log(1+e^1) = 1.313262
    pw, pl = torch.tensor([0.1, 0.3]), torch.tensor([0.2, 0.1])
    rw, rl = torch.tensor([0.15, 0.2]), torch.tensor([0.15, 0.2])
    loss, stats = diffusion_dpo_loss(pw, pl, rw, rl, beta=10.0)
    assert loss.item() == pytest.approx((0.474077 + 1.313262) / 2, abs=1e-5)
    assert stats["implicit_acc"].item() == pytest.approx(0.5)
    assert stats["reward_margin"].item() == pytest.approx(-0.25)
    # reward_chosen = mean(-5*(pw - rw)) = mean(0.25, -0.5); reward_rejected = mean(-5*(pl - rl)) = mean(-0.25, 0.5)
    assert stats["reward_chosen"].item() == pytest.approx(-0.125)
    assert stats["reward_rejected"].item() == pytest.approx(0.125)
    assert stats["policy_mse"].item() == pytest.approx(0.175)
    assert stats["ref_mse"].item() == pytest.approx(0.175)


def test_beta_convention_upstream_5000_equals_diffusers_2500():
    pw, pl, rw, rl = torch.tensor([1e-4]), torch.tensor([3e-4]), torch.tensor([2e-4]), torch.tensor([2e-4])
    loss, _ = diffusion_dpo_loss(pw, pl, rw, rl, beta=5000.0)
    diffusers_form = -torch.nn.functional.logsigmoid(2500.0 * ((rw - rl) - (pw - pl))).mean()
    assert loss.item() == pytest.approx(diffusers_form.item(), rel=1e-6)


def test_policy_equal_reference_gives_ln2_and_gradient_only_to_policy():
    w = torch.nn.Parameter(torch.tensor([0.3, 0.7, 1.1]))
    ref_w = torch.tensor([0.3, 0.7, 1.1], requires_grad=True)
    l_val = torch.tensor([0.5, 0.2, 0.9])
    pl = l_val.clone().requires_grad_(True)
    rl = l_val.clone().requires_grad_(True)
    loss, stats = diffusion_dpo_loss(w * 1.0, pl, ref_w, rl, beta=5000.0)
    assert loss.item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert stats["implicit_acc"].item() == 0.0
    loss.backward()
    assert w.grad is not None and pl.grad is not None
    # d/d inside of -logsigmoid at 0 is -0.5; d inside / d pw = -0.5*beta/B -> grad = 0.25*beta/B
    assert torch.allclose(w.grad, torch.full((3,), 0.25 * 5000.0 / 3))
    assert torch.allclose(pl.grad, -w.grad)
    assert ref_w.grad is None and rl.grad is None


def test_loss_validates_shapes_and_beta():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="one shape"):
        diffusion_dpo_loss(x, x, x, torch.zeros(3), beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        diffusion_dpo_loss(x, x, x, x, beta=0.0)


def test_per_sample_mse_averages_every_non_batch_dim():
    pred = torch.zeros(2, 3, 2, 4, 5)  # 5-D video latents: width must be reduced too (VideoDPO defect)
    target = torch.zeros_like(pred)
    target[0] = 2.0
    target[1, :, :, :, 0] = 1.0  # one of 5 columns set -> mean 0.2
    out = per_sample_mse(pred, target)
    assert out.shape == (2,)
    assert torch.allclose(out, torch.tensor([4.0, 0.2]))
    with pytest.raises(ValueError, match="shape"):
        per_sample_mse(pred, target[:, :2])
