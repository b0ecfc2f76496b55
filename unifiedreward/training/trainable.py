"""What trains in a vision-language model: per-part freezing, LoRA adapters and parameter counts.

Parts (:data:`PARAMETER_GROUPS`): ``vision`` (the vision tower without the projector), ``merger`` (the
vision-language projector) and ``language_model`` (decoder, embeddings, LM head), per prompt family (``"qwen"``,
``"llava"``; see :func:`unifiedreward.modeling.model_family`). Full fine-tuning freezes or unfreezes whole parts
(:func:`set_trainable`); LoRA (:func:`apply_lora`) adds adapters to the language model's linear layers and trains
the chosen vision parts fully through peft's ``modules_to_save``.

Counts (:func:`trainable_summary`) use ``param.ds_numel`` when a parameter has it: under DeepSpeed ZeRO-3
(``deepspeed.zero.Init``) every rank holds an empty placeholder (``numel() == 0``) and the real size is in
``ds_numel``, as transformers counts it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch

__all__ = [
    "PARAMETER_GROUPS",
    "apply_lora",
    "parameter_group",
    "parameter_numel",
    "set_trainable",
    "trainable_summary",
]

logger = logging.getLogger(__name__)

#: Parameter-name prefixes of each trainable part, per prompt family (transformers 5 layout), matched in this order.
#: ``merger`` is the vision-language projector (Qwen ``visual.merger`` and Qwen3-VL's deepstack mergers;
#: LLaVA-OneVision ``multi_modal_projector`` and ``image_newline``); ``vision`` the rest of the vision tower;
#: ``language_model`` the decoder, its embeddings and the LM head.
PARAMETER_GROUPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "qwen": (
        ("merger", ("model.visual.merger.", "model.visual.deepstack_merger_list.")),
        ("vision", ("model.visual.",)),
        ("language_model", ("model.language_model.", "lm_head.")),
    ),
    "llava": (
        ("merger", ("model.multi_modal_projector.", "model.image_newline")),
        ("vision", ("model.vision_tower.",)),
        ("language_model", ("model.language_model.", "lm_head.")),
    ),
}
# Module names that peft's `modules_to_save` fully trains next to LoRA, per family and part.
_MODULES_TO_SAVE = {
    "qwen": {"vision": ["visual"], "merger": ["merger", "deepstack_merger_list"]},
    "llava": {"vision": ["vision_tower"], "merger": ["multi_modal_projector"]},
}
_PEFT_PREFIX = "base_model.model."


def parameter_group(name: str, family: str) -> str:
    """The part a parameter belongs to: ``"vision"``, ``"merger"`` or ``"language_model"``.

    Args:
        name: a name from ``model.named_parameters()`` (a peft ``base_model.model.`` prefix is ignored).
        family: ``"qwen"`` or ``"llava"``.

    Raises:
        ValueError: a name that matches no part (an architecture this table does not know).
    """
    name = name.removeprefix(_PEFT_PREFIX)
    for group, prefixes in PARAMETER_GROUPS[family]:
        if name.startswith(prefixes):
            return group
    raise ValueError(f"parameter {name!r} belongs to no known part of a {family!r} model; see PARAMETER_GROUPS")


def parameter_numel(param: torch.Tensor) -> int:
    """Number of elements of a parameter, also when DeepSpeed ZeRO-3 partitioned it (``ds_numel``)."""
    numel = getattr(param, "ds_numel", None)
    return int(numel) if numel is not None else param.numel()


def set_trainable(
    model: torch.nn.Module, family: str, *, vision: bool, merger: bool, language_model: bool
) -> dict[str, tuple[int, int]]:
    """Freeze or unfreeze each part of a (non-peft) model.

    Returns:
        ``{part: (trainable, total)}`` parameter counts (see :func:`trainable_summary`).

    Raises:
        ValueError: nothing would train, or an unknown parameter name.
    """
    wanted = {"vision": vision, "merger": merger, "language_model": language_model}
    for name, param in model.named_parameters():
        param.requires_grad_(wanted[parameter_group(name, family)])
    summary = trainable_summary(model, family)
    if not any(trainable for trainable, _ in summary.values()):
        raise ValueError("nothing to train: enable --tune_vision, --tune_merger, --tune_language_model or LoRA")
    return summary


def trainable_summary(model: torch.nn.Module, family: str) -> dict[str, tuple[int, int]]:
    """``{part: (trainable, total)}`` parameter counts.

    LoRA weights and peft's trained copies (``modules_to_save``) count in their part, the frozen originals of those
    copies do not. ZeRO-3 partitioned parameters count with their full size (:func:`parameter_numel`).
    """
    summary: dict[str, list[int]] = {"vision": [0, 0], "merger": [0, 0], "language_model": [0, 0]}
    for name, param in model.named_parameters():
        if ".original_module." in name:
            continue
        clean = name.replace(".modules_to_save.default.", ".")
        group = parameter_group(clean, family)
        numel = parameter_numel(param)
        summary[group][1] += numel
        if param.requires_grad:
            summary[group][0] += numel
    return {group: (counts[0], counts[1]) for group, counts in summary.items()}


def _modules_to_save(model: torch.nn.Module, family: str, *, vision: bool, merger: bool) -> list[str]:
    """Module-name suffixes that peft trains fully next to the adapters (ModuleLists expanded to their items)."""
    wanted: list[str] = []
    if vision:
        wanted += _MODULES_TO_SAVE[family]["vision"]
    if merger and not (vision and family == "qwen"):  # Qwen: visual holds the merger
        wanted += _MODULES_TO_SAVE[family]["merger"]
    # peft matches modules_to_save as name suffixes and cannot wrap a ModuleList: use its elements instead
    suffixes: list[str] = []
    for key in wanted:
        for name, module in model.named_modules():
            if name == key or name.endswith("." + key):
                if isinstance(module, torch.nn.ModuleList):
                    suffixes += [f"{key}.{index}" for index in range(len(module))]
                else:
                    suffixes.append(key)
    return list(dict.fromkeys(suffixes))


def apply_lora(model: torch.nn.Module, family: str, model_args: Any) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters on the language model's ``lora_target_modules``.

    The base weights are frozen. ``tune_vision`` / ``tune_merger`` train those parts fully through peft's
    ``modules_to_save`` (so checkpoints and the merged model include them).

    Args:
        model: a (non-peft) model of ``family``.
        family: ``"qwen"`` or ``"llava"``.
        model_args: any object with the LoRA fields of ``unifiedreward.train.ModelArguments`` (kept as a duck
            type so this library module never imports the entry module); reads ``lora_r``, ``lora_alpha`` (default ``2 * lora_r``), ``lora_dropout``,
            ``lora_target_modules`` (comma-separated), ``tune_vision`` and ``tune_merger``.

    Returns:
        The ``peft.PeftModel``.

    Raises:
        ValueError: an empty ``lora_target_modules``.
    """
    from peft import LoraConfig, get_peft_model

    targets = [t.strip() for t in model_args.lora_target_modules.split(",") if t.strip()]
    if not targets:
        raise ValueError("--lora_target_modules is empty")
    for param in model.parameters():
        param.requires_grad_(False)
    pattern = r"model\.language_model\..*\.(" + "|".join(re.escape(t) for t in targets) + r")"
    to_save = _modules_to_save(model, family, vision=model_args.tune_vision, merger=model_args.tune_merger)
    if family == "llava" and model_args.tune_merger:
        logger.warning("LoRA: model.image_newline (a bare parameter) stays frozen; the projector trains fully")
    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha if model_args.lora_alpha is not None else 2 * model_args.lora_r,
        lora_dropout=model_args.lora_dropout,
        target_modules=pattern,
        modules_to_save=to_save or None,
    )
    return get_peft_model(model, config)
