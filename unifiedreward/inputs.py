"""From :class:`~unifiedreward.chat.ChatPrompt` objects to the tensors a Hugging Face VLM consumes.

One function, :func:`prepare_inputs`, renders each prompt with the processor's chat template, checks that the
number of media placeholders matches the media attached, and calls the processor once for the whole batch (left
padding by default, as generation needs).

Two prompt forms are supported (see :class:`~unifiedreward.chat.ChatPrompt`):

- **Qwen form**: content parts ``{"type": "image"}`` / ``{"type": "video"}`` that the Qwen chat template renders as
  ``<|vision_start|><|image_pad|><|vision_end|>`` / ``...<|video_pad|>...``.
- **LLaVA form**: literal ``<image>`` (and ``<video>``) tokens in the user text, e.g. ``"<image>\\n <image>\\n"``
  before the question for an image pair, or ``"<image>\\n" * n`` for ``n`` video frames fed as images.

Videos are passed to the processor as already-sampled frame arrays with their
:class:`~transformers.video_utils.VideoMetadata` and ``do_sample_frames=False``: frames are never re-sampled here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.media import Video

if TYPE_CHECKING:  # pragma: no cover
    from transformers import BatchFeature, ProcessorMixin
    from transformers.video_utils import VideoMetadata

__all__ = ["DEFAULT_VIDEO_FPS", "prepare_inputs", "video_metadata"]

logger = logging.getLogger(__name__)

#: Frame rate assumed for the *sampled* frames of a :class:`~unifiedreward.media.Video` whose source fps is
#: unknown (``fps=None``, e.g. a folder of frames). It matches ``qwen-vl-utils``, which treats a list of frames as a
#: video sampled at 2 frames per second. It only affects Qwen2.5-VL's ``second_per_grid_ts`` and Qwen3-VL's
#: ``<t seconds>`` timestamps.
DEFAULT_VIDEO_FPS = 2.0

# Keys the processors may return that are not model inputs.
_NON_MODEL_KEYS = ("video_metadata", "text_replacement_offsets")


def video_metadata(video: Video) -> VideoMetadata:
    """Build the ``transformers`` metadata of an already-sampled :class:`~unifiedreward.media.Video`.

    Args:
        video: a decoded clip; ``video.frames`` has shape ``(T, H, W, 3)``.

    Returns:
        ``VideoMetadata(total_num_frames, fps, frames_indices, width, height)``. When ``video.fps`` is known, the
        source's frame count and the sampled indices are used as they are (so ``sampled_fps`` and timestamps are
        those of the source; empty ``frame_indices`` mean consecutive frames ``0..T-1``). When it is ``None``, the ``T`` frames are treated as a clip of their own sampled at
        :data:`DEFAULT_VIDEO_FPS`: ``total_num_frames=T``, ``frames_indices=range(T)``, ``fps=DEFAULT_VIDEO_FPS``.

    Raises:
        UnifiedRewardError: ``frame_indices`` is not empty and its length differs from ``T``.
    """
    from transformers.video_utils import VideoMetadata

    frames = np.asarray(video.frames)
    num_frames, height, width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    if video.fps is None:
        return VideoMetadata(
            total_num_frames=num_frames,
            fps=DEFAULT_VIDEO_FPS,
            frames_indices=list(range(num_frames)),
            width=width,
            height=height,
        )
    indices = [int(i) for i in video.frame_indices] if len(video.frame_indices) else list(range(num_frames))
    if len(indices) != num_frames:
        raise UnifiedRewardError(
            f"video {video.source or '<array>'} has {num_frames} frames but {len(indices)} frame indices"
        )
    total = max(int(video.total_num_frames or 0), max(indices) + 1, num_frames)
    return dataclasses.replace(video, total_num_frames=total, frame_indices=indices).to_video_metadata()


def _as_video(video: Any, prompt_index: int) -> Video:
    if isinstance(video, Video):
        frames = np.asarray(video.frames)
    elif isinstance(video, np.ndarray):
        frames = video
        video = Video(frames=frames, frame_indices=list(range(len(frames))), total_num_frames=len(frames))
    else:
        raise UnifiedRewardError(
            f"prompt {prompt_index}: a video must be a unifiedreward.media.Video or a (T, H, W, 3) uint8 array, "
            f"got {type(video).__name__}"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise UnifiedRewardError(
            f"prompt {prompt_index}: video frames must have shape (T, H, W, 3) with T >= 1, got {frames.shape}"
        )
    return video


def _placeholder_token(processor: ProcessorMixin, kind: str) -> str | None:
    token = getattr(processor, f"{kind}_token", None)
    return token if isinstance(token, str) and token else None


def prepare_inputs(
    processor: ProcessorMixin,
    prompts: Sequence[ChatPrompt],
    *,
    add_generation_prompt: bool = True,
    padding_side: str = "left",
    return_tensors: str | None = "pt",
    assistant_prefixes: Sequence[str] | None = None,
) -> BatchFeature:
    """Render, tokenize and preprocess a batch of prompts in one processor call.

    Each prompt's ``messages`` are rendered with ``processor.apply_chat_template(..., tokenize=False)``. Images
    and videos are collected in prompt order (within a prompt, in the order of its placeholders) and passed with
    ``padding=True`` and ``padding_side``. The padding side is a call argument, so the processor's tokenizer is
    not modified.

    Args:
        processor: a VLM processor (Qwen2-VL / Qwen2.5-VL / Qwen3-VL / LLaVA-OneVision or compatible) with a chat
            template and ``image_token`` / ``video_token`` attributes.
        prompts: ``B`` prompts. ``prompt.images`` are PIL images (or ``(H, W, 3)`` arrays); ``prompt.videos`` are
            :class:`~unifiedreward.media.Video` objects (or ``(T, H, W, 3)`` uint8 arrays).
        add_generation_prompt: append the assistant header (``<|im_start|>assistant\\n``) to each prompt.
        padding_side: ``"left"`` (for generation) or ``"right"`` (e.g. for scoring given completions).
        return_tensors: ``"pt"`` (default), ``"np"`` or ``None``.
        assistant_prefixes: optional text per prompt that the assistant has already said, appended after the
            generation prompt (used to score what comes next, e.g. the number after ``Final Score:``).

    Returns:
        A ``BatchFeature`` with ``input_ids`` and ``attention_mask`` of shape ``(B, L)`` plus whatever the
        processor adds, e.g. for Qwen ``mm_token_type_ids`` ``(B, L)``, ``pixel_values`` ``(N_patches, C*t*p*p)``
        and ``image_grid_thw`` ``(N_images, 3)``, ``pixel_values_videos`` / ``video_grid_thw`` (and
        ``second_per_grid_ts`` for Qwen2.5-VL); for LLaVA-OneVision ``pixel_values`` ``(N_images, tiles, 3, h,
        w)``, ``image_sizes`` ``(N_images, 2)``, ``batch_num_images`` ``(B_with_images,)`` and
        ``pixel_values_videos`` ``(N_videos, T, 3, h, w)``. Non-tensor bookkeeping (``video_metadata``) is
        removed, so the result can be passed as ``model(**inputs)`` / ``model.generate(**inputs)``.

    Raises:
        ValueError: empty ``prompts`` or a bad ``padding_side``.
        UnifiedRewardError: a prompt whose rendered text has a different number of image (video) placeholders
            than attached images (videos), or a malformed video.
    """
    if not prompts:
        raise ValueError("prepare_inputs needs at least one prompt")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")

    image_token = _placeholder_token(processor, "image")
    video_token = _placeholder_token(processor, "video")
    texts: list[str] = []
    images_per_prompt: list[list[Any]] = []
    videos: list[Video] = []
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, ChatPrompt):
            raise UnifiedRewardError(f"prompt {index}: expected a ChatPrompt, got {type(prompt).__name__}")
        text = processor.apply_chat_template(
            prompt.messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        if not isinstance(text, str):  # some processors return a one-element list
            text = text[0]
        if assistant_prefixes is not None:
            text += assistant_prefixes[index]
        prompt_videos = [_as_video(video, index) for video in prompt.videos]
        for kind, token, media in (("image", image_token, prompt.images), ("video", video_token, prompt_videos)):
            placeholders = text.count(token) if token is not None else 0
            if placeholders != len(media):
                raise UnifiedRewardError(
                    f"prompt {index} (family {prompt.family!r}): the rendered text has {placeholders} {kind} "
                    f"placeholder(s) ({token!r}) but {len(media)} {kind}(s) are attached; "
                    f"check that the prompt form matches the processor ({type(processor).__name__})"
                )
        texts.append(text)
        images_per_prompt.append(list(prompt.images))
        videos.extend(prompt_videos)

    kwargs: dict[str, Any] = {"padding": True, "padding_side": padding_side, "return_tensors": return_tensors}
    if any(images_per_prompt):
        # Nested per prompt: LLaVA-OneVision derives `batch_num_images` from the nesting (a prompt with several
        # images is processed as multi-image, without anyres tiles); the Qwen processors flatten it.
        kwargs["images"] = images_per_prompt
    if videos:
        kwargs["videos"] = [np.asarray(video.frames) for video in videos]
        kwargs["video_metadata"] = [video_metadata(video) for video in videos]
        kwargs["do_sample_frames"] = False
    batch = processor(text=texts, **kwargs)
    for key in _NON_MODEL_KEYS:
        batch.pop(key, None)
    return batch
