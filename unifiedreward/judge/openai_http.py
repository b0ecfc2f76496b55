"""HTTP and response parsing for :class:`~unifiedreward.judge.openai_backend.OpenAIBackend` (standard library only).

Networking: every request is ``POST {base_url}/chat/completions``; ``base_url`` is the server's API root, e.g.
``http://localhost:8080/v1``. Proxy variables from the environment are honoured except for loopback hosts
(``localhost``, ``127.x.x.x``, ``::1``), which are always reached directly. ``timeout`` applies to each socket
operation (connecting, waiting for the first byte, each read), as ``urllib`` does, not to the request as a whole.

Failures are classified as :class:`Transient` (connection errors, timeouts, :data:`RETRY_STATUSES`: worth a
retry) or :class:`Permanent` (other HTTP errors); a 200 body that is not a valid chat completion becomes failed
:class:`~unifiedreward.judge.base.Generation` objects (``error="malformed response: ..."``), never an answer.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from unifiedreward.judge.base import Generation

__all__ = ["RETRY_STATUSES", "HTTPClient", "Permanent", "Transient", "excerpt", "parse_choices", "parse_completion"]

#: HTTP statuses that are retried (request timeout, conflict, rate limit, server-side errors).
RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_BODY_EXCERPT = 300


class Transient(Exception):
    """A failure worth retrying (connection error, timeout, retryable HTTP status)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Permanent(Exception):
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


def excerpt(text: str, limit: int = _BODY_EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _server_message(raw: bytes) -> str:
    """The error message of an error body: OpenAI ``{"error": {"message"}}``, vLLM ``{"message"}``, ``{"detail"}``."""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return excerpt(text) or "(empty body)"
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return excerpt(str(error["message"]))
        if isinstance(error, str) and error:
            return excerpt(error)
        for key in ("message", "detail"):
            if body.get(key):
                return excerpt(str(body[key]))
    return excerpt(text)


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


class HTTPClient:
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
            Transient: connection error, timeout or a status in :data:`RETRY_STATUSES`.
            Permanent: any other non-2xx status.
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
                raise Transient(message, status=exc.code, retry_after=_retry_after(exc.headers)) from None
            raise Permanent(message, status=exc.code) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise Transient(f"request timed out after {self.timeout:g}s") from None
            raise Transient(f"connection failed: {_describe_reason(exc.reason)}") from None
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise Transient(f"request timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:  # reset, refused, remote closed, incomplete read...
            raise Transient(f"connection failed: {type(exc).__name__}: {exc}") from None




def parse_completion(raw: bytes) -> Generation:
    """Turn a 200 chat-completions body into a :class:`Generation` (``error="malformed response: ..."`` if bad)."""
    return parse_choices(raw, 1)[0]


def parse_choices(raw: bytes, n: int) -> list[Generation]:
    """The first ``n`` choices of a 200 chat-completions body, by ``choices[].index`` (list order when absent).

    Any malformed part (not JSON, too few choices, a choice without string content) fails all ``n`` with
    ``error="malformed response: ..."``: the answers of one request succeed or fail together.
    """

    def malformed(why: str, prefix: str = "malformed response: ") -> list[Generation]:
        return [Generation(text=None, error=f"{prefix}{why}") for _ in range(n)]

    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return malformed(f"not JSON: {excerpt(raw.decode('utf-8', errors='replace')) or '(empty body)'!r}")
    if not isinstance(body, Mapping):
        return malformed(f"expected a JSON object, got {type(body).__name__}")
    if body.get("error") and "choices" not in body:
        return malformed(_server_message(raw), prefix="server error in a 200 response: ")
    choices = body.get("choices")
    if not isinstance(choices, list):
        return malformed("no 'choices' list")
    if not choices:
        return malformed("empty 'choices'")
    if len(choices) < n:
        return malformed(f"{len(choices)} choices for n={n}")
    if all(isinstance(c, Mapping) and isinstance(c.get("index"), int) for c in choices):
        choices = sorted(choices, key=lambda c: c["index"])
    usage = body.get("usage")
    prompt_tokens = completion_tokens = None
    if isinstance(usage, Mapping):
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
        completion_tokens = usage.get("completion_tokens")
        completion_tokens = completion_tokens if isinstance(completion_tokens, int) and n == 1 else None
    out = []
    for position, choice in enumerate(choices[:n]):
        message = choice.get("message") if isinstance(choice, Mapping) else None
        if not isinstance(message, Mapping):
            return malformed(f"choices[{position}] has no 'message' object")
        content = message.get("content")
        finish_reason = choice.get("finish_reason")
        if not isinstance(content, str):
            what = "missing" if "content" not in message else ("null" if content is None else type(content).__name__)
            return malformed(f"choices[{position}].message.content is {what} (finish_reason={finish_reason!r})")
        meta: dict[str, Any] = {"finish_reason": finish_reason}
        for key in ("id", "model"):
            if key in body:
                meta[key] = body[key]
        if n > 1:
            meta["sample_index"] = position
        out.append(Generation(content, None, prompt_tokens, completion_tokens, meta))
    return out
