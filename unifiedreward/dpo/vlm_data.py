"""Preference pairs for VLM DPO: records -> checked pairs -> a lazily decoding dataset.

Accepted records (one JSON list / JSONL file, the brace form ``prefix{a,b}.json``, or a YAML mixture with its
``sampling_strategy`` entries, :mod:`unifiedreward.data.mixture`):

* what ``infer+sift.py`` writes (:mod:`unifiedreward.preference.records`):
  ``{"id", "image" | "video", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", "evidence"}``;
* upstream's released DPO json (protocol reference §5.1): ``{"image": str | [frames], "prompt", "chosen",
  "rejected", ...}`` (``id`` optional).

Media (one per record, or none): ``image`` as a string is an image; ``image`` as a list is a video given as frame
files (upstream's convention); ``video`` is a video file, a frame folder or a frame list. Relative paths resolve
against ``image_folder`` (images) and ``video_folder`` (videos; default ``image_folder``) for files given directly,
and against the entry's own folder for YAML entries. Videos get at most ``num_frames`` frames (a video *file*
sampled at ``fps`` first), through :func:`unifiedreward.media.resolve_media`.

Checking (:func:`check_pairs`, once, before training): every record's media are decoded and its longest side
(prompt with expanded media tokens + the longer answer) is measured with the processor. A malformed record, one
with unreadable media, or one longer than ``max_length`` is **skipped and counted with its id**, never truncated
(truncating through media tokens would break the model's media/token alignment).

Prompt (the policy-prompt convention of :mod:`unifiedreward.preference.sampling`): the question with literal
``<image>`` tokens removed, after one media part; the LLaVA form adds the LLaVA system turn. Videos are passed to
the processor as videos (``{"type": "video"}``, sampled frames + metadata) for both families.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from unifiedreward.errors import DataError, MediaError

__all__ = [
    "MediaConfig",
    "PreferenceDataset",
    "PreferencePair",
    "SkipReport",
    "check_pairs",
    "load_pairs",
    "prompt_messages",
]

logger = logging.getLogger(__name__)

MediaKindOrNone = Literal["image", "video"] | None


@dataclass(frozen=True)
class MediaConfig:
    """How media are decoded.

    Attributes:
        num_frames: at most this many frames per video (uniform over the clip; upstream ``frames_upbound``).
        fps: sample video *files* at this rate before the ``num_frames`` cap (upstream ``video_fps``); ``None``:
            by ``num_frames`` only.
        image_max_pixels: downsize images to at most this many pixels (``None``: no cap).
        video_max_pixels: downsize each frame to at most this many pixels (``None``: no cap).
        video_backend: ``"auto"``, ``"decord"`` or ``"pyav"``.
    """

    num_frames: int | None = 24
    fps: float | None = 1.0
    image_max_pixels: int | None = None
    video_max_pixels: int | None = None
    video_backend: str = "auto"


@dataclass(frozen=True)
class PreferencePair:
    """One parsed preference record.

    Attributes:
        id: the record's ``id`` (or ``"<file name>:<index>"`` when it has none).
        prompt: the question (``<image>`` tokens still in; :func:`prompt_messages` removes them).
        chosen: the preferred answer.
        rejected: the dispreferred answer.
        kind: ``"image"``, ``"video"`` or ``None`` (text only).
        media: the media reference as the record gives it (path, frame folder, frame list).
        root: the folder relative media paths resolve against.
    """

    id: str
    prompt: str
    chosen: str
    rejected: str
    kind: MediaKindOrNone = None
    media: Any = None
    root: str | None = None


@dataclass
class SkipReport:
    """Records left out of training, by reason (``"invalid"``, ``"media"``, ``"over-length"``), with their ids.

    Attributes:
        total: records read.
        skipped: ``{reason: [(id, detail), ...]}``.
    """

    total: int = 0
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, reason: str, record_id: str, detail: str) -> None:
        """Count one skipped record and log it with its id."""
        self.skipped.setdefault(reason, []).append((record_id, detail))
        logger.warning("skipping record %r (%s): %s", record_id, reason, detail)

    def counts(self) -> dict[str, int]:
        """``{reason: number of records}``."""
        return {reason: len(items) for reason, items in self.skipped.items()}

    def ids(self, reason: str | None = None) -> list[str]:
        """Ids of the skipped records (of one ``reason``, or all)."""
        reasons = [reason] if reason is not None else list(self.skipped)
        return [record_id for r in reasons for record_id, _ in self.skipped.get(r, [])]

    @property
    def num_skipped(self) -> int:
        """Number of skipped records."""
        return sum(len(items) for items in self.skipped.values())


def _parse(data: Any, record_id: str, image_root: str | None, video_root: str | None) -> PreferencePair:
    """A :class:`PreferencePair` from one JSON object; raises :class:`DataError` on a malformed record."""
    if not isinstance(data, Mapping):
        raise DataError(f"a record is a {type(data).__name__}, expected an object", record_id=record_id)
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise DataError(f"missing or empty {key!r}", record_id=record_id)
    kind: MediaKindOrNone = None
    media, root = None, None
    if data.get("video") is not None:
        kind, media, root = "video", data["video"], video_root
    elif isinstance(data.get("image"), list | tuple):
        kind, media, root = "video", list(data["image"]), video_root  # frame files, upstream's video form
    elif data.get("image") is not None:
        kind, media, root = "image", data["image"], image_root
    if kind is not None and (not media or not isinstance(media, str | list)):
        raise DataError(f"unusable {kind} reference {media!r}", record_id=record_id)
    return PreferencePair(record_id, data["prompt"], data["chosen"], data["rejected"], kind, media, root)


def load_pairs(
    data_path: str | Path,
    *,
    image_folder: str | Path | None = None,
    video_folder: str | Path | None = None,
    seed: int = 42,
    report: SkipReport | None = None,
) -> list[PreferencePair]:
    """Read preference records (module docstring); malformed ones are skipped into ``report``.

    Args:
        data_path: a ``.json`` / ``.jsonl`` file, ``prefix{a,b}.json``, or a YAML mixture.
        image_folder: root of relative image paths for files given directly (default: the working directory).
        video_folder: root of relative video paths for files given directly (default: ``image_folder``).
        seed: seed of ``random:N`` sampling strategies.
        report: where skipped records are counted (a new one if ``None``; read it back from the caller's).

    Returns:
        The parsed pairs, in mixture order.

    Raises:
        DataError: a missing or unreadable data file, a bad mixture.
    """
    from unifiedreward.data.mixture import load_mixture, load_records

    report = report if report is not None else SkipReport()
    direct = Path(str(data_path)).suffix.lower() not in (".yaml", ".yml")
    entries = load_mixture(data_path, seed=seed, media_folder=image_folder)
    pairs: list[PreferencePair] = []
    for entry in entries:
        image_root = str(entry.media_folder)
        video_root = str(Path(video_folder).expanduser()) if direct and video_folder is not None else image_root
        for raw in load_records(entry):
            data = raw.data
            given = data.get("id") if isinstance(data, Mapping) else None
            record_id = str(given) if given is not None else f"{raw.source.name}:{raw.index}"
            report.total += 1
            try:
                pairs.append(_parse(data, record_id, image_root, video_root))
            except DataError as exc:
                report.add("invalid", record_id, exc.reason)
    return pairs


def decode_media(pair: PreferencePair, media: MediaConfig) -> Any:
    """The decoded image (PIL) or :class:`~unifiedreward.media.Video` of a pair (``None`` for text only).

    Raises:
        MediaError: missing, empty, truncated or corrupt media.
    """
    from unifiedreward.media import resolve_media

    if pair.kind is None:
        return None
    if pair.kind == "image":
        return resolve_media(pair.media, "image", root=pair.root, max_pixels=media.image_max_pixels)
    is_file = isinstance(pair.media, str) and not (Path(pair.root or ".") / pair.media).is_dir()
    return resolve_media(
        pair.media,
        "video",
        root=pair.root,
        num_frames=media.num_frames,
        fps=media.fps if is_file else None,
        max_pixels=media.video_max_pixels,
        backend=media.video_backend,
    )


def prompt_messages(question: str, family: str, kind: MediaKindOrNone) -> list[dict[str, Any]]:
    """The policy prompt as conversational messages (module docstring).

    Args:
        question: the record's prompt (literal ``<image>`` tokens are removed).
        family: ``"qwen"`` or ``"llava"``.
        kind: the media part placed before the question: ``"image"``, ``"video"`` or ``None``.

    Returns:
        ``[system (LLaVA only), {"role": "user", "content": [{"type": kind}?, {"type": "text", "text": q}]}]``.
    """
    from unifiedreward.preference.sampling import clean_question
    from unifiedreward.protocol import LLAVA_SYSTEM_PROMPT

    if family not in ("qwen", "llava"):
        raise ValueError(f"family must be 'qwen' or 'llava', got {family!r}")
    parts: list[dict[str, Any]] = [{"type": kind}] if kind is not None else []
    parts.append({"type": "text", "text": clean_question(question)})
    messages = [{"role": "user", "content": parts}]
    if family == "llava":
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": LLAVA_SYSTEM_PROMPT}]})
    return messages


def example_of(pair: PreferencePair, decoded: Any, family: str) -> dict[str, Any]:
    """The training example of a pair: TRL's conversational vision-preference format.

    Returns:
        ``{"id", "images": [PIL] | [], "prompt": messages, "chosen": [assistant turn], "rejected": [...]}`` plus
        ``"video": Video`` for a video pair (``images`` then stays empty, which keeps TRL in its vision mode).
    """
    example: dict[str, Any] = {
        "id": pair.id,
        "images": [decoded] if pair.kind == "image" else [],
        "prompt": prompt_messages(pair.prompt, family, pair.kind),
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": pair.chosen}]}],
        "rejected": [{"role": "assistant", "content": [{"type": "text", "text": pair.rejected}]}],
    }
    if pair.kind == "video":
        example["video"] = decoded
    return example


def check_pairs(
    pairs: Sequence[PreferencePair],
    processor: Any,
    family: str,
    *,
    media: MediaConfig,
    max_length: int | None,
    report: SkipReport,
) -> tuple[list[PreferencePair], list[int]]:
    """Keep the pairs whose media decode and whose longest side fits ``max_length``.

    The length of a pair is ``prompt tokens (media expanded by the processor) + max(chosen, rejected tokens)``,
    measured exactly as :class:`~unifiedreward.dpo.vlm_collator.PreferenceCollator` builds the batch.

    Returns:
        ``(kept pairs, their lengths)``; the skipped ones are in ``report`` (``"media"``, ``"over-length"``).
    """
    from unifiedreward.dpo.vlm_collator import encode_lengths

    kept, lengths = [], []
    for pair in pairs:
        try:
            decoded = decode_media(pair, media)
        except MediaError as exc:
            report.add("media", pair.id, str(exc))
            continue
        length = encode_lengths(example_of(pair, decoded, family), processor)
        if max_length is not None and length > max_length:
            report.add("over-length", pair.id, f"{length} tokens > max_length {max_length}")
            continue
        kept.append(pair)
        lengths.append(length)
    return kept, lengths


class PreferenceDataset:
    """The checked pairs; ``dataset[i]`` decodes the media of pair ``i`` anew (:meth:`as_hf_dataset` for TRL).

    Attributes:
        pairs: the kept pairs.
        lengths: their token lengths (see :func:`check_pairs`).
        report: the :class:`SkipReport` of the records left out.
        family: ``"qwen"`` or ``"llava"``.
    """

    def __init__(
        self,
        pairs: Sequence[PreferencePair],
        family: str,
        media: MediaConfig,
        *,
        lengths: Sequence[int] | None = None,
        report: SkipReport | None = None,
    ):
        self.pairs = list(pairs)
        self.family = family
        self.media = media
        self.lengths = list(lengths) if lengths is not None else []
        self.report = report if report is not None else SkipReport()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(index)
        pair = self.pairs[index]
        return example_of(pair, decode_media(pair, self.media), self.family)

    def _transform(self, batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """``datasets`` transform: rows ``{"index"}`` -> decoded examples (``video`` is ``None`` for non-videos)."""
        examples = [self[int(index)] for index in batch["index"]]
        keys = ("id", "images", "prompt", "chosen", "rejected", "video")
        return {key: [example.get(key) for example in examples] for key in keys}

    def as_hf_dataset(self) -> Any:
        """A ``datasets.Dataset`` view (what ``DPOTrainer`` accepts) that decodes each example's media on access.

        The Arrow table holds only ``index`` and ``id``; a ``with_transform`` builds the example (see
        :func:`example_of`), so no decoded media are ever stored.
        """
        import datasets

        table = datasets.Dataset.from_dict({"index": list(range(len(self.pairs))), "id": [p.id for p in self.pairs]})
        return table.with_transform(self._transform)

    @classmethod
    def build(
        cls,
        data_path: str | Path,
        processor: Any,
        family: str,
        *,
        image_folder: str | Path | None = None,
        video_folder: str | Path | None = None,
        media: MediaConfig | None = None,
        max_length: int | None = None,
        seed: int = 42,
        max_skipped_fraction: float = 1.0,
    ) -> PreferenceDataset:
        """Load, check and wrap the pairs of ``data_path`` (see :func:`load_pairs`, :func:`check_pairs`).

        Raises:
            DataError: no usable pair, or more than ``max_skipped_fraction`` of the records skipped.
        """
        media = media or MediaConfig()
        report = SkipReport()
        pairs = load_pairs(data_path, image_folder=image_folder, video_folder=video_folder, seed=seed, report=report)
        kept, lengths = check_pairs(pairs, processor, family, media=media, max_length=max_length, report=report)
        if not kept:
            raise DataError(f"no usable preference pair ({report.counts()} skipped)", path=str(data_path))
        if report.num_skipped / report.total > max_skipped_fraction:
            raise DataError(
                f"{report.num_skipped} of {report.total} records skipped {report.counts()}, above "
                f"max_skipped_fraction={max_skipped_fraction:g}; their ids are logged above",
                path=str(data_path),
            )
        logger.info("%d preference pairs of %d records; skipped %s", len(kept), report.total, report.counts())
        return cls(kept, family, media, lengths=lengths, report=report)
