"""The SFT :class:`~transformers.Trainer` subclass and its length-grouped sampler (reusable by other trainers)."""

from __future__ import annotations

import logging
import os

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from unifiedreward.data.sft import SupervisedDataset

__all__ = ["EpochLengthGroupedSampler", "RewardSFTTrainer", "has_full_weights"]

logger = logging.getLogger(__name__)


def has_full_weights(folder: str) -> bool:
    """Whether a checkpoint folder holds full model weights in Hugging Face layout (not only a LoRA adapter)."""
    return any(
        os.path.isfile(os.path.join(folder, name)) for name in ("model.safetensors", "model.safetensors.index.json")
    )


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """:class:`~transformers.trainer_pt_utils.LengthGroupedSampler` whose order is a function of ``(seed, epoch)``.

    The same on every rank and reproducible on resume (the Trainer calls :meth:`set_epoch` before each epoch).
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class RewardSFTTrainer(Trainer):
    """:class:`~transformers.Trainer` with precomputed-length grouping and dropped-sample counts in the logs.

    Attributes:
        weights_loaded_from: the checkpoint the model was already loaded from (set by :func:`run_training` when
            resuming): resuming from it then restores the optimizer, scheduler, data position and RNG states only.
    """

    weights_loaded_from: str | None = None

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and hasattr(dataset, "lengths"):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps, list(dataset.lengths), seed
            )
        return super()._get_train_sampler(train_dataset)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Restore the weights of a full (non-peft, non-DeepSpeed, non-FSDP) model from a checkpoint.

        transformers 5 saves VLMs such as Qwen2.5-VL with their legacy key names (``visual.*``, ``model.layers.*``)
        and converts them back in ``from_pretrained``, but ``Trainer._load_from_checkpoint`` loads the raw state dict
        with ``strict=False``: every key misses and training silently resumes from the *base* weights. So the
        checkpoint is read with ``from_pretrained`` (which applies the conversions) and copied in strictly; unless
        the model was loaded from this very checkpoint (:attr:`weights_loaded_from`, as :func:`run_training` does,
        so that no second copy of the model is ever loaded).
        """
        if self.weights_loaded_from is not None and os.path.samefile(self.weights_loaded_from, resume_from_checkpoint):
            logger.info("the model was loaded from %s: not reading its weights again", resume_from_checkpoint)
            return
        target = model if model is not None else self.model
        plain = not (self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config"))
        if not (plain and has_full_weights(resume_from_checkpoint)):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        unwrapped = self.accelerator.unwrap_model(target)
        dtype = next(unwrapped.parameters()).dtype
        restored = type(unwrapped).from_pretrained(resume_from_checkpoint, dtype=dtype)
        unwrapped.load_state_dict(restored.state_dict(), strict=True)
        del restored
        logger.info("restored the model weights from %s", resume_from_checkpoint)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # no KV cache while training; passed per call so that saved configs keep use_cache for inference
        return super().compute_loss(model, {**inputs, "use_cache": False}, return_outputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        dataset = self.train_dataset
        if isinstance(dataset, SupervisedDataset) and "loss" in logs:
            logs["dropped_samples"] = dataset.counts()["dropped"]
        super().log(logs, start_time)
