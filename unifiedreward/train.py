"""Reward-model SFT: ``python -m unifiedreward.train [--config file.yaml] [--flag value ...]``.

Fine-tunes a vision-language reward model (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision in transformers
format) on UnifiedReward-style records (a YAML mixture, one JSON/JSONL file, or the ``prefix{a,b}.json`` form),
with the Hugging Face :class:`~transformers.Trainer`:

* data: :mod:`unifiedreward.data` (mixture, records) and :mod:`unifiedreward.data.sft` (lazy media decoding,
  assistant-only labels, bad-sample dropping with ``--max_bad_fraction``, padding collator);
* what trains: ``--tune_vision``, ``--tune_merger`` (the projector), ``--tune_language_model`` (any combination),
  or LoRA adapters on the language model with ``--lora_r > 0`` (see :func:`set_trainable`, :func:`apply_lora`);
* length-grouped batching (``--group_by_length``) with lengths estimated without opening media;
* a pre-encoded sample cache (``--sample_cache_dir``, :mod:`unifiedreward.data.cache`) reused across epochs and runs;
* ``--max_bad_fraction`` and ``--max_train_minutes`` stop every rank at the same step (they are agreed by
  all-reduce, :mod:`unifiedreward.training.callbacks`); the progress bar then counts the time budget;
* checkpoints ``output_dir/checkpoint-N`` hold the model and the processor in standard Hugging Face layout (with
  LoRA: the adapter, for resuming; the final ``output_dir`` then holds the merged model and ``adapter/``);
* ``--resume_from_checkpoint PATH|auto`` continues a killed run at the saved step, schedule and data position
  (the model is loaded once, from the checkpoint).

The reusable pieces live in :mod:`unifiedreward.training` (trainable parts and LoRA, the trainer subclass,
callbacks); this module holds the flags, :func:`run_training` and :func:`main`.

Every flag has ``--help``. Defaults follow the upstream recipe where it applies (protocol reference §3.5); the
7B recipe is ``scripts/configs/reward_qwen25vl_7b.yaml`` and the launcher is ``train.sh``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from unifiedreward.data.sft import BadDataError, MediaOptions, SFTCollator, SupervisedDataset
from unifiedreward.training.steps import resolve_dtype, resume_path, save_final, select_trainable, setup_logging
from unifiedreward.training.trainable import (
    PARAMETER_GROUPS,
    apply_lora,
    parameter_group,
    set_trainable,
    trainable_summary,
)
from unifiedreward.training.trainer import EpochLengthGroupedSampler, RewardSFTTrainer, has_full_weights

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
    "trainable_summary",
]

logger = logging.getLogger("unifiedreward.train")  # also when run as __main__


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
    sample_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder of the pre-encoded sample cache: token ids, labels and processed media tensors of each "
            "sample are written on first use and read back in later epochs and runs (no media decoding, no "
            "processor). Keyed by the record, its media files (size, mtime), the processor, model_max_length and "
            "the media options; unusable samples are cached as skipped. Unset: no cache."
        },
    )
    sample_cache: bool = field(
        default=True, metadata={"help": "Use --sample_cache_dir when it is set (false: ignore it, encode live)."}
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
    max_train_minutes: float = field(
        default=0.0,
        metadata={
            "help": "Stop training after this many minutes of wall time, even before max_steps (0: no limit); all "
            "ranks stop at the same step and the progress bar counts the time budget."
        },
    )
    time_budget_cooldown: float = field(
        default=0.0,
        metadata={
            "help": "With --max_train_minutes: the last fraction of the time budget decays the learning rate "
            "linearly to 0 (0: none)."
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
# entry point
# --------------------------------------------------------------------------------------------------------------------


def build_dataset(
    data_args: DataArguments, processor: Any, family: str, *, stop_in_getitem: bool = True
) -> SupervisedDataset:
    """Load the mixture, parse the records and wrap them in a :class:`SupervisedDataset`.

    Args:
        data_args: see :class:`DataArguments` (``--sample_cache_dir`` gives the dataset a sample cache).
        processor: the model's processor.
        family: ``"qwen"`` or ``"llava"``.
        stop_in_getitem: see :class:`SupervisedDataset` (:func:`run_training` checks at step ends instead).

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
        cache_dir=data_args.sample_cache_dir if data_args.sample_cache else None,
        stop_in_getitem=stop_in_getitem,
    )


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: RewardTrainingArguments,
    *,
    callbacks: Sequence[Any] | None = None,
) -> RewardSFTTrainer:
    """Load the model and data, train, save; returns the trainer (``trainer.state`` has the history).

    The model is loaded once: from the checkpoint when resuming a full fine-tuning run (the trainer then restores
    only the optimizer, scheduler, data position and RNG states), else from ``model_name_or_path``.

    Args:
        model_args: see :class:`ModelArguments`.
        data_args: see :class:`DataArguments`.
        training_args: see :class:`RewardTrainingArguments`.
        callbacks: extra :class:`~transformers.TrainerCallback` objects.

    Raises:
        BadDataError: too many dropped samples (raised on every rank at the same step).
        ModelLoadError: the base model cannot be loaded.
    """
    from transformers import set_seed

    from unifiedreward.modeling import model_family

    args = training_args
    setup_logging(args)
    set_seed(args.seed)
    if data_args.group_by_length:
        args.train_sampling_strategy = "group_by_length"
    if args.activation_checkpointing and not args.activation_checkpointing_kwargs:
        args.activation_checkpointing_kwargs = {"use_reentrant": False}
    resume = resume_path(args)

    # model (once) and what trains
    model, processor, loaded_from = _load_model(model_args, args, resume)
    family = model_family(model)
    model = select_trainable(model, family, model_args)
    if args.world_size > 1 and args.ddp_find_unused_parameters is None:
        # a batch without images leaves the vision tower unused on that rank
        args.ddp_find_unused_parameters = True

    # data
    dataset = build_dataset(data_args, processor, family, stop_in_getitem=False)
    logger.info("%d training records; family %s; model_max_length %s", len(dataset), family, dataset.model_max_length)

    # trainer
    trainer = RewardSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=SFTCollator(dataset.pad_token_id),
        processing_class=processor,
        callbacks=_callbacks(args, dataset, callbacks),
    )
    trainer.weights_loaded_from = loaded_from
    if args.max_train_minutes > 0 and not args.disable_tqdm:
        from transformers.trainer_callback import ProgressCallback

        from unifiedreward.training.callbacks import BudgetProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(BudgetProgressCallback(60.0 * args.max_train_minutes))

    # train (the last dropped-sample check runs when training ends), save
    trainer.train(resume_from_checkpoint=resume)
    _log_counts(dataset)
    save_final(trainer, model_args, processor)
    return trainer


