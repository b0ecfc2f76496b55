"""A tiny OpenAI-compatible test server (``GET /v1/models``, ``POST /v1/chat/completions``) on 127.0.0.1.

Test helper, not library code. Usage::

    with StubOpenAIServer(reply="Image 1 is better.") as server:
        backend = OpenAIBackend(server.base_url, server.model)
        ...
        assert server.requests[0]["temperature"] == 0

Behaviour per chat request, first match wins:

1. the next item of the queue filled by :meth:`StubOpenAIServer.script` (one item per request), else
2. ``reply``: a string, or a function ``(body, index) -> str | Behaviour`` of the request body and its 0-based
   arrival index.

A behaviour is a :class:`Reply` (text, finish reason, usage), :class:`Fail` (an HTTP error status with an
OpenAI-style error body), :class:`Raw` (any bytes, for malformed bodies) or :class:`Delay` (sleep, then another
behaviour; a sleep longer than the client timeout makes the client time out) or :class:`Gate` (wait at a
``threading.Barrier``, then another behaviour: holds requests until a given number are in flight at once). Every
request body received is recorded in :attr:`StubOpenAIServer.requests` (chat) and the request headers in
:attr:`StubOpenAIServer.headers`.

:attr:`StubOpenAIServer.max_in_flight` is the highest number of chat requests the server held at once. A request
counts from when its body is read until just *before* its response is written: a client cannot send its next
request on a connection slot before it has the response, so this count never exceeds the client's real
concurrency (counting until after the write would let the client's next request overlap the old one's
bookkeeping).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self


@dataclass
class Reply:
    """A successful completion."""

    text: str | None = "ok"
    finish_reason: str = "stop"
    usage: dict[str, int] | None = field(default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 3})


@dataclass
class Fail:
    """An HTTP error with an OpenAI-style ``{"error": {"message": ...}}`` body."""

    status: int
    message: str = "stub failure"
    retry_after: str | None = None


@dataclass
class Raw:
    """Any body, verbatim (``dict``/``list`` bodies are JSON-encoded)."""

    body: bytes | str | dict | list
    status: int = 200
    content_type: str = "application/json"


@dataclass
class Delay:
    """Sleep ``seconds`` (woken early when the server closes), then behave as ``then``."""

    seconds: float
    then: Behaviour = field(default_factory=Reply)


@dataclass
class Gate:
    """Wait at ``barrier`` (up to ``timeout`` seconds; a broken barrier fails with HTTP 500), then behave as ``then``.

    With ``threading.Barrier(k)`` shared by the first ``k`` requests, none is answered until ``k`` are in flight,
    so a test of concurrency needs no sleeps.
    """

    barrier: threading.Barrier
    then: Behaviour = field(default_factory=Reply)
    timeout: float = 10.0


Behaviour = Reply | Fail | Raw | Delay | Gate
ReplyFn = Callable[[dict[str, Any], int], str | Behaviour]


def completion_body(reply: Reply, model: str, index: int) -> dict[str, Any]:
    """The JSON of a chat-completions answer carrying ``reply``."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-stub-{index}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
            }
        ],
    }
    if reply.usage is not None:
        body["usage"] = {**reply.usage, "total_tokens": sum(reply.usage.values())}
    return body


def count_parts(body: dict[str, Any], kind: str = "image_url") -> int:
    """How many content parts of type ``kind`` the request's messages hold."""
    total = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            total += sum(1 for part in content if part.get("type") == kind)
    return total


def request_text(body: dict[str, Any]) -> str:
    """All text of the request's messages, joined by newlines."""
    out = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(part.get("text", "") for part in content if part.get("type") == "text")
    return "\n".join(out)


class StubOpenAIServer:
    """A threaded OpenAI-compatible stub bound to 127.0.0.1 on an ephemeral port; a context manager.

    Args:
        reply: default behaviour: a text, or ``fn(body, index) -> str | Behaviour``.
        models: the model ids listed by ``GET /v1/models``.
    """

    def __init__(self, reply: str | ReplyFn = "ok", *, models: Iterable[str] = ("UnifiedReward",)):
        self.reply = reply
        self.models = list(models)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.model_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.models[0]

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        handler = type("_BoundHandler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting ---------------------------------------------------------------------------------------------

    def script(self, *behaviours: Behaviour | str) -> None:
        """Queue behaviours for the next chat requests, one each (strings are replies)."""
        with self._lock:
            self._queue.extend(Reply(b) if isinstance(b, str) else b for b in behaviours)

    def _next_behaviour(self, body: dict[str, Any], index: int) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        behaviour = self.reply(body, index) if callable(self.reply) else self.reply
        return Reply(behaviour) if isinstance(behaviour, str) else behaviour

    def wait(self, seconds: float) -> None:
        self._closing.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    stub: StubOpenAIServer
    server_version = "StubOpenAI/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr logging
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) and closed the connection
            pass

    def _send_json(self, status: int, obj: Any, extra: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), extra=extra)

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "code": 404}})
            return
        with self.stub._lock:
            self.stub.model_requests += 1
        data = [
            {"id": name, "object": "model", "owned_by": "stub", "max_model_len": 32768} for name in self.stub.models
        ]
        self._send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "code": 404}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON", "code": 400}})
            return
        stub = self.stub
        with stub._lock:
            index = len(stub.requests)
            stub.requests.append(body)
            stub.headers.append(dict(self.headers.items()))
            stub.in_flight += 1
            stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
        done = False
        try:
            behaviour = self._settle(stub._next_behaviour(body, index))
            with stub._lock:
                stub.in_flight -= 1
                done = True
            self._respond(behaviour, body, index)
        finally:
            if not done:
                with stub._lock:
                    stub.in_flight -= 1

    def _settle(self, behaviour: Behaviour) -> Behaviour:
        """Run the waiting behaviours (delays, gates) and return the one that answers."""
        while isinstance(behaviour, Delay | Gate):
            if isinstance(behaviour, Delay):
                self.stub.wait(behaviour.seconds)
            else:
                try:
                    behaviour.barrier.wait(behaviour.timeout)
                except threading.BrokenBarrierError:
                    return Fail(500, "stub gate broken: fewer requests in flight than expected")
            behaviour = behaviour.then
        return behaviour

    def _respond(self, behaviour: Behaviour, body: dict[str, Any], index: int) -> None:
        if isinstance(behaviour, Fail):
            extra = {"Retry-After": behaviour.retry_after} if behaviour.retry_after is not None else None
            error = {"message": behaviour.message, "type": "StubError", "code": behaviour.status}
            self._send_json(behaviour.status, {"error": error}, extra=extra)
        elif isinstance(behaviour, Raw):
            payload = behaviour.body
            if isinstance(payload, (dict, list)):
                payload = json.dumps(payload)
            if isinstance(payload, str):
                payload = payload.encode("utf-8")
            self._send(behaviour.status, payload, behaviour.content_type)
        elif isinstance(behaviour, Reply):
            self._send_json(200, completion_body(behaviour, str(body.get("model")), index))
        else:  # pragma: no cover - a test bug
            raise TypeError(f"unknown stub behaviour {behaviour!r}")
