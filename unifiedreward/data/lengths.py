"""Token-length estimates of SFT records without opening any media file (for length-grouped batching)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from unifiedreward.data.records import Record

__all__ = ["estimate_lengths", "nominal_media_tokens"]

logger = logging.getLogger(__name__)


def nominal_media_tokens(processor: Any, media: Any) -> tuple[int, int]:
    """Tokens of one image and of one video at nominal sizes; ``(256, 1024)`` if the processor cannot say.

    Nominal sizes: a square of ``media.image_max_pixels`` (else 448x448) and ``media.frames_upbound`` frames (else 8)
    of ``media.video_max_pixels`` (else 336x336), counted by the processor's ``_get_num_multimodal_tokens``.

    Args:
        processor: the model's processor.
        media: a :class:`~unifiedreward.data.sft.MediaOptions`.
    """

    def side(max_pixels: int | None, default: int) -> int:
        return max(28, int(math.sqrt(max_pixels))) if max_pixels else default

    image_side = side(media.image_max_pixels, 448)
    video_side = side(media.video_max_pixels, 336)
    frames = media.frames_upbound or 8
    try:
        data = processor._get_num_multimodal_tokens(
            image_sizes=[[image_side, image_side]], video_sizes=[[frames, video_side, video_side]]
        )
        image_tokens = int(data.num_image_tokens[0])
        video_tokens = int(data.num_video_tokens[0]) if getattr(data, "num_video_tokens", None) else 1024
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as error:  # no helper, other rules
        logger.debug("nominal media token counts unavailable (%s); using defaults", error)
        return 256, 1024
    return image_tokens, video_tokens


def estimate_lengths(records: Sequence[Record], processor: Any, media: Any) -> list[int]:
    """Estimated token count of every record: text tokens + 5 per turn (+ 5) + nominal media tokens.

    Text is tokenized without the chat template, 1024 records per tokenizer call; each image and video adds
    :func:`nominal_media_tokens`. No media file is opened.

    Returns:
        One length per record, in order.
    """
    tokenizer = processor.tokenizer
    image_tokens, video_tokens = nominal_media_tokens(processor, media)
    lengths: list[int] = []
    chunk = 1024
    for begin in range(0, len(records), chunk):
        batch = records[begin : begin + chunk]
        texts = ["".join(turn.text() for turn in record.turns) for record in batch]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        for record, ids in zip(batch, encoded, strict=True):
            parts = record.media_parts()
            n_images = sum(part.type == "image" for part in parts)
            lengths.append(
                len(ids)
                + 5 * (len(record.turns) + 1)
                + n_images * image_tokens
                + (len(parts) - n_images) * video_tokens
            )
    return lengths
