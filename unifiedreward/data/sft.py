"""Supervised fine-tuning samples: records -> model inputs with assistant-only labels, and bad-sample handling.

:class:`SupervisedDataset` turns each :class:`~unifiedreward.data.records.Record` into the tensors a Hugging Face
vision-language model trains on, lazily (one record per ``__getitem__``):

1. **Media** are decoded with :func:`~unifiedreward.media.resolve_media` (images capped at ``image_max_pixels``;
   videos: at most ``frames_upbound`` frames, sampled at ``video_fps`` when the
   native frame rate is known, each frame capped at ``video_max_pixels``).
2. **Messages** are built for the model family (:func:`~unifiedreward.data.labels.build_messages`).
3. **Tokens**: the conversation is rendered once and the processor is called once (images, videos, placeholder
   expansion), with ``return_offsets_mapping`` and ``return_text_replacement_offsets``.
4. **Labels**: every assistant answer and its end-of-turn token are supervised, everything else is ``-100``
   (:mod:`unifiedreward.data.labels`).

With a :class:`~unifiedreward.data.cache.SampleCache` (``cache=``), a sample is encoded once and read back from
disk afterwards (also by later runs); a sample that cannot be trained on is recorded there as skipped.

**Bad samples.** A sample whose media cannot be read (:class:`~unifiedreward.errors.MediaError`), that is longer
than ``model_max_length`` after media expansion (never truncated), or that is otherwise unusable (a record the
processor rejects, an answer that contains the end-of-turn token) is *dropped*: its id and the reason are logged
once, it is counted, and the next usable sample (index + 1, + 2, ...) is returned in its place so that batch
shapes and distributed ranks stay in step. The status of every index lives in a shared-memory tensor, so
DataLoader worker processes share the counts and a known-bad index is never decoded again. When the dropped
fraction of the samples tried so far exceeds ``max_bad_fraction`` (checked once at least
``bad_fraction_min_samples`` were tried, or this process's share of the dataset), :class:`BadDataError` stops the
run with a message that names the counts: from ``__getitem__`` by default, or, with ``stop_in_getitem=False``, from
whoever calls :meth:`SupervisedDataset.check_bad_fraction` (the trainer does at every step end, with the counts of
all ranks: :mod:`unifiedreward.training.callbacks`).

The collator is :class:`~unifiedreward.data.collate.SFTCollator`; messages and labels live in
:mod:`unifiedreward.data.labels`. Every name of those modules is importable from here too.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from unifiedreward.data.collate import TOKEN_KEYS, SFTCollator
from unifiedreward.data.labels import (
    DEFAULT_END_OF_TURN,
    IGNORE_INDEX,
    LLAVA_SYSTEM_PROMPT,
    LabelError,
    SampleError,
    assistant_spans,
    build_messages,
    labels_from_offsets,
)
from unifiedreward.data.records import MediaPart, Record
from unifiedreward.data.sample_media import MediaOptions, load_sample_media
from unifiedreward.errors import MediaError, UnifiedRewardError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import ProcessorMixin

    from unifiedreward.data.cache import SampleCache
    from unifiedreward.media import Video

__all__ = [
    "DEFAULT_END_OF_TURN",
    "IGNORE_INDEX",
    "LLAVA_SYSTEM_PROMPT",
    "BadDataError",
    "LabelError",
    "MediaOptions",
    "OverLengthError",
    "SFTCollator",
    "SampleError",
    "SupervisedDataset",
    "assistant_spans",
    "bad_fraction_message",
    "build_messages",
    "labels_from_offsets",
]

logger = logging.getLogger(__name__)

# Per-index status codes in the shared status tensor.
_UNTRIED, _OK, _BAD_MEDIA, _TOO_LONG, _INVALID = 0, 1, 2, 3, 4
_KIND_NAMES = {_BAD_MEDIA: "media", _TOO_LONG: "over-length", _INVALID: "invalid"}
_KIND_CODES = {name: code for code, name in _KIND_NAMES.items()}
_DROP_KEYS = ("offset_mapping", "text_replacement_offsets", "video_metadata")


class OverLengthError(SampleError):
    """The sample has more tokens (media expanded) than ``model_max_length``."""

    kind = "over-length"

    def __init__(self, length: int, limit: int):
        self.length = length
        self.limit = limit
        super().__init__(f"{length} tokens after media expansion > model_max_length {limit} (never truncated)")


class BadDataError(UnifiedRewardError, RuntimeError):
    """Too many samples were dropped (``max_bad_fraction`` exceeded), or none is usable."""


class CachedSampleError(SampleError):
    """A sample the :class:`~unifiedreward.data.cache.SampleCache` recorded as unusable (not encoded again)."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(f"{message} (cached)")


