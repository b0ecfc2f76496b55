"""Diffusion-DPO / Flow-DPO loss, shared by image DPO (``DiffusionDPO/``) and video DPO (``VideoDPO/``).

The caller computes per-sample mean squared errors (shape ``[B]``) of the policy and of the reference model against
the prediction target of the model family (see :func:`per_sample_mse`):

* ε-prediction (SD 1.5, SDXL, SDXL-Turbo, AnimateDiff): the target is the noise ε;
* v-prediction: the target is ``scheduler.get_velocity(x0, ε, t)``;
* flow matching (SD3 / SD3.5, Wan, LTX): the target is the velocity ``ε - x0`` (Flow-DPO is the same formula on
  velocities).

One noise draw and one timestep are shared by the winner and the loser of a pair (the textbook formulation; VideoDPO's
independent draws and per-column sigmoid are not reproduced).

β convention: this module uses the Salesforce / upstream form ``inside = -0.5 * β * Δ``, so upstream's β = 5000 equals
the diffusers research example's ``beta_dpo = 2500`` (which has no 0.5 factor).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["diffusion_dpo_loss", "per_sample_mse"]


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, averaged over every non-batch dimension.

    Args:
        pred: Model output, shape ``[B, ...]`` (e.g. ``[B, C, H, W]`` or ``[B, C, T, H, W]``).
        target: Target of the same shape.

    Returns:
        ``[B]`` float32 tensor: ``mean_{non-batch dims} (pred - target)^2``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if pred.dim() < 1 or pred.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch dimension, got shape {tuple(pred.shape)}")
    err = (pred.float() - target.float()).pow(2)
    return err.reshape(err.shape[0], -1).mean(dim=1)


def diffusion_dpo_loss(
    policy_err_w: torch.Tensor,
    policy_err_l: torch.Tensor,
    ref_err_w: torch.Tensor,
    ref_err_l: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Diffusion-DPO loss (Wallace et al. 2023) on per-sample errors.

    ``inside = -0.5 * beta * ((policy_err_w - policy_err_l) - (ref_err_w - ref_err_l))`` and
    ``loss = mean_B(-log sigmoid(inside))``. With policy == reference, ``inside = 0`` and the loss is ``ln 2``.
    The reference errors are detached, so the gradient reaches only the policy.

    β convention: upstream's ``beta_dpo = 5000`` equals the diffusers research example's ``2500`` (no 0.5 there).
    Flow-DPO is the same formula on velocity errors.

    Args:
        policy_err_w: ``[B]`` policy error on the winner (chosen).
        policy_err_l: ``[B]`` policy error on the loser (rejected).
        ref_err_w: ``[B]`` reference error on the winner.
        ref_err_l: ``[B]`` reference error on the loser.
        beta: KL-regularisation strength β (> 0).

    Returns:
        ``(loss, stats)``: the scalar loss and detached statistics:
        ``implicit_acc`` (fraction with ``inside > 0``), ``reward_margin`` (mean ``inside``), ``reward_chosen``
        (mean ``-0.5 β (policy_err_w - ref_err_w)``), ``reward_rejected`` (likewise on the loser),
        ``policy_mse`` (``0.5 (mean policy_err_w + mean policy_err_l)``) and ``ref_mse``.
    """
    shapes = {t.shape for t in (policy_err_w, policy_err_l, ref_err_w, ref_err_l)}
    if len(shapes) != 1 or policy_err_w.dim() != 1:
        raise ValueError(f"expected four [B] tensors of one shape, got {sorted(tuple(s) for s in shapes)}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    ref_err_w = ref_err_w.detach()
    ref_err_l = ref_err_l.detach()
    policy_diff = policy_err_w - policy_err_l
    ref_diff = ref_err_w - ref_err_l
    inside = -0.5 * beta * (policy_diff - ref_diff)
    loss = -F.logsigmoid(inside).mean()
    with torch.no_grad():
        reward_w = -0.5 * beta * (policy_err_w - ref_err_w)
        reward_l = -0.5 * beta * (policy_err_l - ref_err_l)
        stats = {
            "implicit_acc": (inside > 0).float().mean(),
            "reward_margin": inside.mean(),
            "reward_chosen": reward_w.mean(),
            "reward_rejected": reward_l.mean(),
            "policy_mse": 0.5 * (policy_err_w.mean() + policy_err_l.mean()),
            "ref_mse": 0.5 * (ref_err_w.mean() + ref_err_l.mean()),
        }
    stats = {k: v.detach() for k, v in stats.items()}
    return loss, stats
