"""A judging backend that talks to an OpenAI-compatible chat-completions server (vLLM, SGLang, ...).

This is how upstream UnifiedReward serves its 2.0 / Edit / Flex / Think-qwen3 checkpoints (protocol reference §7):
a vLLM server, and a client that sends one chat request per judgement, many at a time. :class:`OpenAIBackend`
re-implements that client on the standard library only (``urllib`` + a thread pool) and fixes its defects:

* **Decoding is explicit.** ``temperature`` (0 by default: greedy), ``top_p``, ``top_k``, ``repetition_penalty``
  and ``n`` are always sent, plus a per-request ``seed`` when given; upstream sent none, plus a ``do_sample``
  field no OpenAI server reads, so its decoding followed the server's defaults (§8.1 item 5), which vLLM takes
  from the checkpoint's ``generation_config.json``. :meth:`OpenAIBackend.sample` returns the ``n`` choices of
  each request.
* **Failures are never answers.** A request that fails (HTTP error, timeout, refused connection, malformed body)
  yields ``Generation(text=None, error=...)``; only transient failures are retried.

Message conversion (Qwen and LLaVA prompt forms, videos as frames or ``video_url``) is in
:mod:`unifiedreward.judge.openai_messages`; HTTP, retry classification and response parsing in
:mod:`unifiedreward.judge.openai_http`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge.base import Generation, GenerationConfig
from unifiedreward.judge.openai_http import RETRY_STATUSES, HTTPClient, Permanent, Transient, excerpt, parse_choices
from unifiedreward.judge.openai_messages import VIDEO_MODES, to_openai_messages

__all__ = ["RETRY_STATUSES", "VIDEO_MODES", "OpenAIBackend", "to_openai_messages"]

logger = logging.getLogger(__name__)


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
        self._http = HTTPClient(self.base_url, key, self.timeout)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"max_concurrency={self.max_concurrency}, timeout={self.timeout:g}, max_retries={self.max_retries})"
        )

    # -- public API ------------------------------------------------------------------------------------------

    def build_request(
        self, prompt: ChatPrompt, config: GenerationConfig, *, seed: int | None = None
    ) -> dict[str, Any]:
        """The JSON body sent for ``prompt``: model, messages, then every decoding setting explicitly
        (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``, ``n``), ``seed`` (``seed``,
        else ``config.seed``, when set), then ``extra_body``.

        ``top_k`` (``-1`` = disabled, as vLLM and SGLang spell it) and ``repetition_penalty`` are vLLM / SGLang
        extensions, sent so the server's defaults (which vLLM takes from the checkpoint's
        ``generation_config.json``) never apply; for a server that rejects them, remove them with ``extra_body``
        overrides or use a compatible server.

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
            "top_k": int(config.top_k) if config.top_k > 0 else -1,
            "repetition_penalty": float(config.repetition_penalty),
            "n": int(config.n),
        }
        seed = seed if seed is not None else config.seed
        if seed is not None:
            body["seed"] = int(seed)
        body.update(self.extra_body)
        return body

    def generate(
        self, prompts: Sequence[ChatPrompt], config: GenerationConfig, *, seeds: Sequence[int] | None = None
    ) -> list[Generation]:
        """Answer each prompt with one chat-completions request; results in input order (``config.n`` must be 1).

        A prompt that cannot be converted, or whose request fails after the allowed retries, gets a
        ``Generation(text=None, error=...)``; ``meta`` then carries ``attempts`` and, for HTTP errors, ``status``.
        A successful answer's ``meta`` has ``finish_reason`` (``"length"`` means it was cut at ``max_new_tokens``),
        the response ``id`` and ``model`` when given, ``attempts`` and ``elapsed_s``.
        """
        if config.n != 1:
            raise ValueError(f"generate returns one answer per prompt; use sample() for n={config.n} samples")
        return [row[0] for row in self.sample(prompts, config, seeds=seeds)]

    def sample(
        self, prompts: Sequence[ChatPrompt], config: GenerationConfig, *, seeds: Sequence[int] | None = None
    ) -> list[list[Generation]]:
        """``config.n`` answers per prompt from one request each (``"n"`` and ``"seed"`` in the payload).

        Args:
            prompts: the prompts.
            config: decoding settings (``config.n`` choices are requested per prompt).
            seeds: one seed per prompt, sent as that request's ``"seed"`` (default ``config.seed``; none sent when
                both are ``None``). vLLM seeds a per-request generator with it, so a prompt's samples do not depend
                on the other requests in flight; other servers may ignore it.

        Returns:
            One list of ``config.n`` :class:`Generation` objects per prompt, in the order of the response's
            ``choices[].index``. A failed request gives ``n`` copies of its failed ``Generation``; a response with
            fewer choices than asked fails the request (``malformed response``).

        Raises:
            ValueError: ``seeds`` does not have one entry per prompt.
        """
        prompts = list(prompts)
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        if not prompts:
            return []
        seed_of = (lambda i: None) if seeds is None else (lambda i: int(seeds[i]))
        workers = min(self.max_concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-backend") as pool:
            futures = [
                pool.submit(self._generate_one, index, prompt, config, seed_of(index))
                for index, prompt in enumerate(prompts)
            ]
            try:
                results = [future.result() for future in futures]
            except BaseException:  # KeyboardInterrupt: do not start what is still queued
                for future in futures:
                    future.cancel()
                raise
        cut = sum(1 for row in results for g in row if g.ok and g.meta.get("finish_reason") == "length")
        if cut:
            logger.warning(
                "%d of %d answers were cut at max_tokens=%d (finish_reason='length')",
                cut,
                sum(len(row) for row in results),
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
        except (Transient, Permanent) as exc:
            hint = ""
            if getattr(exc, "status", None) == 404 and not self.base_url.endswith("/v1"):
                hint = f" (base_url usually ends in /v1: did you mean {self.base_url}/v1?)"
            raise UnifiedRewardError(f"OpenAI-compatible server check failed, GET {url}: {exc}{hint}") from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnifiedRewardError(
                f"GET {url} did not return JSON: {excerpt(raw.decode(errors='replace'))!r}"
            ) from None
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list):
            raise UnifiedRewardError(f"GET {url} returned no model list ('data'): {excerpt(json.dumps(body))}")
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

    def _generate_one(
        self, index: int, prompt: ChatPrompt, config: GenerationConfig, seed: int | None = None
    ) -> list[Generation]:
        """The ``config.n`` answers of one prompt (``n`` copies of one failed ``Generation`` on failure)."""

        def failed(error: str, meta: dict[str, Any]) -> list[Generation]:
            return [Generation(text=None, error=error, meta=dict(meta)) for _ in range(config.n)]

        try:
            body = self.build_request(prompt, config, seed=seed)
        except (ValueError, TypeError) as exc:
            logger.warning("prompt %d cannot be sent: %s", index, exc)
            return failed(f"invalid prompt: {exc}", {"attempts": 0})
        except Exception as exc:  # e.g. a MediaError while encoding an image
            logger.warning("prompt %d cannot be sent: %s: %s", index, type(exc).__name__, exc, exc_info=True)
            return failed(f"invalid prompt: {type(exc).__name__}: {exc}", {"attempts": 0})

        attempts_allowed = 1 + self.max_retries
        start = time.monotonic()
        for attempt in range(1, attempts_allowed + 1):
            logger.debug("POST %s/chat/completions (prompt %d, attempt %d)", self.base_url, index, attempt)
            try:
                _, raw = self._http.request("POST", "/chat/completions", body)
            except Permanent as exc:
                logger.warning("prompt %d failed, not retried: %s", index, exc)
                return failed(str(exc), {"attempts": attempt, "status": exc.status})
            except Transient as exc:
                if attempt == attempts_allowed:
                    logger.warning("prompt %d failed after %d attempts: %s", index, attempt, exc)
                    meta: dict[str, Any] = {"attempts": attempt}
                    if exc.status is not None:
                        meta["status"] = exc.status
                    return failed(f"{exc} (gave up after {attempt} attempts)", meta)
                delay = self._delay(attempt, exc.retry_after)
                logger.warning("prompt %d: %s; retry %d/%d in %.2fs", index, exc, attempt, self.max_retries, delay)
                time.sleep(delay)
                continue
            generations = parse_choices(raw, config.n)
            for generation in generations:
                generation.meta["attempts"] = attempt
                generation.meta["elapsed_s"] = round(time.monotonic() - start, 4)
                if seed is not None or config.seed is not None:
                    generation.meta["seed"] = body.get("seed")
            if not generations[0].ok:
                logger.warning("prompt %d: %s", index, generations[0].error)
            return generations
        raise AssertionError("unreachable")  # pragma: no cover
