"""Steps every training entry point shares (reward SFT in :mod:`unifiedreward.train`, VLM DPO in
:mod:`unifiedreward.dpo.vlm`): weight dtype, the checkpoint to resume from, logging, what trains, the final save.

The ``model_args`` they take are duck-typed: any object with the fields of ``unifiedreward.train.ModelArguments``
(``dtype``, ``lora_r``, ``tune_vision``, ``tune_merger``, ``tune_language_model``, ``merge_lora``, ...), so this
library module never imports an entry module.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from unifiedreward.training.trainable import apply_lora, set_trainable, trainable_summary

logger = logging.getLogger(__name__)

__all__ = ["resolve_dtype", "resume_path", "save_final", "select_trainable", "setup_logging"]


def resolve_dtype(model_args: Any, args: TrainingArguments) -> torch.dtype:
    """The dtype to load weights in: ``model_args.dtype`` unless ``"auto"``, then bf16 / fp16 under DeepSpeed with
    that mixed precision (ZeRO keeps the weights in it), else fp32 (the Trainer's autocast does the rest)."""
    if model_args.dtype != "auto":
        return getattr(torch, model_args.dtype)
    if args.deepspeed and args.bf16:
        return torch.bfloat16
    if args.deepspeed and args.fp16:
        return torch.float16
    return torch.float32




def resume_path(args: TrainingArguments) -> str | None:
    """The checkpoint folder to resume from: ``--resume_from_checkpoint`` as a folder, or ``auto`` / ``last`` /
    ``true`` for the newest ``checkpoint-*`` in ``output_dir`` (``auto``: none is fine, ``last``: none is an error).

    Raises:
        FileNotFoundError: the folder, or (``last`` / ``true``) any checkpoint, is missing.
    """
    from transformers.trainer_utils import get_last_checkpoint

    resume = args.resume_from_checkpoint
    if resume is None or str(resume).lower() in ("", "none", "false"):
        return None
    if str(resume).lower() in ("auto", "last", "true"):
        last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
        if last is None and str(resume).lower() != "auto":
            raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no checkpoint-* in {args.output_dir}")
        if last is None:
            logger.info("no checkpoint in %s: starting from scratch", args.output_dir)
        return last
    if not os.path.isdir(resume):
        raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no such folder")
    return str(resume)




def setup_logging(args: TrainingArguments) -> None:
    """Log to stderr with timestamps; the package's own summaries at INFO on the main process by default."""
    import transformers

    level = args.get_process_log_level()
    if not logging.getLogger().handlers:
        logging.basicConfig(
            format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
        )
    # our own summaries (trainable parameters, data mixture, dropped samples) at INFO on the main process by default
    ours = logging.INFO if args.log_level == "passive" and args.should_log else level
    logging.getLogger("unifiedreward").setLevel(ours)
    transformers.utils.logging.set_verbosity(level)




def select_trainable(model: torch.nn.Module, family: str, model_args: Any) -> torch.nn.Module:
    """Freeze/unfreeze the parts, or wrap with LoRA; logs the trainable counts; returns the model to train."""
    if model_args.lora_r > 0:
        model = apply_lora(model, family, model_args)
    else:
        set_trainable(
            model,
            family,
            vision=model_args.tune_vision,
            merger=model_args.tune_merger,
            language_model=model_args.tune_language_model,
        )
    summary = trainable_summary(model, family)
    logger.info(
        "trainable parameters (%s, %s): %s",
        type(model).__name__,
        "LoRA" if model_args.lora_r > 0 else "full",
        ", ".join(f"{part} {trainable:,}/{total:,}" for part, (trainable, total) in summary.items()),
    )
    return model




def save_final(trainer: Trainer, model_args: Any, processor: Any) -> None:
    """Save the final model and processor in ``output_dir`` (LoRA: merged, with the adapter in ``adapter/``)."""
    output_dir = trainer.args.output_dir
    if model_args.lora_r <= 0:
        trainer.save_model(output_dir)
        trainer.save_state()
        return
    trainer.save_model(os.path.join(output_dir, "adapter"))
    trainer.save_state()
    if not model_args.merge_lora:
        return
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        logger.warning("LoRA under ZeRO-3: not merging; merge %s/adapter into the base model offline", output_dir)
        return
    if trainer.args.should_save:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        logger.info("saved the merged model and the processor to %s", output_dir)
    trainer.accelerator.wait_for_everyone()
