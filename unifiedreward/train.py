"""Reward-model SFT: ``python -m unifiedreward.train [--config file.yaml] [--flag value ...]``.

Fine-tunes a vision-language reward model (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision in transformers
format) on UnifiedReward-style records (a YAML mixture, one JSON/JSONL file, or the ``prefix{a,b}.json`` form),
with the Hugging Face :class:`~transformers.Trainer`:

* data: :mod:`unifiedreward.data` (mixture, records) and :mod:`unifiedreward.data.sft` (lazy media decoding,
  assistant-only labels, bad-sample dropping with ``--max_bad_fraction``, padding collator);
* what trains: ``--tune_vision``, ``--tune_merger`` (the projector), ``--tune_language_model`` (any combination),
  or LoRA adapters on the language model with ``--lora_r > 0`` (see :func:`set_trainable`, :func:`apply_lora`);
* length-grouped batching (``--group_by_length``) with lengths estimated without opening media;
* checkpoints ``output_dir/checkpoint-N`` hold the model and the processor in standard Hugging Face layout (with
  LoRA: the adapter, for resuming; the final ``output_dir`` then holds the merged model and ``adapter/``);
* ``--resume_from_checkpoint PATH|auto`` continues a killed run at the saved step, schedule and data position.

Every flag has ``--help``. Defaults follow the upstream recipe where it applies (protocol reference §3.5); the
7B recipe is ``scripts/configs/reward_qwen25vl_7b.yaml`` and the launcher is ``train.sh``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from unifiedreward.data.sft import BadDataError, MediaOptions, SFTCollator, SupervisedDataset

__all__ = [
    "PARAMETER_GROUPS",
    "DataArguments",
    "EpochLengthGroupedSampler",
    "ModelArguments",
    "RewardSFTTrainer",
    "RewardTrainingArguments",
    "apply_lora",
    "build_dataset",
    "main",
    "parameter_group",
    "parse_train_args",
    "run_training",
    "set_trainable",
]

logger = logging.getLogger("unifiedreward.train")  # also when run as __main__

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


# --------------------------------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ModelArguments:
    """The base model and what to train."""

    model_name_or_path: str = field(
        metadata={"help": "Base model: a local save_pretrained folder or a hub id (loaded by load_reward_model)."}
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weight dtype: float32, bfloat16, float16, or auto (bfloat16/float16 under DeepSpeed with "
            "--bf16/--fp16, where DeepSpeed keeps fp32 master weights; float32 otherwise, with --bf16 autocast).",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Attention implementation: sdpa, flash_attention_2, eager (default: transformers picks)."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom code from the checkpoint."})
    tune_vision: bool = field(
        default=True, metadata={"help": "Train the vision tower (without the projector). Upstream: yes."}
    )
    tune_merger: bool = field(
        default=True,
        metadata={
            "help": "Train the vision-language projector (Qwen merger, LLaVA multi_modal_projector). Upstream: yes."
        },
    )
    tune_language_model: bool = field(
        default=True,
        metadata={
            "help": "Train the language model (decoder, embeddings, LM head). Ignored with LoRA (--lora_r > 0)."
        },
    )
    lora_r: int = field(
        default=0, metadata={"help": "LoRA rank on the language model's linear layers; 0 = full fine-tuning."}
    )
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 * lora_r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        metadata={"help": "Comma-separated names of the language-model linear layers that get LoRA adapters."},
    )
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "With LoRA: save the final model with the adapters merged (standard layout, loadable by "
            "load_reward_model and vLLM) in output_dir, and the adapter in output_dir/adapter."
        },
    )


@dataclass
class DataArguments:
    """Training data and how samples are built."""

    data_path: str = field(
        metadata={
            "help": "A YAML mixture (dataset/train_data.yaml format), one .json/.jsonl file, or prefix{a,b}.json."
        }
    )
    media_folder: str | None = field(
        default=None,
        metadata={"help": "Folder that relative media paths are joined to when data_path is a JSON file (not YAML)."},
    )
    mixture_seed: int = field(default=42, metadata={"help": "Seed of the random:N sampling strategies."})
    invalid_records: str = field(
        default="skip",
        metadata={
            "help": "Malformed records: skip (dropped, logged and counted against max_bad_fraction) or raise.",
            "choices": ["skip", "raise"],
        },
    )
    images_as_video_threshold: int = field(
        default=2, metadata={"help": "An LLaVA 'images' list with more paths than this is one video (upstream: 2)."}
    )
    model_max_length: int = field(
        default=13000,
        metadata={
            "help": "Samples longer than this (tokens after media expansion) are dropped and counted, never truncated."
        },
    )
    frames_upbound: int = field(default=32, metadata={"help": "At most this many frames per video."})
    video_fps: float | None = field(
        default=1.0,
        metadata={"help": "Sample video files at this many frames per second before the frames_upbound cap."},
    )
    image_max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images to at most this many pixels (e.g. 262144 = 512x512)."}
    )
    video_max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize each video frame to at most this many pixels (e.g. 16384)."}
    )
    video_backend: str = field(
        default="auto",
        metadata={"help": "Video decoder: auto, decord or pyav.", "choices": ["auto", "decord", "pyav"]},
    )
    max_bad_fraction: float = field(
        default=0.05,
        metadata={
            "help": "Stop the run when more than this fraction of the samples tried was dropped (missing or "
            "corrupt media, over-length, invalid)."
        },
    )
    bad_fraction_min_samples: int = field(
        default=100, metadata={"help": "Check max_bad_fraction only after this many samples were tried."}
    )
    group_by_length: bool = field(
        default=False,
        metadata={
            "help": "Batch samples of similar estimated length to cut padding (same as --train_sampling_strategy "
            "group_by_length; lengths are estimated without opening media)."
        },
    )
    system_prompt: str | None = field(
        default=None,
        metadata={
            "help": "System turn for records without one (default: the chat template's; LLaVA: 'You are a "
            "helpful assistant.')."
        },
    )


@dataclass
class RewardTrainingArguments(TrainingArguments):
    """:class:`transformers.TrainingArguments` with defaults suited to reward-model SFT."""

    output_dir: str | None = field(
        default="runs/reward-sft", metadata={"help": "Where checkpoints and the final model are written."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep every key the collator returns (they are all model inputs)."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps (or a ratio < 1 of all steps)."})
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Where to report metrics: none, tensorboard, wandb, all."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "A checkpoint folder to continue from, 'auto' (the latest checkpoint-* in output_dir if any, "
            "else start fresh) or 'last' (the latest, which must exist)."
        },
    )


def parse_train_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, RewardTrainingArguments]:
    """Parse flags (and ``--config file.yaml``) into the three argument dataclasses."""
    from unifiedreward.args import parse_args

    return parse_args(
        (ModelArguments, DataArguments, RewardTrainingArguments),
        argv,
        prog="python -m unifiedreward.train",
        description="Supervised fine-tuning of a multimodal reward model (UnifiedReward recipe).",
    )


# --------------------------------------------------------------------------------------------------------------------
# trainable parameters
# --------------------------------------------------------------------------------------------------------------------


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


def set_trainable(
    model: torch.nn.Module, family: str, *, vision: bool, merger: bool, language_model: bool
) -> dict[str, tuple[int, int]]:
    """Freeze or unfreeze each part of a (non-peft) model.

    Returns:
        ``{part: (trainable, total)}`` parameter counts.

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
    """``{part: (trainable, total)}`` parameter counts; LoRA weights and peft's trained copies (``modules_to_save``)
    count in their part, the frozen originals of those copies do not."""
    summary: dict[str, list[int]] = {"vision": [0, 0], "merger": [0, 0], "language_model": [0, 0]}
    for name, param in model.named_parameters():
        if ".original_module." in name:
            continue
        clean = name.replace(".modules_to_save.default.", ".")
        group = parameter_group(clean, family)
        summary[group][1] += param.numel()
        if param.requires_grad:
            summary[group][0] += param.numel()
    return {group: (counts[0], counts[1]) for group, counts in summary.items()}


