"""The hand-off format between the protocol renderer and a model backend.

A :class:`ChatPrompt` is what :func:`unifiedreward.protocol.render_prompt` returns and what
:func:`unifiedreward.inputs.prepare_inputs` (in-process transformers) or the OpenAI-compatible backend consume.
It keeps the chat messages and the decoded media apart, so media are decoded once and shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from unifiedreward.media import Video


@dataclass
class ChatPrompt:
    """One conversation to send to a vision-language model.

    Attributes:
        messages: Hugging Face chat messages (``[{"role": ..., "content": ...}]``). In the Qwen form, media appear
            as placeholder content parts ``{"type": "image"}`` / ``{"type": "video"}`` in the order of ``images`` /
            ``videos``; in the LLaVA form the text itself carries literal ``<image>`` (and ``<video>``) tokens.
        images: decoded RGB images, in the order their placeholders appear.
        videos: decoded videos, in the order their placeholders appear.
        family: ``"qwen"`` or ``"llava"``: which prompt form the messages follow.
        meta: free-form bookkeeping (template id, fields), never sent to the model.
    """

    messages: list[dict[str, Any]]
    images: list[Image.Image] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)
    family: str = "qwen"
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """All text parts of the user turns joined (useful for logs and tests)."""
        out = []
        for message in self.messages:
            content = message["content"]
            if isinstance(content, str):
                out.append(content)
            else:
                out.extend(part["text"] for part in content if part.get("type") == "text")
        return "\n".join(out)
