"""Typed SFT records: parsing the released data formats into turns of text and media parts.

Three record formats are accepted (protocol reference §3.1, §3.6):

* **LLaVA conversations** (the format of the released UnifiedReward datasets)::

    {"id": "hpd_0001", "image": "a.jpg", "conversations": [{"from": "human", "value": "<image>\\n..."},
                                                            {"from": "gpt", "value": "..."}]}

  with at most one media key: ``image`` (a path or a list of paths), ``images`` (a list of paths) or ``video`` (a
  video file or a folder of frames). Turns use ``from``/``value`` or ``role``/``content``.
* **messages + images/videos** (LLaMA-Factory / Qwen2.5-VL)::

    {"messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant", "content": "..."}],
     "images": ["a.jpg"], "videos": []}

* **Think GRPO prompts** (``{"problem": ..., "solution": ..., "images": [...]}``), parsed into a prompt-only record
  (one user turn, no assistant turn) with ``meta["solution"]``.

A record without media keys is text-only. Media parts are placed where the ``<image>`` / ``<video>`` placeholders
are (the one ``\\n`` right after a placeholder is dropped with it). The rules, and where they differ from upstream,
are in :func:`parse_record`.

Nothing here touches the file system: paths are resolved against the entry's media folder but not checked (see
:meth:`Record.media_paths`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from unifiedreward.errors import DataError

logger = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
MediaType = Literal["image", "video"]
MediaKind = Literal["text", "image", "video", "mixed"]

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"

#: Default of ``images_as_video_threshold``: an LLaVA ``images`` list with MORE paths than this is one video.
IMAGES_AS_VIDEO_THRESHOLD = 2

# A placeholder and the single newline that follows it (upstream writes "<image>\n" before the prompt text).
_PLACEHOLDER_RE = re.compile(r"(<image>|<video>)\n?")

_ROLES: dict[str, Role] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
_MEDIA_KEYS = ("image", "images", "video", "videos", "audio", "audios")


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a turn."""

    text: str

    @property
    def type(self) -> Literal["text"]:
        return "text"

    def to_dict(self) -> dict[str, Any]:
        """The Hugging Face content part ``{"type": "text", "text": ...}``."""
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class MediaPart:
    """An image or a video inside a turn.

    Attributes:
        type: ``"image"`` or ``"video"``.
        path: the resolved path of an image, a video file or a frame folder; for a video given as frame files, the
            tuple of resolved frame paths in order.
    """

    type: MediaType
    path: str | tuple[str, ...]

    @property
    def paths(self) -> list[str]:
        """Every file or folder this part refers to."""
        return list(self.path) if isinstance(self.path, tuple) else [self.path]

    def to_dict(self) -> dict[str, Any]:
        """The Hugging Face content part ``{"type": "image"|"video", "path": str | list[str]}``."""
        return {"type": self.type, "path": list(self.path) if isinstance(self.path, tuple) else self.path}


Part = TextPart | MediaPart