def apply_lora(model: torch.nn.Module, family: str, model_args: ModelArguments) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters on the language model's ``lora_target_modules``.

    The base weights are frozen. ``tune_vision`` / ``tune_merger`` train those parts fully through peft's
    ``modules_to_save`` (so checkpoints and the merged model include them).

    Returns:
        The ``peft.PeftModel``.
    """
    from peft import LoraConfig, get_peft_model

    targets = [t.strip() for t in model_args.lora_target_modules.split(",") if t.strip()]
    if not targets:
        raise ValueError("--lora_target_modules is empty")
    pattern = r"model\.language_model\..*\.(" + "|".join(re.escape(t) for t in targets) + r")"
    to_save: list[str] = []
    if model_args.tune_vision:
        to_save += _MODULES_TO_SAVE[family]["vision"]
    if model_args.tune_merger and not (model_args.tune_vision and family == "qwen"):  # Qwen: visual holds the merger
        to_save += _MODULES_TO_SAVE[family]["merger"]
    # peft matches modules_to_save as name suffixes and cannot wrap a ModuleList: use its elements instead
    suffixes = []
    for key in to_save:
        for name, module in model.named_modules():
            if name == key or name.endswith("." + key):
                if isinstance(module, torch.nn.ModuleList):
                    suffixes += [f"{key}.{index}" for index in range(len(module))]
                else:
                    suffixes.append(key)
    to_save = list(dict.fromkeys(suffixes))
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


# --------------------------------------------------------------------------------------------------------------------
# trainer
# --------------------------------------------------------------------------------------------------------------------


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
    """:class:`~transformers.Trainer` with precomputed-length grouping and dropped-sample counts in the logs."""

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
        checkpoint is read with ``from_pretrained`` (which applies the conversions) and copied in strictly.
        """
        target = model if model is not None else self.model
        plain = not (self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config"))
        has_weights = any(
            os.path.isfile(os.path.join(resume_from_checkpoint, name))
            for name in ("model.safetensors", "model.safetensors.index.json")
        )
        if not (plain and has_weights):
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


# --------------------------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------------------------


def _resolve_dtype(model_args: ModelArguments, args: RewardTrainingArguments) -> torch.dtype:
    if model_args.dtype != "auto":
        return getattr(torch, model_args.dtype)
    if args.deepspeed and args.bf16:
        return torch.bfloat16
    if args.deepspeed and args.fp16:
        return torch.float16
    return torch.float32


def build_dataset(data_args: DataArguments, processor: Any, family: str) -> SupervisedDataset:
    """Load the mixture, parse the records and wrap them in a :class:`SupervisedDataset`.

    Raises:
        BadDataError: more malformed records than ``max_bad_fraction`` allows, or none at all.
    """
    from unifiedreward.data import build_mixture, load_mixture

    entries = load_mixture(data_args.data_path, seed=data_args.mixture_seed, media_folder=data_args.media_folder)
    records = build_mixture(
        entries,
        images_as_video_threshold=data_args.images_as_video_threshold,
        on_invalid=data_args.invalid_records,
    )
    invalid = sum(entry.invalid for entry in records.summary)
    total = len(records) + invalid
    if total == 0 or not records:
        raise BadDataError(f"{data_args.data_path}: no usable record ({invalid} invalid)")
    if invalid / total > data_args.max_bad_fraction:
        raise BadDataError(
            f"{data_args.data_path}: {invalid} of {total} records are malformed ({invalid / total:.1%}), above "
            f"max_bad_fraction={data_args.max_bad_fraction:g}; their ids are logged above"
        )
    media = MediaOptions(
        frames_upbound=data_args.frames_upbound,
        video_fps=data_args.video_fps,
        image_max_pixels=data_args.image_max_pixels,
        video_max_pixels=data_args.video_max_pixels,
        video_backend=data_args.video_backend,
    )
    return SupervisedDataset(
        records,
        processor,
        family=family,
        model_max_length=data_args.model_max_length,
        media=media,
        max_bad_fraction=data_args.max_bad_fraction,
        bad_fraction_min_samples=data_args.bad_fraction_min_samples,
        system_prompt=data_args.system_prompt,
    )


def _resume_path(args: RewardTrainingArguments) -> str | None:
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


def _setup_logging(args: RewardTrainingArguments) -> None:
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


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: RewardTrainingArguments,
    *,
    callbacks: Sequence[Any] | None = None,
) -> RewardSFTTrainer:
    """Load the model and data, train, save; returns the trainer (``trainer.state`` has the history).

    Args:
        model_args: see :class:`ModelArguments`.
        data_args: see :class:`DataArguments`.
        training_args: see :class:`RewardTrainingArguments`.
        callbacks: extra :class:`~transformers.TrainerCallback` objects.

    Raises:
        BadDataError: too many dropped samples.
        ModelLoadError: the base model cannot be loaded.
    """
    from transformers import set_seed

    from unifiedreward.modeling import load_reward_model, model_family

    args = training_args
    _setup_logging(args)
    set_seed(args.seed)
    if data_args.group_by_length:
        args.train_sampling_strategy = "group_by_length"
    if args.activation_checkpointing and not args.activation_checkpointing_kwargs:
        args.activation_checkpointing_kwargs = {"use_reentrant": False}
    resume = _resume_path(args)

    dtype = _resolve_dtype(model_args, args)
    model, processor = load_reward_model(
        model_args.model_name_or_path,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=model_args.trust_remote_code,
    )
    family = model_family(model)
    if model_args.lora_r > 0:
        for param in model.parameters():
            param.requires_grad_(False)
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
    if args.world_size > 1 and args.ddp_find_unused_parameters is None:
        # a batch without images leaves the vision tower unused on that rank
        args.ddp_find_unused_parameters = True

    dataset = build_dataset(data_args, processor, family)
    logger.info("%d training records; family %s; model_max_length %s", len(dataset), family, dataset.model_max_length)
    trainer = RewardSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=SFTCollator(dataset.pad_token_id),
        processing_class=processor,
        callbacks=list(callbacks) if callbacks else None,
    )
    trainer.train(resume_from_checkpoint=resume)
    counts = dataset.counts()
    logger.info(
        "samples tried %d, used %d, dropped %d (media %d, over-length %d, invalid %d)",
        counts["tried"],
        counts["ok"],
        counts["dropped"],
        counts["media"],
        counts["over-length"],
        counts["invalid"],
    )
    _save_final(trainer, model_args, processor)
    return trainer


def _save_final(trainer: RewardSFTTrainer, model_args: ModelArguments, processor: Any) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: parse the flags, train, save. Returns the exit status."""
    model_args, data_args, training_args = parse_train_args(argv)
    run_training(model_args, data_args, training_args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
