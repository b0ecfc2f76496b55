"""Supervised fine-tuning data: records -> model inputs with assistant-only labels, and the batch collator.

:class:`SupervisedDataset` turns each :class:`~unifiedreward.data.records.Record` into the tensors a Hugging Face
vision-language model trains on, lazily (one record per ``__getitem__``):

1. **Media** are decoded with :func:`~unifiedreward.media.load_image` (capped at ``image_max_pixels``) and
   :func:`~unifiedreward.media.load_video` (at most ``frames_upbound`` frames, sampled at ``video_fps`` when the
   native frame rate is known, each frame capped at ``video_max_pixels``).
2. **Messages** are built for the model family (:func:`build_messages`): Qwen models get content parts
   (``{"type": "image"}`` ...) rendered by the checkpoint's chat template; LLaVA-OneVision gets an explicit system
   turn and literal ``<image>\\n`` / ``<video>\\n`` tokens in the text, the form the inference code uses.
3. **Tokens**: the conversation is rendered once and the processor is called once (images, videos, placeholder
   expansion), with ``return_offsets_mapping`` and ``return_text_replacement_offsets``.
4. **Labels** (:func:`assistant_spans`, :func:`labels_from_offsets`): every assistant turn's answer and its
   end-of-turn token (``<|im_end|>``) are supervised; everything else (system and user turns, media tokens, the
   ``<|im_start|>assistant\\n`` header, the newline after ``<|im_end|>``) is ``-100``. The character span of each
   answer is found by rendering the conversation with and without that turn (the prefix rendered with the
   generation prompt must be a prefix of the rendering that includes the answer, which must be a prefix of the
   whole conversation), then shifted past the expanded media placeholders and mapped to tokens through the
   tokenizer's offsets. Checks: each span yields at least one answer token and ends with the end-of-turn token.
   Upstream (protocol reference §3.3) also trained on ``\\n``, ``<|im_start|>`` and ``<|im_end|>`` tokens inside
   the prompt and on the assistant header; we do not (§8.4 item 30).

**Bad samples.** A sample whose media cannot be read (:class:`~unifiedreward.errors.MediaError`), that is longer
than ``model_max_length`` after media expansion (never truncated), or that is otherwise unusable (a record the
processor rejects, an answer that contains the end-of-turn token) is *dropped*: its id and the reason are logged
once, it is counted, and the next usable sample (index + 1, + 2, ...) is returned in its place so that batch
shapes and distributed ranks stay in step. The status of every index lives in a shared-memory tensor, so
DataLoader worker processes share the counts and a known-bad index is never decoded again. When the dropped
fraction of the samples tried so far exceeds ``max_bad_fraction`` (checked once at least
``bad_fraction_min_samples`` were tried, or this process's share of the dataset), :class:`BadDataError` stops the
run with a message that names the counts and the last bad record.

:class:`SFTCollator` right-pads token-level tensors (``input_ids`` with the pad id, ``labels`` with ``-100``,
``attention_mask`` and ``mm_token_type_ids`` with 0) and concatenates the media tensors of the batch.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from unifiedreward.data.records import MediaPart, Record, TextPart
from unifiedreward.errors import MediaError, UnifiedRewardError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import ProcessorMixin

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
    "build_messages",
    "labels_from_offsets",
]

logger = logging.getLogger(__name__)

#: Label value ignored by the cross-entropy loss.
IGNORE_INDEX = -100
#: The ChatML end-of-turn token of every supported family; supervised after each answer.
DEFAULT_END_OF_TURN = "<|im_end|>"
#: System turn added to LLaVA-family conversations that have none (upstream ``conv_qwen``, as at inference).
LLAVA_SYSTEM_PROMPT = "You are a helpful assistant."

# Per-index status codes in the shared status tensor.
_UNTRIED, _OK, _BAD_MEDIA, _TOO_LONG, _INVALID = 0, 1, 2, 3, 4
_KIND_NAMES = {_BAD_MEDIA: "media", _TOO_LONG: "over-length", _INVALID: "invalid"}
# Keys of the processor output that are per token (padded by the collator), with their padding value (None: the
# tokenizer's pad id).
_TOKEN_KEYS: dict[str, int | None] = {
    "input_ids": None,
    "labels": IGNORE_INDEX,
    "attention_mask": 0,
    "mm_token_type_ids": 0,
    "token_type_ids": 0,
}
_DROP_KEYS = ("offset_mapping", "text_replacement_offsets", "video_metadata")


class SampleError(UnifiedRewardError):
    """A sample cannot be trained on; the dataset drops it (see the module docstring).

    Attributes:
        kind: ``"media"``, ``"over-length"`` or ``"invalid"``.
    """

    kind = "invalid"


class OverLengthError(SampleError):
    """The sample has more tokens (media expanded) than ``model_max_length``."""

    kind = "over-length"

    def __init__(self, length: int, limit: int):
        self.length = length
        self.limit = limit
        super().__init__(f"{length} tokens after media expansion > model_max_length {limit} (never truncated)")


class LabelError(SampleError):
    """The assistant answers cannot be located consistently in the rendered or tokenized conversation."""


class BadDataError(UnifiedRewardError, RuntimeError):
    """Too many samples were dropped (``max_bad_fraction`` exceeded), or none is usable."""


@dataclass(frozen=True)
class MediaOptions:
    """How media are decoded for training.

    Attributes:
        frames_upbound: at most this many frames per video (uniformly over the clip; upstream's ``frames_upbound``).
        video_fps: sample videos at this many frames per second when the native rate is known, then cap at
            ``frames_upbound`` (upstream's ``video_fps``, default 1); ``None`` samples by ``frames_upbound`` only.
        image_max_pixels: downsize images to at most this many pixels before the processor (``None``: no cap).
        video_max_pixels: downsize each video frame to at most this many pixels (``None``: no cap).
        video_backend: ``"auto"`` (decord, PyAV fallback), ``"decord"`` or ``"pyav"``.
    """

    frames_upbound: int | None = 32
    video_fps: float | None = 1.0
    image_max_pixels: int | None = None
    video_max_pixels: int | None = None
    video_backend: str = "auto"


# --------------------------------------------------------------------------------------------------------------------
# messages and labels
# --------------------------------------------------------------------------------------------------------------------


def build_messages(
    record: Record, family: str, *, system_prompt: str | None = None
) -> tuple[list[dict[str, Any]], list[MediaPart], list[MediaPart]]:
    """The chat messages of a record in the form its model family's chat template expects.

    Args:
        record: the record.
        family: ``"qwen"``: content parts (``{"type": "image"}``, ``{"type": "video"}``, ``{"type": "text"}``); the
            checkpoint's template adds its default system turn when there is none. ``"llava"``: string contents with
            literal ``<image>\\n`` / ``<video>\\n`` where the media are, and a ``system`` turn
            (:data:`LLAVA_SYSTEM_PROMPT`) prepended when the record has none, as upstream training and inference do.
        system_prompt: a system turn to prepend when the record has none (any family); for ``"llava"`` it replaces
            the default.

    Returns:
        ``(messages, images, videos)``: the messages, and the image and video parts in placeholder order.

    Raises:
        ValueError: an unknown family.
    """
    if family not in ("qwen", "llava"):
        raise ValueError(f"family must be 'qwen' or 'llava', got {family!r}")
    images: list[MediaPart] = []
    videos: list[MediaPart] = []
    messages: list[dict[str, Any]] = []
    if family == "llava" and system_prompt is None:
        system_prompt = LLAVA_SYSTEM_PROMPT
    if system_prompt is not None and (not record.turns or record.turns[0].role != "system"):
        if family == "qwen":
            messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
        else:
            messages.append({"role": "system", "content": system_prompt})
    for turn in record.turns:
        parts: list[dict[str, Any]] = []
        pieces: list[str] = []
        for part in turn.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
                pieces.append(part.text)
                continue
            (images if part.type == "image" else videos).append(part)
            parts.append({"type": part.type})
            pieces.append(f"<{part.type}>\n")
        messages.append({"role": turn.role, "content": parts if family == "qwen" else "".join(pieces)})
    return messages, images, videos


def _render(processor: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool) -> str:
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    if not isinstance(text, str):  # some processors return a one-element list
        text = text[0]
    return text


def assistant_spans(
    processor: Any, messages: list[dict[str, Any]], *, end_of_turn: str = DEFAULT_END_OF_TURN
) -> tuple[str, list[tuple[int, int]]]:
    """Render a conversation and locate each assistant answer in the rendered text.

    For the k-th assistant message, ``prefix`` = the messages before it rendered with the generation prompt (it ends
    with ``<|im_start|>assistant\\n``) and ``upto`` = the messages up to and including it. ``prefix`` must be a
    prefix of ``upto`` and ``upto`` a prefix of the whole rendering (so rendering is incremental: no later turn
    rewrites an earlier one). The answer's span starts where ``prefix`` ends and ends right after the first
    ``end_of_turn`` that follows.

    Args:
        processor: anything with ``apply_chat_template(messages, tokenize=False, add_generation_prompt=...)``.
        messages: the conversation; trailing non-assistant turns are not allowed.
        end_of_turn: the end-of-turn token string.

    Returns:
        ``(text, spans)``: the full rendering (no generation prompt) and one ``(start, end)`` character span per
        assistant message, covering its answer and the end-of-turn token.

    Raises:
        LabelError: no assistant turn, a trailing non-assistant turn, a non-incremental template, or no
            end-of-turn token after an answer.
    """
    positions = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    if not positions:
        raise LabelError("the conversation has no assistant turn: nothing to train on")
    if positions[-1] != len(messages) - 1:
        raise LabelError(f"the conversation ends with a {messages[-1]['role']!r} turn, not an assistant answer")
    text = _render(processor, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for k in positions:
        prefix = _render(processor, messages[:k], add_generation_prompt=True)
        upto = text if k == len(messages) - 1 else _render(processor, messages[: k + 1], add_generation_prompt=False)
        if not upto.startswith(prefix):
            raise LabelError(
                f"the chat template is not incremental: the prompt rendered before assistant turn {k} (with the "
                f"generation prompt) is not a prefix of the rendering that includes that turn"
            )
        if not text.startswith(upto):
            raise LabelError(
                f"the chat template is not incremental: rendering up to assistant turn {k} is not a prefix of the "
                f"whole conversation (does the template rewrite earlier turns?)"
            )
        start = len(prefix)
        stop = upto.find(end_of_turn, start)
        if stop < 0:
            raise LabelError(f"no {end_of_turn!r} after assistant turn {k} in the rendered conversation")
        if spans and start < spans[-1][1]:  # pragma: no cover - implied by the prefix checks
            raise LabelError("assistant spans overlap")
        spans.append((start, stop + len(end_of_turn)))
    return text, spans


def _shift(position: int, replacements: Sequence[dict[str, Any]]) -> int:
    """A character position of the rendered text, moved to the text with media placeholders expanded."""
    gained = 0
    for item in replacements:
        start, end = item["span"]
        if end <= position:
            gained += len(item["replacement"]) - (end - start)
        elif start < position:
            raise LabelError(f"character {position} falls inside the media placeholder at {start}..{end}")
    return position + gained


def labels_from_offsets(
    input_ids: Sequence[int],
    offsets: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    replacements: Sequence[dict[str, Any]] = (),
    *,
    end_of_turn_id: int,
) -> tuple[list[int], int]:
    """Labels for one tokenized conversation: the tokens inside the assistant spans, ``-100`` elsewhere.

    Args:
        input_ids: ``(L,)`` token ids of the processed (placeholder-expanded) text.
        offsets: ``(L, 2)`` character offsets of each token in the expanded text.
        spans: assistant spans in the *rendered* (unexpanded) text, from :func:`assistant_spans`.
        replacements: the processor's ``text_replacement_offsets`` for this text (placeholder -> expansion).
        end_of_turn_id: id of the end-of-turn token.

    Returns:
        ``(labels, straddling)``: ``(L,)`` labels, and the number of answers whose first characters share a token
        with the prompt (such a token is left unlabelled: it is part of what the model is given).

    Raises:
        LabelError: an answer that yields no token, or whose last token is not the end-of-turn token.
    """
    replacements = sorted(replacements, key=lambda item: item["span"][0])
    ends = [int(offset[1]) for offset in offsets]
    labels = [IGNORE_INDEX] * len(input_ids)
    straddling = 0
    for number, (start, stop) in enumerate(spans):
        start, stop = _shift(start, replacements), _shift(stop, replacements)
        first = bisect.bisect_right(ends, start)  # first token ending after `start`
        if first < len(input_ids) and int(offsets[first][0]) < start:
            straddling += 1
            first += 1
        last = first
        while last < len(input_ids) and ends[last] <= stop:
            if ends[last] > int(offsets[last][0]):  # skip zero-width tokens
                labels[last] = int(input_ids[last])
            last += 1
        labelled = [i for i in range(first, last) if labels[i] != IGNORE_INDEX]
        if len(labelled) < 2:
            raise LabelError(
                f"assistant answer {number} maps to {len(labelled)} token(s); expected the answer and "
                "the end-of-turn token"
            )
        if labels[labelled[-1]] != end_of_turn_id:
            raise LabelError(f"assistant answer {number} does not end with the end-of-turn token in the token ids")
    return labels, straddling


# --------------------------------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------------------------------


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

    def check_bad_fraction(self, *, final: bool = False) -> None:
        """Raise :class:`BadDataError` if the dropped fraction exceeds ``max_bad_fraction``.

        Args:
            final: check whatever the number of samples tried (e.g. at the end of training).
        """
        tried = int(torch.count_nonzero(self.status))
        if tried == 0 or (tried < self.min_samples and not final):
            return
        dropped = int(torch.count_nonzero(self.status >= _BAD_MEDIA))
        if dropped / tried > self.max_bad_fraction:
            counts = self.counts()
            breakdown = ", ".join(f"{name} {counts[name]}" for name in _KIND_NAMES.values())
            raise BadDataError(
                f"too many bad samples: {dropped} of the {tried} samples tried so far ({dropped / tried:.1%}) were "
                f"dropped ({breakdown}), above max_bad_fraction={self.max_bad_fraction:g}. "
                f"Last one: {self.last_bad or 'see the warnings'}. "
                "Every dropped record id is logged above; fix or remove those records (missing or corrupt media, "
                "samples longer than model_max_length), or raise --max_bad_fraction."
            )

    def _drop(self, index: int, error: SampleError | MediaError) -> None:
        record = self.records[index]
        kind = "media" if isinstance(error, MediaError) else error.kind
        code = {"media": _BAD_MEDIA, "over-length": _TOO_LONG}.get(kind, _INVALID)
        self.status[index] = code
        self.last_bad = f"record {record.id!r} ({record.source}, #{record.index}): {error}"
        logger.warning("dropping %s sample %d, %s", kind, index, self.last_bad)
        self.check_bad_fraction()

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.records)
        for offset in range(n):
            j = (int(index) + offset) % n
            if int(self.status[j]) >= _BAD_MEDIA:
                continue
            try:
                sample = self.encode(j)
            except (MediaError, SampleError) as error:
                self._drop(j, error)
                continue
            if int(self.status[j]) == _UNTRIED:
                self.status[j] = _OK
                self.check_bad_fraction()  # two passes over an int8 tensor: microseconds
            return sample
        raise BadDataError(f"no usable sample among the {n} records; last problem: {self.last_bad}")

    # ----------------------------------------------------------------------------------------------- encoding
    def load_media(self, images: Sequence[MediaPart], videos: Sequence[MediaPart]) -> tuple[list[Any], list[Video]]:
        """Decode the media parts of one record.

        Returns:
            ``(images, videos)``: RGB PIL images and :class:`~unifiedreward.media.Video` clips, in order.

        Raises:
            MediaError: a missing, empty, truncated or corrupt file.
        """
        from unifiedreward.media import load_image, load_video

        options = self.media
        decoded_images = [load_image(part.path, max_pixels=options.image_max_pixels) for part in images]
        decoded_videos = []
        for part in videos:
            source = list(part.path) if isinstance(part.path, tuple) else part.path
            fps = options.video_fps if isinstance(source, str) and not os.path.isdir(source) else None
            decoded_videos.append(
                load_video(
                    source,
                    num_frames=options.frames_upbound,
                    fps=fps,
                    backend=options.video_backend,
                    max_pixels=options.video_max_pixels,
                )
            )
        # Qwen video processors need at least `temporal_patch_size` frames (a 1-frame sample of a 1 s clip at 1 fps)
        video_processor = getattr(self.processor, "video_processor", None)
        min_frames = int(getattr(video_processor, "temporal_patch_size", 1) or 1)
        decoded_videos = [_pad_frames(video, min_frames) for video in decoded_videos]
        return decoded_images, decoded_videos

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
            sample[key] = value[0] if key in _TOKEN_KEYS else value
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

        Text is tokenized (without the chat template, plus a few tokens per turn); each image and video adds the
        token count the processor gives for a nominal size (the pixel caps, or the processor's own maximum). No
        media file is opened. Computed once, then cached.
        """
        if self._lengths is None:
            self._lengths = self._estimate_lengths()
        return self._lengths

    def _nominal_media_tokens(self) -> tuple[int, int]:
        """Tokens of one image and of one video at nominal sizes; ``(256, 1024)`` if the processor cannot say."""
        options = self.media

        def side(max_pixels: int | None, default: int) -> int:
            return max(28, int(math.sqrt(max_pixels))) if max_pixels else default

        image_side = side(options.image_max_pixels, 448)
        video_side = side(options.video_max_pixels, 336)
        frames = options.frames_upbound or 8
        try:
            data = self.processor._get_num_multimodal_tokens(
                image_sizes=[[image_side, image_side]], video_sizes=[[frames, video_side, video_side]]
            )
            image_tokens = int(data.num_image_tokens[0])
            video_tokens = int(data.num_video_tokens[0]) if getattr(data, "num_video_tokens", None) else 1024
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as error:  # no helper, other rules
            logger.debug("nominal media token counts unavailable (%s); using defaults", error)
            return 256, 1024
        return image_tokens, video_tokens

    def _estimate_lengths(self) -> list[int]:
        tokenizer = self.processor.tokenizer
        image_tokens, video_tokens = self._nominal_media_tokens()
        lengths: list[int] = []
        chunk = 1024
        for begin in range(0, len(self.records), chunk):
            batch = self.records[begin : begin + chunk]
            texts = ["".join(turn.text() for turn in record.turns) for record in batch]
            encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
            for record, ids in zip(batch, encoded, strict=True):
                media = record.media_parts()
                n_images = sum(part.type == "image" for part in media)
                lengths.append(
                    len(ids)
                    + 5 * (len(record.turns) + 1)
                    + n_images * image_tokens
                    + (len(media) - n_images) * video_tokens
                )
        return lengths


def _pad_frames(video: Video, min_frames: int) -> Video:
    """Repeat the last frame of a clip shorter than ``min_frames``."""
    if len(video) >= min_frames:
        return video
    import dataclasses

    import numpy as np

    missing = min_frames - len(video)
    frames = np.concatenate([video.frames, np.repeat(video.frames[-1:], missing, axis=0)])
    indices = list(video.frame_indices)
    if indices:
        indices += [indices[-1]] * missing
    return dataclasses.replace(video, frames=frames, frame_indices=indices)


# --------------------------------------------------------------------------------------------------------------------
# collator
# --------------------------------------------------------------------------------------------------------------------


class SFTCollator:
    """Batch samples of :class:`SupervisedDataset`.

    Token-level tensors are right-padded to the longest sample (``input_ids`` with ``pad_token_id``, ``labels`` with
    ``-100``, ``attention_mask`` / ``mm_token_type_ids`` with 0), optionally to a multiple of
    ``pad_to_multiple_of``. Media tensors are concatenated along their first dimension (they carry their own
    per-item structure: grids, image sizes, counts). LLaVA-OneVision ``pixel_values`` of images with different
    numbers of anyres tiles are zero-padded on the tile dimension (the model reads only the valid tiles).

    Args:
        pad_token_id: the tokenizer's pad id.
        pad_to_multiple_of: pad the sequence length up to a multiple of this (e.g. 8 for tensor cores).

    Returns (``__call__``):
        ``input_ids``, ``labels``, ``attention_mask`` ``(B, L)``, ``mm_token_type_ids`` ``(B, L)`` when present, and
        the media tensors.
    """

    def __init__(self, pad_token_id: int, *, pad_to_multiple_of: int | None = None):
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        length = max(int(feature["input_ids"].shape[0]) for feature in features)
        if self.pad_to_multiple_of:
            length = math.ceil(length / self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, torch.Tensor] = {}
        keys = list(dict.fromkeys(key for feature in features for key in feature))
        for key in keys:
            if key in _TOKEN_KEYS:
                value = self.pad_token_id if _TOKEN_KEYS[key] is None else _TOKEN_KEYS[key]
                out = torch.full((len(features), length), value, dtype=features[0][key].dtype)
                for row, feature in enumerate(features):
                    tensor = feature[key]
                    out[row, : tensor.shape[0]] = tensor
                batch[key] = out
            else:
                batch[key] = _concat(key, [feature[key] for feature in features if key in feature])
        return batch


def _concat(key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0; zero-pad the tile dimension of 5-D image tensors (anyres) when it differs."""
    if len(tensors) == 1:
        return tensors[0]
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) > 1:
        if key == "pixel_values" and all(t.dim() == 5 for t in tensors) and len({t.shape[2:] for t in tensors}) == 1:
            tiles = max(int(t.shape[1]) for t in tensors)
            tensors = [torch.nn.functional.pad(t, (0, 0, 0, 0, 0, 0, 0, tiles - t.shape[1])) for t in tensors]
        else:
            raise ValueError(
                f"cannot batch {key!r} tensors of shapes {[tuple(t.shape) for t in tensors]}; e.g. LLaVA-OneVision "
                "videos with different frame counts: use per_device_train_batch_size 1 or a fixed frames_upbound"
            )
    return torch.cat(tensors, dim=0)
