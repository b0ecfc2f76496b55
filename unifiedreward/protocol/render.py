"""Render a template into chat messages, with media placed the way upstream places them.

Qwen form (``family="qwen"``, upstream ``inference_qwen/*``): one user message whose content lists the media parts
first, in order, then exactly one text part. The checkpoint's chat template adds the default system turn.

LLaVA form (``family="llava"``, upstream ``inference_llava/*`` with ``conv_qwen``): an explicit system turn
``You are a helpful assistant.`` and one user message whose text carries literal ``<image>`` tokens. Templates whose
text starts with its own tokens (an image pair is ``"<image>\\n <image>\\n"``) keep them; the others get
``"<image>\\n"`` once per image or video *frame*, because upstream feeds each video frame as a separate image
(protocol reference §0.3). Videos are therefore flattened into the image list in the LLaVA form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import TemplateError
from unifiedreward.protocol.templates import _INLINE_PREFIX, Mode, Task, TemplateSpec, get_template, select_template

LLAVA_SYSTEM_PROMPT = "You are a helpful assistant."

# Public keyword -> upstream placeholder name. Upstream spellings are accepted too.
FIELD_ALIASES: dict[str, str] = {
    "prompt": "prompt",
    "caption": "prompt",
    "question": "Query",
    "query": "Query",
    "answer1": "R1",
    "answer2": "R2",
    "response": "Response",
    "answer": "Response",
    "instruction": "instruction",
}


def _normalise_fields(spec: TemplateSpec, fields: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in fields.items():
        name = key if key in spec.fields else FIELD_ALIASES.get(key, key)
        if name == "Response" and "Response" not in spec.fields and "answer" in spec.fields:
            name = "answer"  # the GPT judge's {answer} is the reference answer
        if name not in spec.fields:
            raise TemplateError(f"template {spec.id} takes fields {list(spec.fields)}; got unexpected {key!r}")
        if value is None:
            raise TemplateError(f"template {spec.id}: field {key!r} is None")
        values[name] = str(value)
    missing = [name for name in spec.fields if name not in values]
    if missing:
        raise TemplateError(f"template {spec.id}: missing fields {missing}")
    return values


def fill_template(spec: TemplateSpec | str, **fields: Any) -> str:
    """Fill a template's ``{placeholders}`` in one pass.

    Only the template's own placeholder names are replaced, so literal braces in the text (Flex's JSON skeleton,
    the GPT judge's example dict) and braces inside the values are left alone.

    Args:
        spec: a template or its id.
        **fields: ``prompt``, ``question``, ``answer1``, ``answer2``, ``response``, ``instruction`` (or the upstream
            names ``Query``, ``R1``, ``R2``, ``Response``).

    Returns:
        The exact upstream text with the fields substituted.
    """
    spec = get_template(spec) if isinstance(spec, str) else spec
    values = _normalise_fields(spec, fields)
    if not spec.fields:
        return spec.text
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, spec.fields)) + r")\}")
    return pattern.sub(lambda m: values[m.group(1)], spec.text)


def _check_media(spec: TemplateSpec, images: Sequence[Any], videos: Sequence[Any]) -> None:
    want_images = spec.media.count("image")
    want_videos = spec.media.count("video")
    if len(images) != want_images or len(videos) != want_videos:
        raise TemplateError(
            f"template {spec.id} expects {want_images} image(s) and {want_videos} video(s); "
            f"got {len(images)} image(s) and {len(videos)} video(s)"
        )


def render_prompt(
    template: TemplateSpec | str | None = None,
    *,
    task: Task | str | None = None,
    mode: Mode | str | None = None,
    family: str = "qwen",
    version: str = "1.0",
    images: Sequence[Any] = (),
    videos: Sequence[Any] = (),
    **fields: Any,
) -> ChatPrompt:
    """Build the chat messages of one judging request.

    Either name a ``template`` (a spec or id such as ``"T-IG-PAIR-QWEN"``), or give ``task`` and ``mode`` (and
    ``version``) to use the template upstream uses for that family.

    Args:
        template: the template, or ``None`` to select one from ``task``/``mode``/``family``/``version``.
        family: ``"qwen"`` (content parts) or ``"llava"`` (``<image>`` tokens in the text).
        images: decoded images (PIL), in the order the template expects (e.g. image 1, image 2).
        videos: decoded :class:`unifiedreward.media.Video` objects, in order.
        **fields: the template's text fields (see :func:`fill_template`).

    Returns:
        A :class:`ChatPrompt`; ``meta`` records the template id and family.

    Raises:
        TemplateError: unknown template, a family the template was not written for, wrong fields, or a media count
            that does not match the template.
    """
    if template is None:
        if task is None or mode is None:
            raise TemplateError("render_prompt needs a template or both task and mode")
        spec = select_template(task, mode, family, version)
    else:
        spec = get_template(template) if isinstance(template, str) else template
    if family not in ("qwen", "llava"):
        raise TemplateError(f"family must be 'qwen' or 'llava', got {family!r}")
    if family not in spec.families:
        raise TemplateError(f"template {spec.id} is not defined for {family} checkpoints (only {spec.families})")
    _check_media(spec, images, videos)
    text = fill_template(spec, **fields)
    meta = {"template_id": spec.id, "family": family}
    if family == "qwen":
        text = _INLINE_PREFIX.sub("", text, count=1)
        parts: list[dict[str, Any]] = [{"type": kind} for kind in spec.media]
        parts.append({"type": "text", "text": text})
        messages = [{"role": "user", "content": parts}]
        return ChatPrompt(messages=messages, images=list(images), videos=list(videos), family="qwen", meta=meta)

    # LLaVA: media become a flat image list (video frames as separate images), ordered as the template lists them.
    flat: list[Any] = []
    image_pos, video_pos = 0, 0
    for kind in spec.media:
        if kind == "image":
            flat.append(images[image_pos])
            image_pos += 1
        else:
            flat.extend(_video_frames(videos[video_pos]))
            video_pos += 1
    inline = spec.inline_image_tokens
    if inline:
        if inline != len(flat):
            raise TemplateError(
                f"template {spec.id} carries {inline} <image> token(s) but {len(flat)} image(s)/frame(s) were given"
            )
    else:
        text = "<image>\n" * len(flat) + text
    messages = [
        {"role": "system", "content": [{"type": "text", "text": LLAVA_SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "text", "text": text}]},
    ]
    return ChatPrompt(messages=messages, images=flat, videos=[], family="llava", meta=meta)


def _video_frames(video: Any) -> list[Any]:
    """The frames of a decoded video as PIL images (LLaVA feeds each frame as one image)."""
    from unifiedreward.media import video_frames

    return video_frames(video)
