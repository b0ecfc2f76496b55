"""OpenAI chat-completions ``messages`` from rendered prompts (:func:`to_openai_messages`), for
:class:`~unifiedreward.judge.openai_backend.OpenAIBackend`.

* **Qwen form** (media placeholder parts): each ``{"type": "text"}`` part becomes an OpenAI text part, each
  ``{"type": "image"}`` placeholder an ``image_url`` part holding the next image as a base64 data URL (JPEG q95,
  as upstream sends), and each ``{"type": "video"}`` placeholder, by default, the video's frames as consecutive
  ``image_url`` parts: upstream always sends videos as JPEG frame sequences, never as a video part (§0.4). With
  ``video_as="video_url"`` a video is one ``video_url`` part instead, encoded as vLLM's
  ``data:video/jpeg;base64,<frame 1>,<frame 2>,...`` (each frame base64 JPEG, comma-separated). That encoding is
  vLLM-specific, carries no timestamps, and needs a server started with a ``video`` entry in
  ``--limit-mm-per-prompt``.
* **LLaVA form** (literal ``<image>`` tokens in the text): a chat server inserts its own image tokens for every
  ``image_url`` part, so the literal tokens are removed from the text (with any spaces before each token and the
  line break after it) and the images go as ``image_url`` parts before the message's text, one per removed token,
  in order. ``<video>`` tokens are handled the same way with the prompt's videos. Upstream's SGLang client instead
  kept a literal ``<image>\\n`` in the text *and* sent the image part (§7.3), which may give the model two image
  slots depending on the SGLang version.
* Roles (``system`` / ``user`` / ``assistant``) are kept. A message whose content is a single text part is sent as a
  plain string (some servers' chat templates want string system turns).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.media import video_frames

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["VIDEO_MODES", "to_openai_messages"]

#: Accepted values of ``video_as``.
VIDEO_MODES: tuple[str, ...] = ("frames", "video_url")

# A literal media token of the LLaVA form, with the spaces before it and one line break after it.
_MEDIA_TOKEN = re.compile(r"[ \t]*<(image|video)>\n?")


def _encode_image(image: Image.Image, image_format: str, quality: int) -> str:
    from unifiedreward.media import image_to_data_url

    return image_to_data_url(image, format=image_format, quality=quality)


@dataclass
class _MediaEncoder:
    """Turns the prompt's images and videos into OpenAI content parts, consuming them in order."""

    images: Sequence[Any]
    videos: Sequence[Any]
    video_as: str
    image_format: str
    jpeg_quality: int
    next_image: int = 0
    next_video: int = 0

    def image_parts(self) -> list[dict[str, Any]]:
        if self.next_image >= len(self.images):
            raise ValueError(f"the prompt has more image placeholders than images ({len(self.images)})")
        image = self.images[self.next_image]
        self.next_image += 1
        url = _encode_image(image, self.image_format, self.jpeg_quality)
        return [{"type": "image_url", "image_url": {"url": url}}]

    def video_parts(self) -> list[dict[str, Any]]:
        if self.next_video >= len(self.videos):
            raise ValueError(f"the prompt has more video placeholders than videos ({len(self.videos)})")
        frames = video_frames(self.videos[self.next_video])
        self.next_video += 1
        if not frames:
            raise ValueError(f"video {self.next_video} has no frames")
        if self.video_as == "frames":
            return [
                {"type": "image_url", "image_url": {"url": _encode_image(frame, self.image_format, self.jpeg_quality)}}
                for frame in frames
            ]
        # vLLM's frame-list video encoding: "data:video/jpeg;base64,<b64 frame>,<b64 frame>,..." (always JPEG).
        payloads = [_encode_image(frame, "JPEG", self.jpeg_quality).split(",", 1)[1] for frame in frames]
        return [{"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + ",".join(payloads)}}]

    def check_consumed(self) -> None:
        if self.next_image != len(self.images) or self.next_video != len(self.videos):
            raise ValueError(
                f"the prompt places {self.next_image} image(s) and {self.next_video} video(s) but carries "
                f"{len(self.images)} image(s) and {len(self.videos)} video(s)"
            )


def _simplify(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text part is sent as a plain string; anything else as a list of parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _text_parts(content: Any, role: str) -> list[str]:
    """The texts of a message's content (a string or a list of text parts), for the LLaVA form."""
    if isinstance(content, str):
        return [content]
    texts = []
    for part in content:
        if not isinstance(part, Mapping) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise ValueError(f"a LLaVA-form {role} message may only hold text parts, got a {kind!r} part")
        texts.append(str(part.get("text", "")))
    return texts


def _convert_qwen(prompt: ChatPrompt, encoder: _MediaEncoder) -> list[dict[str, Any]]:
    messages = []
    for message in prompt.messages:
        role = message["role"]
        content = message.get("content")
        if content is None or isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image":
                parts.extend(encoder.image_parts())
            elif kind == "video":
                parts.extend(encoder.video_parts())
            elif kind in ("image_url", "video_url"):  # already in OpenAI form: passed through untouched
                parts.append(dict(part))
            else:
                raise ValueError(f"unsupported content part in a {role} message: {part!r:.80}")
        messages.append({"role": role, "content": _simplify(parts)})
    return messages


def _convert_llava(prompt: ChatPrompt, encoder: _MediaEncoder) -> list[dict[str, Any]]:
    converted: list[tuple[str, list[str], list[str]]] = []  # (role, stripped texts, media kinds in token order)
    for message in prompt.messages:
        role = message["role"]
        texts, kinds = [], []
        for text in _text_parts(message.get("content") or "", role):
            kinds.extend(match.group(1) for match in _MEDIA_TOKEN.finditer(text))
            texts.append(_MEDIA_TOKEN.sub("", text))
        converted.append((role, texts, kinds))

    if not any(kinds for _, _, kinds in converted) and (prompt.images or prompt.videos):
        # No tokens at all: all media go before the text of the first user turn.
        first_user = next((i for i, (role, _, _) in enumerate(converted) if role == "user"), None)
        if first_user is None:
            raise ValueError("the prompt carries media but has no user message to attach them to")
        role, texts, _ = converted[first_user]
        converted[first_user] = (role, texts, ["image"] * len(prompt.images) + ["video"] * len(prompt.videos))

    messages = []
    for role, texts, kinds in converted:
        parts: list[dict[str, Any]] = []
        for kind in kinds:
            parts.extend(encoder.image_parts() if kind == "image" else encoder.video_parts())
        parts.extend({"type": "text", "text": text} for text in texts)
        messages.append({"role": role, "content": _simplify(parts) if parts else ""})
    return messages


def to_openai_messages(
    prompt: ChatPrompt, *, video_as: str = "frames", image_format: str = "JPEG", jpeg_quality: int = 95
) -> list[dict[str, Any]]:
    """Convert a :class:`ChatPrompt` into OpenAI chat-completions ``messages`` (see the module docstring).

    Args:
        prompt: the rendered prompt, Qwen form (placeholder parts) or LLaVA form (``prompt.family == "llava"``,
            literal ``<image>`` tokens in the text).
        video_as: ``"frames"`` (each frame an ``image_url`` part, as upstream) or ``"video_url"`` (one vLLM
            ``data:video/jpeg`` part per video).
        image_format: PIL format of the image data URLs (``"JPEG"`` as upstream; ``"PNG"`` for lossless).
        jpeg_quality: JPEG/WEBP quality (95 as upstream).

    Returns:
        The messages, media as base64 data URLs in the order of ``prompt.images`` / ``prompt.videos``.

    Raises:
        ValueError: the placeholders (or tokens) do not match the media carried, an unknown content part, or a bad
            ``video_as``.
        TypeError: a video that is neither a ``Video``, an array nor a list of PIL images.
    """
    if video_as not in VIDEO_MODES:
        raise ValueError(f"video_as must be one of {VIDEO_MODES}, got {video_as!r}")
    encoder = _MediaEncoder(prompt.images, prompt.videos, video_as, image_format, int(jpeg_quality))
    messages = _convert_llava(prompt, encoder) if prompt.family == "llava" else _convert_qwen(prompt, encoder)
    encoder.check_consumed()
    return messages