def _load_model(
    model_args: ModelArguments, args: RewardTrainingArguments, resume: str | None
) -> tuple[torch.nn.Module, Any, str | None]:
    """``(model, processor, checkpoint the weights came from or None)``: one load, from the checkpoint if it can."""
    from unifiedreward.modeling import load_reward_model

    source, loaded_from = model_args.model_name_or_path, None
    # a LoRA checkpoint holds only the adapter, and DeepSpeed/FSDP restore their own shards: load the base then
    plain = model_args.lora_r <= 0 and not args.deepspeed and not args.fsdp
    if resume is not None and plain and has_full_weights(resume):
        source = loaded_from = resume
    model, processor = load_reward_model(
        source,
        dtype=resolve_dtype(model_args, args),
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=model_args.trust_remote_code,
    )
    logger.info("loaded the model from %s", source)
    return model, processor, loaded_from


def _callbacks(args: RewardTrainingArguments, dataset: SupervisedDataset, extra: Sequence[Any] | None) -> list[Any]:
    from unifiedreward.training.callbacks import BadSampleCallback, TimeBudgetCallback

    callbacks: list[Any] = [BadSampleCallback(dataset)]
    if args.max_train_minutes > 0:
        callbacks.append(TimeBudgetCallback(args.max_train_minutes, cooldown=args.time_budget_cooldown))
    return callbacks + list(extra or [])


def _log_counts(dataset: SupervisedDataset) -> None:
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
    cache = dataset.cache
    if cache is not None:
        logger.info("sample cache %s (main process): %d hits, %d writes", cache.folder, cache.hits, cache.writes)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: parse the flags, train, save. Returns the exit status."""
    model_args, data_args, training_args = parse_train_args(argv)
    run_training(model_args, data_args, training_args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