def bad_fraction_message(counts: Mapping[str, int], max_bad_fraction: float, last_bad: str | None = None) -> str:
    """The :class:`BadDataError` text for dropped-sample counts (``tried``, ``dropped`` and one count per reason)."""
    tried, dropped = counts["tried"], counts["dropped"]
    breakdown = ", ".join(f"{name} {counts[name]}" for name in _KIND_NAMES.values())
    return (
        f"too many bad samples: {dropped} of the {tried} samples tried so far ({dropped / tried:.1%}) were "
        f"dropped ({breakdown}), above max_bad_fraction={max_bad_fraction:g}. "
        + (f"Last one: {last_bad}. " if last_bad else "")
        + "Every dropped record id is logged above; fix or remove those records (missing or corrupt media, "
        "samples longer than model_max_length), or raise --max_bad_fraction."
    )


class SupervisedDataset(torch.utils.data.Dataset):
    """Lazy SFT dataset over records: decodes media, runs the processor, builds assistant-only labels.

    Args:
        records: the records (e.g. a :class:`~unifiedreward.data.mixture.Mixture`).
        processor: the model's processor (tokenizer, image and video processors, chat template). The tokenizer must
            be a fast (``tokenizers``) one: labels use its offset mapping.
        family: ``"qwen"`` or ``"llava"`` (see :func:`build_messages`); see
            :func:`unifiedreward.modeling.model_family`.
        model_max_length: samples with more tokens (after media expansion) are dropped, never truncated. ``None``:
            the tokenizer's ``model_max_length`` when it is below 10^7, else no limit.
        media: media decoding options.
        max_bad_fraction: stop with :class:`BadDataError` when more than this fraction of the samples tried so far
            was dropped (``0`` tolerates none, ``1`` never stops).
        bad_fraction_min_samples: the fraction is checked only once this many samples were tried (or this
            process's share of the dataset, when smaller), so one early bad sample does not stop a run.
        system_prompt: see :func:`build_messages`.
        end_of_turn: the end-of-turn token that closes every assistant answer (supervised).
        world_size: number of processes sharing the dataset (default: ``$WORLD_SIZE`` or 1); only used for the
            minimum above.
        cache_dir: a folder for a :class:`~unifiedreward.data.cache.SampleCache` (``None``: no cache); its
            fingerprint is computed from this dataset's settings.
        stop_in_getitem: raise :class:`BadDataError` from ``__getitem__`` as soon as the limit is exceeded. The
            trainer sets it to ``False`` and checks at step ends on all ranks together, so that every rank stops.

    Each item is a dict of tensors without a batch dimension: ``input_ids``, ``attention_mask``, ``labels`` (all
    ``(L,)``), ``mm_token_type_ids`` ``(L,)`` when the processor returns it, and the processor's media tensors
    (e.g. ``pixel_values`` ``(N_patches, C*t*p*p)`` and ``image_grid_thw`` ``(N_images, 3)`` for Qwen,
    ``pixel_values`` ``(N_images, tiles, 3, h, w)``, ``image_sizes`` and ``batch_num_images`` for
    LLaVA-OneVision, ``pixel_values_videos`` / ``video_grid_thw`` / ``second_per_grid_ts``).
    """

    def __init__(
        self,
        records: Sequence[Record],
        processor: ProcessorMixin,
        *,
        family: str = "qwen",
        model_max_length: int | None = None,
        media: MediaOptions | None = None,
        max_bad_fraction: float = 0.05,
        bad_fraction_min_samples: int = 100,
        system_prompt: str | None = None,
        end_of_turn: str = DEFAULT_END_OF_TURN,
        world_size: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        stop_in_getitem: bool = True,
    ):
        if family not in ("qwen", "llava"):
            raise ValueError(f"family must be 'qwen' or 'llava', got {family!r}")
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        if bad_fraction_min_samples < 1:
            raise ValueError(f"bad_fraction_min_samples must be >= 1, got {bad_fraction_min_samples}")
        self.records = records
        self.processor = processor
        self.family = family
        self.media = media or MediaOptions()
        self.max_bad_fraction = float(max_bad_fraction)
        self.system_prompt = system_prompt
        self.end_of_turn = end_of_turn
        self.stop_in_getitem = stop_in_getitem
        tokenizer = processor.tokenizer
        if model_max_length is None:
            limit = getattr(tokenizer, "model_max_length", None)
            model_max_length = int(limit) if isinstance(limit, int) and limit < 10**7 else None
        self.model_max_length = model_max_length
        eot_ids = tokenizer(end_of_turn, add_special_tokens=False)["input_ids"]
        if len(eot_ids) != 1:
            raise ValueError(f"the end-of-turn {end_of_turn!r} is not a single token of this tokenizer: {eot_ids}")
        self.end_of_turn_id = int(eot_ids[0])
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_of_turn_id
        world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1") or 1)
        share = max(1, math.ceil(len(records) / max(1, world)))
        self.min_samples = min(int(bad_fraction_min_samples), share)
        # status of each index (0 untried, 1 ok, 2.. dropped), shared with DataLoader worker processes
        self.status = torch.zeros(len(records), dtype=torch.int8).share_memory_()
        self._lengths: list[int] | None = None
        self.last_bad: str | None = None
        self.cache: SampleCache | None = None
        if cache_dir is not None:
            from unifiedreward.data.cache import SampleCache, dataset_fingerprint

            fingerprint = dataset_fingerprint(
                processor,
                family=family,
                model_max_length=model_max_length,
                media=self.media,
                system_prompt=system_prompt,
                end_of_turn=end_of_turn,
            )
            self.cache = SampleCache(cache_dir, fingerprint)
            logger.info(
                "sample cache %s: %d samples (%d recorded as unusable)",
                self.cache.folder,
                len(self.cache),
                self.cache.skipped(),
            )

    def __len__(self) -> int:
        return len(self.records)

    # ----------------------------------------------------------------------------------------------- bad samples
    def counts(self) -> dict[str, int]:
        """Samples tried, used and dropped so far (by reason), over every process sharing :attr:`status`."""
        status = self.status
        return {
            "tried": int(torch.count_nonzero(status)),
            "ok": int((status == _OK).sum()),
            "dropped": int((status >= _BAD_MEDIA).sum()),
            **{name: int((status == code).sum()) for code, name in _KIND_NAMES.items()},
        }

    def dropped_ids(self) -> list[str]:
        """Ids of the records dropped so far, in index order."""
        return [self.records[int(i)].id for i in torch.nonzero(self.status >= _BAD_MEDIA).flatten()]

    def bad_fraction_exceeded(
        self, counts: Mapping[str, int] | None = None, *, min_samples: int | None = None, final: bool = False
    ) -> bool:
        """Whether ``dropped / tried > max_bad_fraction`` with at least ``min_samples`` tried (any number if final).

        Args:
            counts: counts to judge (default: :meth:`counts`; the trainer passes the sums over all ranks).
            min_samples: default :attr:`min_samples`.
            final: judge whatever the number of samples tried (e.g. at the end of training).
        """
        counts = counts if counts is not None else self.counts()
        tried = counts["tried"]
        needed = self.min_samples if min_samples is None else min_samples
        if tried == 0 or (tried < needed and not final):
            return False
        return counts["dropped"] / tried > self.max_bad_fraction

    def check_bad_fraction(self, *, final: bool = False) -> None:
        """Raise :class:`BadDataError` if the dropped fraction exceeds ``max_bad_fraction`` (this process's counts).

        Args:
            final: check whatever the number of samples tried (e.g. at the end of training).
        """
        counts = self.counts()
        if self.bad_fraction_exceeded(counts, final=final):
            raise BadDataError(bad_fraction_message(counts, self.max_bad_fraction, self.last_bad))

    def _drop(self, index: int, error: SampleError | MediaError) -> None:
        record = self.records[index]
        kind = "media" if isinstance(error, MediaError) else error.kind
        self.status[index] = _KIND_CODES.get(kind, _INVALID)
        self.last_bad = f"record {record.id!r} ({record.source}, #{record.index}): {error}"
        logger.warning("dropping %s sample %d, %s", kind, index, self.last_bad)
        if self.stop_in_getitem:
            self.check_bad_fraction()

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.records)
        for offset in range(n):
            j = (int(index) + offset) % n
            if int(self.status[j]) >= _BAD_MEDIA:
                continue
            try:
                sample = self._encode_or_load(j)
            except (MediaError, SampleError) as error:
                self._drop(j, error)
                continue
            if int(self.status[j]) == _UNTRIED:
                self.status[j] = _OK
                if self.stop_in_getitem:
                    self.check_bad_fraction()  # two passes over an int8 tensor: microseconds
            return sample
        raise BadDataError(f"no usable sample among the {n} records; last problem: {self.last_bad}")

    def _encode_or_load(self, index: int) -> dict[str, torch.Tensor]:
        """:meth:`encode` through the cache (a cached skip raises its error again without decoding anything)."""
        if self.cache is None:
            return self.encode(index)
        from unifiedreward.data.cache import CachedSkip, record_key

        key = record_key(self.records[index])
        cached = self.cache.get(key)
        if isinstance(cached, CachedSkip):
            raise CachedSampleError(cached.kind, cached.message)
        if cached is not None:
            return cached
        try:
            sample = self.encode(index)
        except (MediaError, SampleError) as error:
            self.cache.put_skip(key, "media" if isinstance(error, MediaError) else error.kind, str(error))
            raise
        self.cache.put(key, sample)
        return sample

    # ----------------------------------------------------------------------------------------------- encoding
    def load_media(self, images: Sequence[MediaPart], videos: Sequence[MediaPart]) -> tuple[list[Any], list[Video]]:
        """Decode the media parts of one record.

        Returns:
            ``(images, videos)``: RGB PIL images and :class:`~unifiedreward.media.Video` clips, in order.

        Raises:
            MediaError: a missing, empty, truncated or corrupt file.
        """
        # Qwen video processors need at least `temporal_patch_size` frames (a 1-frame sample of a 1 s clip at 1 fps)
        video_processor = getattr(self.processor, "video_processor", None)
        min_frames = int(getattr(video_processor, "temporal_patch_size", 1) or 1)
        return load_sample_media(images, videos, self.media, min_frames=min_frames)

    def encode(self, index: int) -> dict[str, torch.Tensor]:
        """Encode record ``index`` (no skipping; see :meth:`__getitem__`).

        Raises:
            MediaError: unreadable media.
            OverLengthError: more than ``model_max_length`` tokens.
            SampleError: any other reason the record cannot be trained on.
        """
        record = self.records[index]
        messages, image_parts, video_parts = build_messages(record, self.family, system_prompt=self.system_prompt)
        for turn in record.turns:
            if turn.role == "assistant" and self.end_of_turn in turn.text():
                raise SampleError(f"an assistant answer contains the end-of-turn token {self.end_of_turn!r}")
        text, spans = assistant_spans(self.processor, messages, end_of_turn=self.end_of_turn)
        images, videos = self.load_media(image_parts, video_parts)
        features = self._process(text, images, videos)
        input_ids = features["input_ids"][0]
        length = int(input_ids.shape[0])
        if self.model_max_length is not None and length > self.model_max_length:
            raise OverLengthError(length, self.model_max_length)
        replacements = features.pop("text_replacement_offsets", [[]])
        offsets = features.pop("offset_mapping")[0].tolist()
        labels, straddling = labels_from_offsets(
            input_ids.tolist(),
            offsets,
            spans,
            replacements[0] if replacements else [],
            end_of_turn_id=self.end_of_turn_id,
        )
        if straddling:
            logger.debug(
                "record %r: %d answer(s) start inside a prompt token (left unlabelled)", record.id, straddling
            )
        sample: dict[str, torch.Tensor] = {}
        for key, value in features.items():
            if key in _DROP_KEYS or not isinstance(value, torch.Tensor):
                continue
            sample[key] = value[0] if key in TOKEN_KEYS else value
        sample["labels"] = torch.tensor(labels, dtype=torch.long)
        if "attention_mask" not in sample:
            sample["attention_mask"] = torch.ones_like(sample["input_ids"])
        return sample

    def _process(self, text: str, images: list[Any], videos: list[Video]) -> dict[str, Any]:
        from unifiedreward.inputs import video_metadata

        kwargs: dict[str, Any] = {
            "return_tensors": "pt",
            "return_offsets_mapping": True,
            "return_text_replacement_offsets": True,
        }
        if images:
            kwargs["images"] = [images]  # nested per sample: LLaVA-OneVision treats >1 image as multi-image
        if videos:
            kwargs["videos"] = [video.frames for video in videos]
            kwargs["video_metadata"] = [video_metadata(video) for video in videos]
            kwargs["do_sample_frames"] = False
        try:
            features = self.processor(text=[text], **kwargs)
        except (ValueError, IndexError) as error:  # placeholder/media mismatch, an image too small for the processor
            raise SampleError(f"the processor rejected the sample: {error}") from error
        return dict(features)

    # ----------------------------------------------------------------------------------------------- lengths
    @property
    def lengths(self) -> list[int]:
        """Estimated token count of every record (text tokens + nominal media tokens), for length grouping.

        See :func:`unifiedreward.data.lengths.estimate_lengths`; no media file is opened. Computed once, then cached.
        """
        if self._lengths is None:
            from unifiedreward.data.lengths import estimate_lengths

            self._lengths = estimate_lengths(self.records, self.processor, self.media)
        return self._lengths
