"""Trainable-part selection (unifiedreward.training.trainable), including DeepSpeed ZeRO-3 partitioned parameters."""

from __future__ import annotations

import pytest
import torch

from unifiedreward.training.trainable import parameter_numel, set_trainable, trainable_summary

pytestmark = pytest.mark.unit

# (name, numel) of a Qwen-layout model: vision tower, projector, language model
_SHAPES = {
    "model.visual.blocks.0.attn.qkv.weight": 48,
    "model.visual.merger.mlp.0.weight": 32,
    "model.language_model.layers.0.mlp.up_proj.weight": 64,
    "lm_head.weight": 16,
}


def _zero3_like_model() -> torch.nn.Module:
    """Parameters as ``deepspeed.zero.Init`` leaves them on a rank: empty, with the real size in ``ds_numel``."""
    model = torch.nn.Module()
    for name, numel in _SHAPES.items():
        *path, leaf = name.split(".")
        owner = model
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        param = torch.nn.Parameter(torch.empty(0))
        param.ds_numel = numel
        owner.register_parameter(leaf, param)
    return model


def test_zero3_partitioned_parameters_count_with_their_full_size():
    model = _zero3_like_model()
    assert all(p.numel() == 0 for p in model.parameters())
    # before the fix every count was 0 and set_trainable raised "nothing to train"
    summary = set_trainable(model, "qwen", vision=False, merger=True, language_model=True)
    assert summary == {"vision": (0, 48), "merger": (32, 32), "language_model": (80, 80)}
    assert trainable_summary(model, "qwen") == summary
    with pytest.raises(ValueError, match="nothing to train"):
        set_trainable(model, "qwen", vision=False, merger=False, language_model=False)


def test_parameter_numel_without_deepspeed():
    assert parameter_numel(torch.nn.Parameter(torch.zeros(3, 4))) == 12


def test_train_module_reexports_the_library_functions():
    from unifiedreward import train
    from unifiedreward.training import trainable

    for name in ("set_trainable", "trainable_summary", "apply_lora", "parameter_group", "PARAMETER_GROUPS"):
        assert getattr(train, name) is getattr(trainable, name), name
