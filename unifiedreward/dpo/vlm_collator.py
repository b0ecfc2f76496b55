"""Batches of preference pairs for TRL's ``DPOTrainer``: images through TRL's collator, videos through ours.

TRL 1.16's ``DataCollatorForVisionPreference`` knows images only (trl#4002). :class:`PreferenceCollator` hands a
batch without videos to it unchanged and builds a batch with videos the same way TRL builds an image batch:

1. each example is rendered with ``trl.data_utils.apply_chat_template`` (prompt with the generation prompt; chosen
   and rejected as the text that follows it);
2. the ``2B`` prompts (``[examples; examples]``) go through the processor in one call with their media (videos as
   sampled frames + :func:`unifiedreward.inputs.video_metadata`, ``do_sample_frames=False``), **left-padded**;
3. the chosen and the rejected answers are tokenised, **right-padded** to one common width ``C``;
4. ``input_ids = [prompt | completion]`` (``2B x (P + C)``), ``completion_mask`` = 1 exactly on the answer
   tokens, ``mm_token_type_ids`` = the processor's for the prompt and 0 for the completion;
5. (LLaVA-OneVision, whose processor stacks clips into one tensor: shorter clips of the batch are padded to the
   longest by repeating their last frame, :func:`stacks_frames`);
6. ``trl.trainer.utils.flush_left`` moves every row to the left and trims all-padding columns; the processor's
   ``video_metadata`` bookkeeping is dropped.

Row ``i < B`` is example ``i`` with its chosen answer, row ``B + i`` the same prompt with the rejected one, which
is the layout TRL's loss expects (``logps.chunk(2)``). No truncation happens here: the dataset drops over-long
pairs before training (:func:`unifiedreward.dpo.vlm_data.check_pairs`, measured with :func:`encode_lengths`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["PreferenceCollator", "encode_lengths", "render_example", "stacks_frames"]


def render_example(example: Mapping[str, Any], processor: Any) -> dict[str, str]:
    """``{"prompt", "chosen", "rejected"}`` texts of a conversational example, rendered as TRL renders them."""
    from trl.data_utils import apply_chat_template

    keys = ("prompt", "chosen", "rejected")
    return apply_chat_template({key: example[key] for key in keys}, processor)


def stacks_frames(processor: Any) -> bool:
    """Whether the processor returns the clips of a batch as one ``(N, T, 3, h, w)`` tensor (LLaVA-OneVision), so
    every clip of a batch needs the same number of frames ``T`` (the Qwen processors flatten patches instead)."""
    video_processor = getattr(processor, "video_processor", None)
    return video_processor is not None and getattr(video_processor, "temporal_patch_size", None) is None


def _media_kwargs(examples: Sequence[Mapping[str, Any]], *, equal_frames: bool = False) -> dict[str, Any]:
    """The processor's media arguments for the prompts of ``examples`` (once each; the caller repeats them).

    ``equal_frames``: pad shorter clips to the batch's longest by repeating their last frame (see
    :func:`stacks_frames`).
    """
    from unifiedreward.data.sample_media import pad_frames
    from unifiedreward.inputs import video_metadata

    kwargs: dict[str, Any] = {}
    images = [list(example.get("images") or []) for example in examples]
    if any(images):
        kwargs["images"] = images
    videos = [example["video"] for example in examples if example.get("video") is not None]
    if videos and equal_frames:
        longest = max(len(video) for video in videos)
        videos = [pad_frames(video, longest) for video in videos]
    if videos:
        kwargs["videos"] = [np.asarray(video.frames) for video in videos]
        kwargs["video_metadata"] = [video_metadata(video) for video in videos]
        kwargs["do_sample_frames"] = False
    return kwargs


def _repeat(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Media arguments for ``[examples; examples]``."""
    return {key: value * 2 if isinstance(value, list) else value for key, value in kwargs.items()}


def encode_lengths(example: Mapping[str, Any], processor: Any) -> int:
    """Tokens of an example's longer side: prompt (media expanded) + ``max(len(chosen), len(rejected))``."""
    texts = render_example(example, processor)
    prompt = processor(
        text=[texts["prompt"]], return_tensors="pt", add_special_tokens=False, **_media_kwargs([example])
    )
    tokenizer = processor.tokenizer
    answers = [len(tokenizer(texts[key], add_special_tokens=False)["input_ids"]) for key in ("chosen", "rejected")]
    return int(prompt["input_ids"].shape[1]) + max(answers)


class PreferenceCollator:
    """``DPOTrainer``'s ``data_collator`` for image, video and text-only preference examples (module docstring).

    Args:
        processor: the model's processor (a ``ProcessorMixin`` with a tokenizer that has a pad token).

    Call with examples of :class:`~unifiedreward.dpo.vlm_data.PreferenceDataset`; returns the model inputs plus
    ``completion_mask``, all of ``2B`` rows.
    """

    def __init__(self, processor: Any):
        from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

        self.processor = processor
        self.equal_frames = stacks_frames(processor)
        self.image_collator = DataCollatorForVisionPreference(processor, max_length=None)

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not any(example.get("video") is not None for example in examples):
            # TRL's own path; it edits the examples in place, so hand it copies
            return self.image_collator([{k: v for k, v in e.items() if k != "video"} for e in examples])
        return self.video_batch(examples)

    def video_batch(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Steps 1-6 of the module docstring for a batch holding at least one video."""
        from trl.trainer.utils import flush_left, pad

        rendered = [render_example(example, self.processor) for example in examples]
        prompts = [texts["prompt"] for texts in rendered] * 2
        batch = self.processor(
            text=prompts,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=False,
            **_repeat(_media_kwargs(examples, equal_frames=self.equal_frames)),
        )
        tokenizer = self.processor.tokenizer
        sides = [
            tokenizer(
                [texts[key] for texts in rendered],
                padding=True,
                padding_side="right",
                return_tensors="pt",
                add_special_tokens=False,
            )
            for key in ("chosen", "rejected")
        ]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        completion_ids = torch.cat(tuple(pad([side["input_ids"] for side in sides], padding_value=pad_id)))
        completion_mask = torch.cat(tuple(pad([side["attention_mask"] for side in sides], padding_value=0)))

        prompt_mask = batch["attention_mask"]
        input_ids = torch.cat((batch["input_ids"], completion_ids), dim=1)
        attention_mask = torch.cat((prompt_mask, completion_mask), dim=1)
        completion_mask = torch.cat((torch.zeros_like(prompt_mask), completion_mask), dim=1)
        if "mm_token_type_ids" in batch:
            mm_types = torch.cat((batch["mm_token_type_ids"], torch.zeros_like(completion_ids)), dim=1)
            attention_mask, input_ids, completion_mask, mm_types = flush_left(
                attention_mask, input_ids, completion_mask, mm_types
            )
            batch["mm_token_type_ids"] = mm_types
        else:
            attention_mask, input_ids, completion_mask = flush_left(attention_mask, input_ids, completion_mask)
        batch.pop("video_metadata", None)
        batch["input_ids"] = input_ids
        batch["attention_mask"] = attention_mask
        batch["completion_mask"] = completion_mask
        return dict(batch)
