"""DPO of a vision-language model on preference pairs: ``python dpo_understanding/train_dpo.py [--config y.yaml]``.

Trains Qwen2-VL / Qwen2.5-VL / Qwen3-VL / LLaVA-OneVision (transformers classes, loaded by
:func:`unifiedreward.modeling.load_reward_model`) with TRL's :class:`~trl.DPOTrainer`:

* data: :class:`~unifiedreward.dpo.vlm_data.PreferenceDataset` (``infer+sift.py`` output, upstream's DPO json,
  YAML mixtures; bad or over-long records skipped and counted with their ids, never truncated); batches from
  :class:`~unifiedreward.dpo.vlm_collator.PreferenceCollator` (images: TRL's collator; videos: ours);
* what trains: the SFT flags (:data:`DPOModelArguments`): ``--tune_vision`` / ``--tune_merger`` /
  ``--tune_language_model`` for full fine-tuning (the reference is a frozen copy of the starting model), or
  ``--lora_r > 0`` (the reference is the same model with its adapters disabled: no second copy);
* loss: TRL's ``--loss_type`` (``sigmoid`` default) with ``--beta``; upstream's ``L = dpo_alpha * L_DPO + gamma *
  CE(chosen)`` (protocol reference §5.1) maps onto TRL's loss list: ``--gamma g > 0`` appends TRL's ``"sft"`` loss
  (mean negative log-likelihood of the chosen answer's tokens, the same CE) with weight ``g``, every DPO-type loss
  gets weight ``--dpo_alpha``. TRL 1.16 has no ``rpo_alpha``;
* everything else is :class:`transformers.TrainingArguments` / :class:`trl.DPOConfig`: ``--bf16``,
  ``--gradient_checkpointing``, ``--deepspeed scripts/zero3_offload.json`` (GPU only; see ``docs/dpo.md``),
  ``--report_to wandb|tensorboard``, ``--resume_from_checkpoint PATH|auto|last``.

Outputs as in SFT: ``output_dir/checkpoint-N`` and the final model + processor in ``output_dir`` (LoRA: merged,
the adapter in ``output_dir/adapter``), reloadable with ``load_reward_model``; ``output_dir/skipped_records.json``
lists the records left out. A later session can drive it from Python: ``run_dpo(*dpo_arguments(**values))`` (or
:func:`parse_dpo_args` with flags).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trl import DPOConfig, DPOTrainer

from unifiedreward.dpo.vlm_data import MediaConfig, PreferenceDataset
from unifiedreward.train import ModelArguments

__all__ = [
    "DPODataArguments",
    "DPOModelArguments",
    "VLMDPOConfig",
    "VLMDPOTrainer",
    "dpo_arguments",
    "main",
    "parse_dpo_args",
    "run_dpo",
]

logger = logging.getLogger(__name__)

#: TRL losses that are not preference losses (they get their own weight, not ``dpo_alpha``).
_NON_PREFERENCE_LOSSES = ("sft",)


def _model_arguments() -> type:
    """SFT's :class:`~unifiedreward.train.ModelArguments` without ``trust_remote_code`` (``DPOConfig`` has it)."""
    kept = []
    for item in dataclasses.fields(ModelArguments):
        if item.name == "trust_remote_code":
            continue
        default = {} if item.default is dataclasses.MISSING else {"default": item.default}
        kept.append((item.name, item.type, field(metadata=dict(item.metadata), **default)))
    made = dataclasses.make_dataclass("DPOModelArguments", kept)
    made.__module__ = __name__
    made.__doc__ = "The base model and what to train (the SFT flags; ``--trust_remote_code`` is in the config)."
    return made


#: The model flags of SFT (``--model_name_or_path``, ``--tune_*``, ``--lora_*``, ``--merge_lora``, ``--dtype``).
DPOModelArguments = _model_arguments()


@dataclass
class DPODataArguments:
    """Preference data and how samples are built."""

    data_path: str = field(
        metadata={
            "help": "Preference pairs: infer+sift.py output or upstream's DPO json (.json/.jsonl, prefix{a,b}.json) "
            "or a YAML mixture of such files (sampling_strategy as in SFT)."
        }
    )
    image_folder: str | None = field(
        default=None,
        metadata={
            "help": "Folder relative image paths (and, by default, video paths) resolve against, for a JSON "
            "--data_path (YAML entries name their own image_folder / video_folder)."
        },
    )
    video_folder: str | None = field(
        default=None, metadata={"help": "Folder relative video paths resolve against (default: --image_folder)."}
    )
    mixture_seed: int = field(default=42, metadata={"help": "Seed of the random:N sampling strategies."})
    model_max_length: int | None = field(
        default=None,
        metadata={
            "help": "Pairs whose prompt (media expanded) + longer answer exceed this many tokens are skipped and "
            "counted, never truncated (upstream: 10000 image, 32768 video). Unset: no limit."
        },
    )
    frames_upbound: int = field(default=24, metadata={"help": "At most this many frames per video (upstream: 24)."})
    video_fps: float | None = field(
        default=1.0, metadata={"help": "Sample video files at this many frames per second before frames_upbound."}
    )
    image_max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images to at most this many pixels (e.g. 802816 = 896x896)."}
    )
    video_max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize each video frame to at most this many pixels (e.g. 200704)."}
    )
    video_backend: str = field(
        default="auto",
        metadata={"help": "Video decoder: auto, decord or pyav.", "choices": ["auto", "decord", "pyav"]},
    )
    max_bad_fraction: float = field(
        default=0.05,
        metadata={
            "help": "Refuse to train when more than this fraction of the records is skipped (malformed, unreadable "
            "media, over-length); the skipped ids are logged and written to output_dir/skipped_records.json."
        },
    )


