"""A judging backend that talks to an OpenAI-compatible chat-completions server (vLLM, SGLang, ...).

This is how upstream UnifiedReward serves its 2.0 / Edit / Flex / Think-qwen3 checkpoints (protocol reference §7):
a vLLM server, and a client that sends one chat request per judgement, many at a time. :class:`OpenAIBackend`
re-implements that client on the standard library only (``urllib`` + a thread pool) and fixes its defects:

* **Greedy decoding is explicit.** ``temperature`` (0 by default) is always sent; upstream sent none, plus a
  ``do_sample`` field no OpenAI server reads, so its decoding followed the server's defaults (§8.1 item 5).
* **Failures are never answers.** A request that fails (HTTP error, timeout, refused connection, malformed body)
  yields ``Generation(text=None, error=...)``; only transient failures are retried.

Message conversion (:func:`to_openai_messages`):

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

Networking: every request is ``POST {base_url}/chat/completions``; ``base_url`` is the server's API root, e.g.
``http://localhost:8080/v1``. Proxy variables from the environment are honoured except for loopback hosts
(``localhost``, ``127.x.x.x``, ``::1``), which are always reached directly. ``timeout`` applies to each socket
operation (connecting, waiting for the first byte, each read), as ``urllib`` does, not to the request as a whole.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge.base import Generation, GenerationConfig

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

logger = logging.getLogger(__name__)

#: HTTP statuses that are retried (request timeout, conflict, rate limit, server-side errors).
RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})

#: Accepted values of ``video_as``.
VIDEO_MODES: tuple[str, ...] = ("frames", "video_url")

# A literal media token of the LLaVA form, with the spaces before it and one line break after it.
_MEDIA_TOKEN = re.compile(r"[ \t]*<(image|video)>\n?")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_BODY_EXCERPT = 300


# ----------------------------------------------------------------------------------------------------------------
# message conversion


def _encode_image(image: Image.Image, image_format: str, quality: int) -> str:
    from unifiedreward.media import image_to_data_url

    return image_to_data_url(image, format=image_format, quality=quality)


def _video_frames(video: Any) -> list[Image.Image]:
    """The frames of a :class:`unifiedreward.media.Video` (or a ``(T, H, W, 3)`` array, or a list of PIL images)."""
    import numpy as np
    from PIL import Image

    if hasattr(video, "to_pil_frames"):
        return list(video.to_pil_frames())
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"a video array must be (T, H, W, 3), got shape {video.shape}")
        return [Image.fromarray(np.ascontiguousarray(frame).astype(np.uint8, copy=False)) for frame in video]
    if isinstance(video, Sequence) and all(isinstance(frame, Image.Image) for frame in video):
        return list(video)
    raise TypeError(f"cannot take video frames from a {type(video).__name__}")


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
        frames = _video_frames(self.videos[self.next_video])
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


# ----------------------------------------------------------------------------------------------------------------
# HTTP helpers


class _Transient(Exception):
    """A failure worth retrying (connection error, timeout, retryable HTTP status)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _Permanent(Exception):
    """A failure not worth retrying (other 4xx, malformed response)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _excerpt(text: str, limit: int = _BODY_EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _server_message(raw: bytes) -> str:
    """The error message of an error body: OpenAI ``{"error": {"message"}}``, vLLM ``{"message"}``, ``{"detail"}``."""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return _excerpt(text) or "(empty body)"
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return _excerpt(str(error["message"]))
        if isinstance(error, str) and error:
            return _excerpt(error)
        for key in ("message", "detail"):
            if body.get(key):
                return _excerpt(str(body[key]))
    return _excerpt(text)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: ignored, the exponential backoff applies
    return seconds if seconds >= 0 else None


def _describe_reason(reason: Any) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    return str(reason) or type(reason).__name__


class _HTTP:
    """Minimal JSON-over-HTTP client on ``urllib`` (thread-safe: one connection per request)."""

    def __init__(self, base_url: str, api_key: str, timeout: float):
        self.base_url = base_url
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        host = urllib.parse.urlsplit(base_url).hostname
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
        self._opener = urllib.request.build_opener(*handlers)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request; return ``(status, body)`` for a 2xx answer.

        Raises:
            _Transient: connection error, timeout or a status in :data:`RETRY_STATUSES`.
            _Permanent: any other non-2xx status.
        """
        url = f"{self.base_url}{path}"
        data = None
        headers = dict(self._headers)
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):  # the body is only used for the message
                raw = b""
            finally:
                exc.close()
            message = f"HTTP {exc.code} {exc.reason}: {_server_message(raw)}"
            if exc.code in RETRY_STATUSES:
                raise _Transient(message, status=exc.code, retry_after=_retry_after(exc.headers)) from None
            raise _Permanent(message, status=exc.code) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Transient(f"request timed out after {self.timeout:g}s") from None
            raise _Transient(f"connection failed: {_describe_reason(exc.reason)}") from None
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise _Transient(f"request timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:  # reset, refused, remote closed, incomplete read...
            raise _Transient(f"connection failed: {type(exc).__name__}: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# response parsing


def _parse_completion(raw: bytes) -> Generation:
    """Turn a 200 chat-completions body into a :class:`Generation` (``error="malformed response: ..."`` if bad)."""

    def malformed(why: str) -> Generation:
        return Generation(text=None, error=f"malformed response: {why}")

    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return malformed(f"not JSON: {_excerpt(raw.decode('utf-8', errors='replace')) or '(empty body)'!r}")
    if not isinstance(body, Mapping):
        return malformed(f"expected a JSON object, got {type(body).__name__}")
    if body.get("error") and "choices" not in body:
        return Generation(text=None, error=f"server error in a 200 response: {_server_message(raw)}")
    choices = body.get("choices")
    if not isinstance(choices, list):
        return malformed("no 'choices' list")
    if not choices:
        return malformed("empty 'choices'")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        return malformed("choices[0] has no 'message' object")
    content = message.get("content")
    finish_reason = choice.get("finish_reason")
    if not isinstance(content, str):
        what = "missing" if "content" not in message else ("null" if content is None else type(content).__name__)
        return malformed(f"choices[0].message.content is {what} (finish_reason={finish_reason!r})")

    meta: dict[str, Any] = {"finish_reason": finish_reason}
    for key in ("id", "model"):
        if key in body:
            meta[key] = body[key]
    usage = body.get("usage")
    prompt_tokens = completion_tokens = None
    if isinstance(usage, Mapping):
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
        completion_tokens = usage.get("completion_tokens")
        completion_tokens = completion_tokens if isinstance(completion_tokens, int) else None
    return Generation(text=content, num_prompt_tokens=prompt_tokens, num_generated_tokens=completion_tokens, meta=meta)


# ----------------------------------------------------------------------------------------------------------------
# the backend


class OpenAIBackend:
    """A :class:`unifiedreward.judge.base.Backend` over an OpenAI-compatible chat-completions server.

    Example::

        backend = OpenAIBackend("http://localhost:8080/v1", "UnifiedReward")
        backend.health_check()
        [answer] = backend.generate([render_prompt("T-V2-PAIRSCORE-IMG", ...)], GenerationConfig(4096))

    Requests run concurrently on a thread pool of at most ``max_concurrency`` threads; results come back in input
    order. Each request is retried, with exponential backoff and jitter, on connection errors, timeouts and HTTP
    408/409/429/500/502/503/504 (a ``Retry-After`` header in seconds is honoured, up to ``max_backoff``). Other HTTP
    errors and malformed responses fail the item at once. A failed item is ``Generation(text=None, error=...)``;
    :meth:`generate` itself does not raise for request failures.

    Args:
        base_url: the API root, e.g. ``"http://localhost:8080/v1"`` (``/chat/completions`` and ``/models`` are
            appended).
        model: the served model name (upstream serves under ``--served-model-name UnifiedReward``).
        api_key: bearer token; defaults to ``$OPENAI_API_KEY``, else ``"EMPTY"`` (vLLM without ``--api-key``).
        max_concurrency: maximum number of requests in flight.
        timeout: seconds allowed for each socket operation of a request (connect, first byte, each read).
        max_retries: retries after the first attempt (so at most ``1 + max_retries`` attempts per item).
        backoff: first retry delay in seconds; doubles on every retry, with jitter (uniform in
            ``[delay / 2, delay]``), capped at ``max_backoff``.
        max_backoff: upper bound of one retry delay, in seconds.
        video_as: ``"frames"`` (each frame an ``image_url`` part, as upstream) or ``"video_url"`` (vLLM's
            ``data:video/jpeg`` frame-list encoding, one part per video).
        image_format: PIL format of the image data URLs (``"JPEG"`` as upstream).
        jpeg_quality: JPEG quality (95 as upstream).
        extra_body: extra request fields merged into every request body last, so they can override the defaults
            (e.g. ``{"top_k": 1}``, ``{"chat_template_kwargs": {"enable_thinking": False}}``,
            ``{"mm_processor_kwargs": {...}}``).

    Raises:
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        video_as: str = "frames",
        image_format: str = "JPEG",
        jpeg_quality: int = 95,
        extra_body: Mapping[str, Any] | None = None,
    ):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as http://localhost:8080/v1, got {base_url!r}")
        if not model:
            raise ValueError("model must be a non-empty served model name")
        if isinstance(max_concurrency, bool) or int(max_concurrency) != max_concurrency or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if isinstance(max_retries, bool) or int(max_retries) != max_retries or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError(f"backoff and max_backoff must be >= 0, got {backoff!r} and {max_backoff!r}")
        if video_as not in VIDEO_MODES:
            raise ValueError(f"video_as must be one of {VIDEO_MODES}, got {video_as!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.video_as = video_as
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.extra_body = dict(extra_body or {})
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._http = _HTTP(self.base_url, key, self.timeout)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"max_concurrency={self.max_concurrency}, timeout={self.timeout:g}, max_retries={self.max_retries})"
        )

    # -- public API ------------------------------------------------------------------------------------------

    def build_request(self, prompt: ChatPrompt, config: GenerationConfig) -> dict[str, Any]:
        """The JSON body sent for ``prompt``: model, messages, ``max_tokens``, ``temperature``, ``top_p``, ``seed``
        (when set), then ``extra_body``.

        Raises:
            ValueError, TypeError: the prompt cannot be converted (see :func:`to_openai_messages`).
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(
                prompt, video_as=self.video_as, image_format=self.image_format, jpeg_quality=self.jpeg_quality
            ),
            "max_tokens": int(config.max_new_tokens),
            "temperature": float(config.temperature),
            "top_p": float(config.top_p),
        }
        if config.seed is not None:
            body["seed"] = int(config.seed)
        body.update(self.extra_body)
        return body

    def generate(self, prompts: Sequence[ChatPrompt], config: GenerationConfig) -> list[Generation]:
        """Answer each prompt with one chat-completions request; results in input order.

        A prompt that cannot be converted, or whose request fails after the allowed retries, gets a
        ``Generation(text=None, error=...)``; ``meta`` then carries ``attempts`` and, for HTTP errors, ``status``.
        A successful answer's ``meta`` has ``finish_reason`` (``"length"`` means it was cut at ``max_new_tokens``),
        the response ``id`` and ``model`` when given, ``attempts`` and ``elapsed_s``.
        """
        prompts = list(prompts)
        if not prompts:
            return []
        workers = min(self.max_concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-backend") as pool:
            futures = [pool.submit(self._generate_one, index, prompt, config) for index, prompt in enumerate(prompts)]
            try:
                results = [future.result() for future in futures]
            except BaseException:  # KeyboardInterrupt: do not start what is still queued
                for future in futures:
                    future.cancel()
                raise
        cut = sum(1 for g in results if g.ok and g.meta.get("finish_reason") == "length")
        if cut:
            logger.warning(
                "%d of %d answers were cut at max_tokens=%d (finish_reason='length')",
                cut,
                len(results),
                config.max_new_tokens,
            )
        return results

    def health_check(self) -> dict[str, Any]:
        """Check that the server is reachable and serves :attr:`model` (``GET {base_url}/models``, one try).

        Returns:
            The model's entry from the ``/models`` listing (vLLM includes e.g. ``max_model_len``).

        Raises:
            UnifiedRewardError: the server is unreachable, answers with an error or an unexpected body, or does not
                serve the model (the message lists what it serves).
        """
        url = f"{self.base_url}/models"
        try:
            _, raw = self._http.request("GET", "/models")
        except (_Transient, _Permanent) as exc:
            hint = ""
            if getattr(exc, "status", None) == 404 and not self.base_url.endswith("/v1"):
                hint = f" (base_url usually ends in /v1: did you mean {self.base_url}/v1?)"
            raise UnifiedRewardError(f"OpenAI-compatible server check failed, GET {url}: {exc}{hint}") from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnifiedRewardError(
                f"GET {url} did not return JSON: {_excerpt(raw.decode(errors='replace'))!r}"
            ) from None
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list):
            raise UnifiedRewardError(f"GET {url} returned no model list ('data'): {_excerpt(json.dumps(body))}")
        entries = [entry for entry in data if isinstance(entry, Mapping) and "id" in entry]
        for entry in entries:
            if entry["id"] == self.model:
                return dict(entry)
        served = ", ".join(repr(entry["id"]) for entry in entries) or "nothing"
        raise UnifiedRewardError(
            f"the server at {self.base_url} does not serve model {self.model!r}; it serves: {served} "
            "(vLLM: set --served-model-name)"
        )

    # -- internals -------------------------------------------------------------------------------------------

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        base = min(self.max_backoff, self.backoff * (2 ** (retry - 1)))
        with self._rng_lock:
            delay = base * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        return delay

    def _generate_one(self, index: int, prompt: ChatPrompt, config: GenerationConfig) -> Generation:
        try:
            body = self.build_request(prompt, config)
        except (ValueError, TypeError) as exc:
            logger.warning("prompt %d cannot be sent: %s", index, exc)
            return Generation(text=None, error=f"invalid prompt: {exc}", meta={"attempts": 0})
        except Exception as exc:  # e.g. a MediaError while encoding an image
            logger.warning("prompt %d cannot be sent: %s: %s", index, type(exc).__name__, exc, exc_info=True)
            return Generation(text=None, error=f"invalid prompt: {type(exc).__name__}: {exc}", meta={"attempts": 0})

        attempts_allowed = 1 + self.max_retries
        start = time.monotonic()
        for attempt in range(1, attempts_allowed + 1):
            logger.debug("POST %s/chat/completions (prompt %d, attempt %d)", self.base_url, index, attempt)
            try:
                _, raw = self._http.request("POST", "/chat/completions", body)
            except _Permanent as exc:
                logger.warning("prompt %d failed, not retried: %s", index, exc)
                return Generation(text=None, error=str(exc), meta={"attempts": attempt, "status": exc.status})
            except _Transient as exc:
                if attempt == attempts_allowed:
                    logger.warning("prompt %d failed after %d attempts: %s", index, attempt, exc)
                    meta: dict[str, Any] = {"attempts": attempt}
                    if exc.status is not None:
                        meta["status"] = exc.status
                    return Generation(text=None, error=f"{exc} (gave up after {attempt} attempts)", meta=meta)
                delay = self._delay(attempt, exc.retry_after)
                logger.warning("prompt %d: %s; retry %d/%d in %.2fs", index, exc, attempt, self.max_retries, delay)
                time.sleep(delay)
                continue
            generation = _parse_completion(raw)
            generation.meta["attempts"] = attempt
            generation.meta["elapsed_s"] = round(time.monotonic() - start, 4)
            if not generation.ok:
                logger.warning("prompt %d: %s", index, generation.error)
            return generation
        raise AssertionError("unreachable")  # pragma: no cover