@dataclass
class Turn:
    """One chat turn: a role and its content parts, in order."""

    role: Role
    content: list[Part]

    def text(self) -> str:
        """The text parts joined (media parts left out)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    def media(self) -> list[MediaPart]:
        """The media parts in order."""
        return [p for p in self.content if isinstance(p, MediaPart)]


@dataclass
class Record:
    """One training record with its provenance.

    Attributes:
        id: the record's ``id`` (as a string), or ``"<json_path>:<index>"`` when it has none.
        source: the data file the record came from.
        index: position of the record in that file (0-based; for JSONL, among the non-blank lines).
        turns: the conversation; for prompt-only (GRPO) records, just the prompt.
        media_kind: ``"text"``, ``"image"``, ``"video"`` or ``"mixed"`` (images and videos together).
        meta: bookkeeping: ``format`` (``"llava"``, ``"messages"`` or ``"grpo"``), ``solution`` (GRPO),
            ``dropped_turns`` (a leading assistant turn that was dropped).
    """

    id: str
    source: str
    index: int
    turns: list[Turn]
    media_kind: MediaKind = "text"
    meta: dict[str, Any] = field(default_factory=dict)

    def media_parts(self) -> list[MediaPart]:
        """All media parts, in conversation order."""
        return [part for turn in self.turns for part in turn.media()]

    def media_paths(self) -> list[str]:
        """Every media file or folder the record needs (frame lists expanded), in order; for existence checks."""
        return [path for part in self.media_parts() for path in part.paths]

    @property
    def num_images(self) -> int:
        return sum(part.type == "image" for part in self.media_parts())

    @property
    def num_videos(self) -> int:
        return sum(part.type == "video" for part in self.media_parts())

    def to_messages(self) -> list[dict[str, Any]]:
        """Hugging Face chat messages with content parts, the form the Qwen processors' chat templates accept.

        Returns:
            ``[{"role": "user", "content": [{"type": "image", "path": ...}, {"type": "text", "text": ...}]}, ...]``;
            a video made of frame files has ``"path": [frame paths]``.
        """
        return [{"role": turn.role, "content": [part.to_dict() for part in turn.content]} for turn in self.turns]


# --------------------------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------------------------

_Fail = Callable[[str], NoReturn]


def parse_record(
    data: Any,
    *,
    source: str | Path,
    index: int,
    media_folder: str | Path | None = None,
    id_prefix: str | None = None,
    images_as_video_threshold: int | None = IMAGES_AS_VIDEO_THRESHOLD,
) -> Record:
    """Parse one raw record (LLaVA, messages or GRPO format) into a :class:`Record`.

    Placement rules (the same for every format unless noted):

    * Placeholders may only appear in user turns. If a record has N images and its user turns hold N ``<image>``
      placeholders, image k goes where placeholder k is. With media but no placeholders at all, every media part is
      put at the start of the first user turn (as upstream's ``<image>\\n`` prefix). Any other count is an error,
      and so is a placeholder in a record without that kind of media. Upstream moves a single ``<image>`` that is
      not at the start to the front; we keep it where it is.
    * A video (LLaVA ``video`` key, or an ``images`` list longer than ``images_as_video_threshold``) is ONE video
      part in the first user turn: every ``<image>``/``<video>`` placeholder of that turn is removed and the video
      goes where the first one was (at the start if there is none), as upstream strips the tokens and prepends one.
      A placeholder in a later user turn is an error.
    * LLaVA ``images`` with more than ``images_as_video_threshold`` paths (default 2, upstream's rule) is one video
      made of those frame files: its part carries the tuple of frame paths. ``None`` disables the rule. It applies
      to neither the ``image`` key (a list there is always several images) nor the messages / GRPO formats.

    Turn rules: roles ``human``/``user`` -> user, ``gpt``/``assistant`` -> assistant, ``system`` kept (upstream
    drops a leading system turn and uses its default system prompt; we keep it, and only leading system turns are
    allowed). One leading assistant turn (after the system turns) is dropped, as upstream drops a first turn that is
    not from the human; ``meta["dropped_turns"]`` records it. Any other role is an error.

    Args:
        data: the JSON object.
        source: the data file (named in errors and kept as provenance).
        index: position of the record in the file.
        media_folder: folder that relative media paths are joined to (absolute paths are kept); ``None`` keeps them.
        id_prefix: prefix of the default id ``"<id_prefix>:<index>"``; defaults to ``source``.
        images_as_video_threshold: see above.

    Returns:
        The parsed record.

    Raises:
        DataError: naming the file and the record id, for any malformed or inconsistent record.
    """
    source = str(source)
    if not isinstance(data, dict):
        raise DataError(f"record #{index} is a {type(data).__name__}, expected a JSON object", path=source)
    raw_id = data.get("id")
    if raw_id is None:
        record_id = f"{id_prefix if id_prefix is not None else source}:{index}"
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        record_id = str(raw_id)
    else:
        raise DataError(f"record #{index} has an 'id' of type {type(raw_id).__name__}", path=source)

    def fail(reason: str) -> NoReturn:
        raise DataError(reason, path=source, record_id=record_id)

    resolve = functools.partial(_resolve, folder=media_folder, fail=fail)
    formats = [key for key in ("conversations", "messages", "problem") if key in data]
    if len(formats) > 1:
        fail(f"has more than one of the keys {formats}; expected exactly one record format")
    if not formats:
        fail("has no 'conversations' or 'messages' (nor a GRPO 'problem')")
    if formats[0] == "conversations":
        turns, meta, kind = _parse_llava(data, fail, resolve, images_as_video_threshold)
    elif formats[0] == "messages":
        turns, meta, kind = _parse_messages(data, fail, resolve)
    else:
        turns, meta, kind = _parse_grpo(data, fail, resolve)
    return Record(id=record_id, source=source, index=index, turns=turns, media_kind=kind, meta=meta)


def _parse_llava(
    data: dict[str, Any], fail: _Fail, resolve: Callable[[Any, str], str], threshold: int | None
) -> tuple[list[Turn], dict[str, Any], MediaKind]:
    _reject_media_keys(data, ("image", "images", "video"), "the LLaVA 'conversations' format", fail)
    raw, dropped = _normalize_turns(
        _raw_turns(data["conversations"], "conversations", fail), fail, require_answer=True
    )
    meta: dict[str, Any] = {"format": "llava", **({"dropped_turns": dropped} if dropped else {})}
    present = [key for key in ("image", "images", "video") if _has_media(data.get(key))]
    if len(present) > 1:
        fail(f"has more than one media key {present}; a record carries at most one of image/images/video")
    if not present:
        return _place_items(raw, [], [], fail), meta, "text"
    key = present[0]
    value = data[key]
    if key == "image":
        paths = [value] if isinstance(value, str) else _path_list(value, key, fail)
        return _place_items(raw, [resolve(p, key) for p in paths], [], fail), meta, "image"
    if key == "images":
        paths = [resolve(p, key) for p in _path_list(value, key, fail)]
        if threshold is not None and len(paths) > threshold:
            return _place_video(raw, MediaPart("video", tuple(paths)), fail), meta, "video"
        return _place_items(raw, paths, [], fail), meta, "image"
    if isinstance(value, str):
        video = MediaPart("video", resolve(value, key))
    else:
        video = MediaPart("video", tuple(resolve(p, key) for p in _path_list(value, key, fail)))
    return _place_video(raw, video, fail), meta, "video"


def _parse_messages(
    data: dict[str, Any], fail: _Fail, resolve: Callable[[Any, str], str]
) -> tuple[list[Turn], dict[str, Any], MediaKind]:
    _reject_media_keys(data, ("images", "videos"), "the 'messages' format", fail)
    raw, dropped = _normalize_turns(_raw_turns(data["messages"], "messages", fail), fail, require_answer=True)
    meta: dict[str, Any] = {"format": "messages", **({"dropped_turns": dropped} if dropped else {})}
    images = [resolve(p, "images") for p in _path_list(data.get("images") or [], "images", fail)]
    videos: list[str | tuple[str, ...]] = []
    raw_videos = data.get("videos") or []
    if not isinstance(raw_videos, list):
        fail(f"'videos' must be a list, got {type(raw_videos).__name__}")
    for video in raw_videos:
        if isinstance(video, list):  # one video given as its frame files
            videos.append(tuple(resolve(p, "videos") for p in _path_list(video, "videos", fail)))
        else:
            videos.append(resolve(video, "videos"))
    return _place_items(raw, images, videos, fail), meta, _media_kind(images, videos)


def _parse_grpo(
    data: dict[str, Any], fail: _Fail, resolve: Callable[[Any, str], str]
) -> tuple[list[Turn], dict[str, Any], MediaKind]:
    _reject_media_keys(data, ("image", "images"), "the GRPO 'problem' format", fail)
    problem = data["problem"]
    if not isinstance(problem, str):
        fail(f"'problem' must be a string, got {type(problem).__name__}")
    present = [key for key in ("image", "images") if _has_media(data.get(key))]
    if len(present) > 1:
        fail("has both 'image' and 'images'")
    paths: list[Any] = []
    if present:
        value = data[present[0]]
        paths = [value] if isinstance(value, str) else _path_list(value, present[0], fail)
    images = [resolve(p, present[0]) for p in paths]
    turns = _place_items([("user", problem)], images, [], fail)
    meta = {"format": "grpo", "solution": data.get("solution")}
    return turns, meta, "image" if images else "text"


def _raw_turns(value: Any, key: str, fail: _Fail) -> list[tuple[Role, str]]:
    if not isinstance(value, list):
        fail(f"'{key}' must be a list of turns, got {type(value).__name__}")
    if not value:
        fail(f"'{key}' is empty")
    turns: list[tuple[Role, str]] = []
    for number, turn in enumerate(value):
        if not isinstance(turn, dict):
            fail(f"turn {number} of '{key}' is a {type(turn).__name__}, expected an object")
        role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        if not isinstance(role, str):
            fail(f"turn {number} has no 'from'/'role' string")
        if role.lower() not in _ROLES:
            fail(f"turn {number} has unknown role {role!r} (expected one of {sorted(_ROLES)})")
        if not isinstance(content, str):
            fail(f"turn {number} ({role}) has {type(content).__name__} content, expected a string")
        turns.append((_ROLES[role.lower()], content))
    return turns


def _normalize_turns(
    turns: list[tuple[Role, str]], fail: _Fail, *, require_answer: bool
) -> tuple[list[tuple[Role, str]], int]:
    n_system = 0
    while n_system < len(turns) and turns[n_system][0] == "system":
        n_system += 1
    dropped = 0
    if n_system < len(turns) and turns[n_system][0] == "assistant":
        # Upstream drops a first turn that is not from the human (and would drop a system turn too).
        turns = turns[:n_system] + turns[n_system + 1 :]
        dropped = 1
    roles = [role for role, _ in turns]
    for number, (role, text) in enumerate(turns):
        if role == "assistant" and not text.strip():
            fail(f"assistant turn {number} is empty")
    if "system" in roles[n_system:]:
        fail("has a system turn after the first user turn; system turns must come first")
    if n_system == len(turns) or roles[n_system] != "user":
        fail("has no user turn before the first assistant turn")
    if require_answer and "assistant" not in roles:
        fail("has no assistant turn")
    return turns, dropped


def _has_media(value: Any) -> bool:
    """``None`` and empty lists count as absent (LLaMA-Factory writes ``"images": []`` for text records)."""
    return value is not None and value != []


def _reject_media_keys(data: dict[str, Any], allowed: tuple[str, ...], name: str, fail: _Fail) -> None:
    for key in _MEDIA_KEYS:
        if key not in allowed and _has_media(data.get(key)):
            fail(f"media key {key!r} is not supported in {name} (allowed: {', '.join(allowed)})")


def _path_list(value: Any, key: str, fail: _Fail) -> list[Any]:
    if not isinstance(value, list):
        fail(f"{key!r} must be a list of paths, got {type(value).__name__}")
    return value


def _resolve(path: Any, key: str, *, folder: str | Path | None, fail: _Fail) -> str:
    if not isinstance(path, str) or not path:
        fail(f"{key!r} holds {path!r}, expected a non-empty path string")
    if folder is None or os.path.isabs(path):
        return path
    return str(Path(folder) / path)


def _media_kind(images: list[Any], videos: list[Any]) -> MediaKind:
    if images and videos:
        return "mixed"
    return "image" if images else "video" if videos else "text"


def _count(turns: list[tuple[Role, str]], token: str) -> tuple[int, int]:
    """Placeholders of ``token`` in user turns, and in the other turns."""
    user = sum(text.count(token) for role, text in turns if role == "user")
    return user, sum(text.count(token) for _, text in turns) - user


def _place_items(
    turns: list[tuple[Role, str]], images: list[str], videos: list[str | tuple[str, ...]], fail: _Fail
) -> list[Turn]:
    """Each ``<image>`` / ``<video>`` placeholder takes the next image / video; no placeholders: all at the start."""
    if not images and not videos and not any(IMAGE_TOKEN in text or VIDEO_TOKEN in text for _, text in turns):
        return [Turn(role, [TextPart(text)] if text else []) for role, text in turns]  # text-only fast path
    prepend: list[Part] = []
    for token, items, kind in ((IMAGE_TOKEN, images, "image"), (VIDEO_TOKEN, videos, "video")):
        in_user, elsewhere = _count(turns, token)
        if elsewhere:
            fail(f"has {elsewhere} {token} placeholder(s) outside user turns")
        if in_user == 0 and items:
            prepend.extend(MediaPart(kind, item) for item in items)
        elif in_user != len(items):
            fail(f"has {in_user} {token} placeholder(s) in its user turns but {len(items)} {kind}(s)")
    queues = {IMAGE_TOKEN: iter(images), VIDEO_TOKEN: iter(videos)}
    kinds: dict[str, MediaType] = {IMAGE_TOKEN: "image", VIDEO_TOKEN: "video"}
    first_user = next(i for i, (role, _) in enumerate(turns) if role == "user")
    out = []
    for number, (role, text) in enumerate(turns):
        parts: list[Part] = list(prepend) if number == first_user else []
        for k, piece in enumerate(_PLACEHOLDER_RE.split(text)):
            if k % 2 == 0:
                parts.append(TextPart(piece))
            else:
                parts.append(MediaPart(kinds[piece], next(queues[piece])))
        out.append(Turn(role, _merge_text(parts)))
    return out


def _place_video(turns: list[tuple[Role, str]], video: MediaPart, fail: _Fail) -> list[Turn]:
    """One video in the first user turn, at its first placeholder (all of that turn's placeholders removed)."""
    first_user = next(i for i, (role, _) in enumerate(turns) if role == "user")
    for number, (role, text) in enumerate(turns):
        if number != first_user and (IMAGE_TOKEN in text or VIDEO_TOKEN in text):
            fail(f"is a video record but turn {number} ({role}) holds an <image>/<video> placeholder")
    out = []
    for number, (role, text) in enumerate(turns):
        if number != first_user:
            out.append(Turn(role, _merge_text([TextPart(text)])))
            continue
        pieces = _PLACEHOLDER_RE.split(text)
        parts: list[Part] = [] if len(pieces) > 1 else [video]
        for k, piece in enumerate(pieces):
            if k % 2 == 0:
                parts.append(TextPart(piece))
            elif k == 1:
                parts.append(video)
        out.append(Turn(role, _merge_text(parts)))
    return out


def _merge_text(parts: list[Part]) -> list[Part]:
    """Join adjacent text parts and drop empty ones."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, TextPart):
            if not part.text:
                continue
            if out and isinstance(out[-1], TextPart):
                out[-1] = TextPart(out[-1].text + part.text)
                continue
        out.append(part)
    return out