@dataclass
class VLMDPOConfig(DPOConfig):
    """:class:`trl.DPOConfig` with this project's defaults and upstream's ``dpo_alpha`` / ``gamma``."""

    output_dir: str | None = field(default="runs/vlm-dpo", metadata={"help": "Checkpoints and the final model."})
    bf16: bool | None = field(
        default=False,
        metadata={"help": "bf16 mixed precision (upstream: on; the 7B configs set it; on CPU needs --use_cpu)."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Gradient (activation) checkpointing (upstream: on; the 7B configs set it)."}
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Must stay unset: TRL would truncate through media tokens; use --model_max_length."},
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep every example key (the collator needs the media and the id)."}
    )
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
    dpo_alpha: float = field(
        default=1.0, metadata={"help": "Upstream's weight of the preference loss(es) (upstream: 1.0)."}
    )
    gamma: float = field(
        default=0.0,
        metadata={
            "help": "Upstream's weight of an SFT (cross-entropy) term on the chosen answer: adds TRL's 'sft' loss "
            "with this weight (upstream: 0)."
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.loss_type, str):
            self.loss_type = [self.loss_type]
        if self.gamma < 0 or self.dpo_alpha < 0:
            raise ValueError("--gamma and --dpo_alpha must be >= 0")
        if self.gamma > 0 or self.dpo_alpha != 1.0:
            if self.loss_weights is not None:
                raise ValueError("give either --loss_weights or --dpo_alpha/--gamma, not both")
            if self.gamma > 0 and "sft" not in self.loss_type:
                self.loss_type = [*self.loss_type, "sft"]
            self.loss_weights = [
                self.gamma if name in _NON_PREFERENCE_LOSSES else self.dpo_alpha for name in self.loss_type
            ]
        super().__post_init__()


def parse_dpo_args(argv: Sequence[str] | None = None) -> tuple[Any, DPODataArguments, VLMDPOConfig]:
    """Parse flags (and ``--config file.yaml``) into the three argument dataclasses."""
    from unifiedreward.args import parse_args

    return parse_args(
        (DPOModelArguments, DPODataArguments, VLMDPOConfig),
        argv,
        prog="python dpo_understanding/train_dpo.py",
        description="DPO of a vision-language model on image/video preference pairs (UnifiedReward §5.1 recipe).",
    )


def dpo_arguments(**values: Any) -> tuple[Any, DPODataArguments, VLMDPOConfig]:
    """The three argument objects from keyword values, for driving :func:`run_dpo` from Python.

    Example:
        >>> run_dpo(*dpo_arguments(model_name_or_path="runs/policy", data_path="pairs.json", image_folder="media",
        ...                        output_dir="runs/dpo", use_cpu=True, max_steps=20, lora_r=8))  # doctest: +SKIP

    Raises:
        TypeError: a name that is no flag.
    """
    classes = (DPOModelArguments, DPODataArguments, VLMDPOConfig)
    names = [{item.name for item in dataclasses.fields(cls) if item.init} for cls in classes]
    unknown = sorted(set(values) - set().union(*names))
    if unknown:
        raise TypeError(f"unknown DPO arguments: {unknown}")
    model_args, data_args, args = (
        cls(**{key: value for key, value in values.items() if key in known})
        for cls, known in zip(classes, names, strict=True)
    )
    return model_args, data_args, args


def build_dataset(data_args: DPODataArguments, processor: Any, family: str) -> PreferenceDataset:
    """The checked :class:`PreferenceDataset` of ``data_args`` (raises ``DataError`` when unusable)."""
    media = MediaConfig(
        num_frames=data_args.frames_upbound,
        fps=data_args.video_fps,
        image_max_pixels=data_args.image_max_pixels,
        video_max_pixels=data_args.video_max_pixels,
        video_backend=data_args.video_backend,
    )
    return PreferenceDataset.build(
        data_args.data_path,
        processor,
        family,
        image_folder=data_args.image_folder,
        video_folder=data_args.video_folder,
        media=media,
        max_length=data_args.model_max_length,
        seed=data_args.mixture_seed,
        max_skipped_fraction=data_args.max_bad_fraction,
    )


def _load(model_args: Any, args: VLMDPOConfig, source: str, dtype: Any) -> tuple[Any, Any]:
    from unifiedreward.modeling import load_reward_model

    return load_reward_model(
        source,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=args.trust_remote_code,
    )


def _load_models(model_args: Any, args: VLMDPOConfig, resume: str | None) -> tuple[Any, Any, Any, str | None]:
    """``(policy, reference or None, processor, checkpoint the policy came from or None)``.

    Full fine-tuning resumed from a checkpoint with full weights loads the policy from it (transformers'
    ``Trainer._load_from_checkpoint`` silently misses every key of a transformers-5 VLM checkpoint, see
    :class:`unifiedreward.training.trainer.RewardSFTTrainer`) and the reference from ``model_name_or_path``. The
    reference is a frozen copy of the starting model (a fresh load under DeepSpeed, whose parameters are sharded);
    with LoRA there is none (the adapter-disabled model is the reference).
    """
    from unifiedreward.training.steps import resolve_dtype
    from unifiedreward.training.trainer import has_full_weights

    dtype = resolve_dtype(model_args, args)
    base = model_args.model_name_or_path
    lora = model_args.lora_r > 0
    plain = not lora and not args.deepspeed and not args.fsdp
    loaded_from = resume if resume is not None and plain and has_full_weights(resume) else None
    model, processor = _load(model_args, args, loaded_from or base, dtype)
    if lora:
        return model, None, processor, None
    if loaded_from is not None or args.deepspeed:
        reference, _ = _load(model_args, args, base, dtype)
    else:
        reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return model, reference, processor, loaded_from


class VLMDPOTrainer(DPOTrainer):
    """:class:`trl.DPOTrainer` that does not reload weights the policy was already loaded from on resume.

    Attributes:
        weights_loaded_from: the checkpoint the policy's weights came from (see :func:`_load_models`), or ``None``.
    """

    weights_loaded_from: str | None = None

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        loaded = self.weights_loaded_from
        if loaded is not None and os.path.samefile(loaded, resume_from_checkpoint):
            logger.info("the policy was loaded from %s: not reading its weights again", resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)


def _drop_reference_adapter(trainer: DPOTrainer) -> None:
    """TRL copies an existing adapter into a ``"ref"`` adapter; ours is fresh, so the disabled-adapter model is the
    reference and the copy (with its ``modules_to_save`` copies) is deleted."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
        model.set_adapter("default")
        logger.info("LoRA: the reference is the model with its adapters disabled")


def run_dpo(
    model_args: Any,
    data_args: DPODataArguments,
    args: VLMDPOConfig,
    *,
    callbacks: Sequence[Any] | None = None,
) -> VLMDPOTrainer:
    """Load the model and the pairs, train with DPO, save; returns the trainer (``trainer.state`` has the history).

    Args:
        model_args: the base model and what trains (:data:`DPOModelArguments`).
        data_args: see :class:`DPODataArguments`.
        args: see :class:`VLMDPOConfig`.
        callbacks: extra :class:`~transformers.TrainerCallback` objects.

    Raises:
        DataError: no usable pair, or too many skipped records.
        ModelLoadError: the base model cannot be loaded.
        ValueError: ``--max_length`` set (use ``--model_max_length``).
    """
    from transformers import set_seed

    from unifiedreward.dpo.vlm_collator import PreferenceCollator
    from unifiedreward.modeling import model_family
    from unifiedreward.training.steps import resume_path, save_final, select_trainable, setup_logging

    if args.max_length is not None:
        raise ValueError("--max_length would truncate through media tokens; use --model_max_length (skips pairs)")
    setup_logging(args)
    set_seed(args.seed)
    if (
        args.gradient_checkpointing
        and not args.gradient_checkpointing_kwargs
        and not (
            model_args.lora_r > 0 and args.deepspeed  # TRL forces reentrant checkpointing for PEFT under ZeRO-3
        )
    ):
        args.gradient_checkpointing_kwargs = {"use_reentrant": False}
    resume = resume_path(args)

    model, reference, processor, loaded_from = _load_models(model_args, args, resume)
    family = model_family(model)
    model = select_trainable(model, family, model_args)

    dataset = build_dataset(data_args, processor, family)
    if args.should_save:
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "skipped_records.json"), "w", encoding="utf-8") as handle:
            json.dump({"total": dataset.report.total, "skipped": dataset.report.skipped}, handle, indent=1)
    logger.info(
        "%d preference pairs (family %s, loss %s, weights %s, beta %g)",
        len(dataset),
        family,
        args.loss_type,
        args.loss_weights,
        args.beta,
    )
    trainer = VLMDPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=dataset.as_hf_dataset(),
        processing_class=processor,
        data_collator=PreferenceCollator(processor),
        callbacks=list(callbacks or []),
    )
    trainer.weights_loaded_from = loaded_from
    _drop_reference_adapter(trainer)
    trainer.train(resume_from_checkpoint=resume)
    save_final(trainer, model_args, processor)
    return trainer


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: parse the flags, train, save. Returns the exit status."""
    model_args, data_args, args = parse_dpo_args(argv)
    run_dpo(model_args, data_args, args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
