"""Tests for unifiedreward.judge.openai_backend against a local stub server (127.0.0.1 only, no real model)."""

from __future__ import annotations

import base64
import io
import logging
import re
import socket
import threading

import numpy as np
import pytest
from openai_stub import Delay, Fail, Gate, Raw, Reply, StubOpenAIServer, count_parts, request_text
from PIL import Image

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge.base import Backend, GenerationConfig
from unifiedreward.judge.openai_backend import OpenAIBackend, to_openai_messages
from unifiedreward.media import Video
from unifiedreward.protocol.render import render_prompt

pytestmark = pytest.mark.unit

GREEDY = GenerationConfig(max_new_tokens=64)


def solid(size: tuple[int, int], color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", size, color)


def qwen_pair(text: str = "Which image is better?") -> ChatPrompt:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": text}]}]
    return ChatPrompt(messages=messages, images=[solid((64, 48), (255, 0, 0)), solid((40, 30), (0, 0, 255))])


def text_prompt(text: str) -> ChatPrompt:
    return ChatPrompt(messages=[{"role": "user", "content": [{"type": "text", "text": text}]}])


def decode_data_url(url: str) -> Image.Image:
    header, payload = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    image.load()
    return image


def fast_backend(server: StubOpenAIServer, **kwargs) -> OpenAIBackend:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("backoff", 0.001)
    kwargs.setdefault("max_backoff", 0.01)
    return OpenAIBackend(server.base_url, server.model, **kwargs)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server():
    with StubOpenAIServer(reply="Image 1 is better.") as stub:
        yield stub


# ----------------------------------------------------------------------------------------------------------------
# message conversion


def test_qwen_image_pair_becomes_two_image_parts_then_text():
    prompt = qwen_pair("caption: a red square")
    [message] = to_openai_messages(prompt)
    assert message["role"] == "user"
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[2]["text"] == "caption: a red square"
    first, second = (decode_data_url(p["image_url"]["url"]) for p in parts[:2])
    assert first.format == second.format == "JPEG"
    assert first.size == (64, 48) and second.size == (40, 30)  # order kept
    assert first.convert("RGB").getpixel((32, 24))[0] > 200  # the red one first
    assert second.convert("RGB").getpixel((20, 15))[2] > 200


def test_png_format_option():
    [message] = to_openai_messages(qwen_pair(), image_format="PNG")
    url = message["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")


def test_video_becomes_consecutive_frame_parts():
    frames = np.zeros((5, 24, 32, 3), dtype=np.uint8)
    frames[:, :, :, 1] = 200
    content = [{"type": "video"}, {"type": "video"}, {"type": "text", "text": "Which video is better?"}]
    prompt = ChatPrompt(
        messages=[{"role": "user", "content": content}], videos=[Video(frames=frames), Video(frames=frames[:3])]
    )
    [message] = to_openai_messages(prompt)
    kinds = [p["type"] for p in message["content"]]
    assert kinds == ["image_url"] * 8 + ["text"]
    assert decode_data_url(message["content"][0]["image_url"]["url"]).size == (32, 24)


def test_video_as_video_url_uses_vllm_jpeg_frame_list():
    frames = np.full((4, 16, 16, 3), 128, dtype=np.uint8)
    prompt = ChatPrompt(
        messages=[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]}],
        videos=[Video(frames=frames)],
    )
    [message] = to_openai_messages(prompt, video_as="video_url")
    video_part, text_part = message["content"]
    assert video_part["type"] == "video_url" and text_part == {"type": "text", "text": "q"}
    header, *payloads = video_part["video_url"]["url"].split(",")
    assert header == "data:video/jpeg;base64"
    assert len(payloads) == 4
    assert Image.open(io.BytesIO(base64.b64decode(payloads[0]))).size == (16, 16)


def test_llava_form_strips_image_tokens_and_sends_images_first():
    a, b = solid((20, 10), (255, 0, 0)), solid((30, 10), (0, 255, 0))
    prompt = render_prompt("T-IG-PAIR-LLAVA", family="llava", images=[a, b], prompt="a cat")
    system, user = to_openai_messages(prompt)
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    parts = user["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert [decode_data_url(p["image_url"]["url"]).size for p in parts[:2]] == [(20, 10), (30, 10)]
    text = parts[2]["text"]
    assert "<image>" not in text
    assert text.startswith("You are given a text caption")  # "<image>\n <image>\n" fully removed
    assert "a cat" in text


def test_llava_form_per_frame_tokens():
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    text = "<image>\n<image>\n<image>\nScore this video."
    prompt = ChatPrompt(
        messages=[{"role": "user", "content": text}],
        images=[Image.fromarray(f) for f in frames],
        family="llava",
    )
    [user] = to_openai_messages(prompt)
    assert [p["type"] for p in user["content"]] == ["image_url"] * 3 + ["text"]
    assert user["content"][-1]["text"] == "Score this video."


def test_system_and_assistant_roles_kept():
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be strict."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Rate it."}]},
        {"role": "assistant", "content": "Final Score: 3"},
        {"role": "user", "content": "Why?"},
    ]
    out = to_openai_messages(ChatPrompt(messages=messages, images=[solid((8, 8), (0, 0, 0))]))
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"] == "Be strict."
    assert out[2]["content"] == "Final Score: 3" and out[3]["content"] == "Why?"


def test_placeholder_media_mismatch_is_rejected():
    prompt = qwen_pair()
    prompt.images = prompt.images[:1]
    with pytest.raises(ValueError, match="more image placeholders"):
        to_openai_messages(prompt)
    prompt = qwen_pair()
    prompt.images.append(solid((4, 4), (0, 0, 0)))
    with pytest.raises(ValueError, match="carries 3 image"):
        to_openai_messages(prompt)


# ----------------------------------------------------------------------------------------------------------------
# requests


def test_request_fields_and_answer(server):
    backend = fast_backend(server, api_key="sekret")
    assert isinstance(backend, Backend)
    [gen] = backend.generate([qwen_pair()], GenerationConfig(max_new_tokens=77))
    assert gen.ok and gen.text == "Image 1 is better." and gen.error is None
    assert gen.num_prompt_tokens == 11 and gen.num_generated_tokens == 3
    assert gen.meta["finish_reason"] == "stop" and gen.meta["attempts"] == 1
    [body] = server.requests
    assert body["model"] == "UnifiedReward"
    assert body["max_tokens"] == 77
    assert "temperature" in body and body["temperature"] == 0  # greedy is explicit
    assert body["top_p"] == 1.0 and "seed" not in body and "do_sample" not in body
    assert count_parts(body) == 2
    assert server.headers[0]["Authorization"] == "Bearer sekret"


def test_sampling_seed_and_extra_body(server):
    backend = fast_backend(server, extra_body={"top_k": 1, "chat_template_kwargs": {"enable_thinking": False}})
    backend.generate([text_prompt("hi")], GenerationConfig(max_new_tokens=8, temperature=0.7, top_p=0.9, seed=3))
    [body] = server.requests
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["seed"] == 3
    assert body["top_k"] == 1 and body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_every_decoding_setting_is_sent(server):
    """The server's defaults (vLLM: the checkpoint's generation_config) must never decide how we decode."""
    fast_backend(server).generate([text_prompt("x")], GREEDY)
    config = GenerationConfig(max_new_tokens=9, temperature=0.8, top_p=0.5, top_k=7, repetition_penalty=1.1)
    fast_backend(server).generate([text_prompt("y")], config)
    greedy, sampled = server.requests
    assert {k: greedy[k] for k in ("temperature", "top_p", "top_k", "repetition_penalty", "n")} == {
        "temperature": 0.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "n": 1}  # fmt: skip
    assert {k: sampled[k] for k in ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty")} == {
        "max_tokens": 9, "temperature": 0.8, "top_p": 0.5, "top_k": 7, "repetition_penalty": 1.1}  # fmt: skip


def test_sample_sends_n_and_per_request_seeds(server):
    def reply(body, index):
        text = f"{request_text(body)}-s{body['seed']}"
        choices = [{"index": j, "message": {"role": "assistant", "content": f"{text}-{j}"}, "finish_reason": "stop"}
                   for j in reversed(range(body["n"]))]  # fmt: skip
        return Raw({"id": f"c{index}", "choices": choices})

    server.reply = reply
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, n=3, seed=99)
    out = fast_backend(server).sample([text_prompt("a"), text_prompt("b")], config, seeds=[5, 6])
    assert [[g.text for g in row] for row in out] == [[f"a-s5-{j}" for j in range(3)], [f"b-s6-{j}" for j in range(3)]]
    assert all(g.meta["seed"] == seed for row, seed in zip(out, (5, 6), strict=True) for g in row)
    assert sorted((b["n"], b["seed"]) for b in server.requests) == [(3, 5), (3, 6)]
    # without per-request seeds, config.seed is every request's seed
    fast_backend(server).sample([text_prompt("c")], config)
    assert server.requests[-1]["seed"] == 99
    with pytest.raises(ValueError, match="sample"):
        fast_backend(server).generate([text_prompt("c")], config)
    with pytest.raises(ValueError, match="seeds"):
        fast_backend(server).sample([text_prompt("c")], config, seeds=[1, 2])


def test_sample_with_too_few_choices_fails_the_request(server):
    server.script(Raw({"choices": [{"index": 0, "message": {"content": "only one"}}]}))
    [row] = fast_backend(server).sample([text_prompt("x")], GenerationConfig(temperature=1.0, n=2))
    assert len(row) == 2 and all(not g.ok and "1 choices for n=2" in g.error for g in row)


def test_api_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    fast_backend(server).generate([text_prompt("x")], GREEDY)
    monkeypatch.delenv("OPENAI_API_KEY")
    fast_backend(server).generate([text_prompt("x")], GREEDY)
    assert [h["Authorization"] for h in server.headers] == ["Bearer from-env", "Bearer EMPTY"]


def test_batch_in_order_with_bounded_concurrency():
    """Exactly ``max_concurrency`` requests are in flight at once: the first four are held at a barrier until all
    four have arrived (so at least four run together, no sleeps), and the stub stops counting a request before it
    answers (so the client's next request cannot be counted with it)."""
    gate = threading.Barrier(4)

    def reply(body, index):
        item = int(re.search(r"item-(\d+)", request_text(body)).group(1))
        answer = Reply(f"answer-{item}")
        return Gate(gate, answer) if index < 4 else answer

    with StubOpenAIServer(reply=reply) as stub:
        backend = fast_backend(stub, max_concurrency=4)
        gens = backend.generate([text_prompt(f"item-{i}") for i in range(20)], GREEDY)
    assert [g.text for g in gens] == [f"answer-{i}" for i in range(20)]
    assert len(stub.requests) == 20
    assert stub.max_in_flight == 4


def test_in_flight_count_never_exceeds_one_sequential_client():
    """The stub's count is bounded by the client: one worker sending 30 requests back to back is never counted
    twice (the old stub counted a request until after its response was written, racing the next request)."""
    with StubOpenAIServer(reply="ok") as stub:
        fast_backend(stub, max_concurrency=1).generate([text_prompt(str(i)) for i in range(30)], GREEDY)
    assert len(stub.requests) == 30 and stub.max_in_flight == 1


def test_empty_batch(server):
    assert fast_backend(server).generate([], GREEDY) == []
    assert server.requests == []


def test_invalid_prompt_fails_only_its_item(server):
    bad = qwen_pair()
    bad.images = []
    gens = fast_backend(server).generate([text_prompt("ok"), bad], GREEDY)
    assert gens[0].ok
    assert gens[1].text is None and gens[1].error.startswith("invalid prompt")
    assert len(server.requests) == 1


def test_length_finish_reason_is_kept(server, caplog):
    server.script(Reply("Image 1 is", finish_reason="length"))
    with caplog.at_level(logging.WARNING, logger="unifiedreward.judge.openai_backend"):
        [gen] = fast_backend(server).generate([text_prompt("x")], GREEDY)
    assert gen.ok and gen.meta["finish_reason"] == "length"
    assert "cut at max_tokens" in caplog.text


# ----------------------------------------------------------------------------------------------------------------
# failures and retries


@pytest.mark.parametrize("status", [503, 429])
def test_transient_status_is_retried(server, status, caplog):
    server.script(Fail(status, "busy"), Fail(status, "busy"), "Image 2 is better.")
    with caplog.at_level(logging.WARNING, logger="unifiedreward.judge.openai_backend"):
        [gen] = fast_backend(server, max_retries=3).generate([qwen_pair()], GREEDY)
    assert gen.ok and gen.text == "Image 2 is better."
    assert gen.meta["attempts"] == 3
    assert len(server.requests) == 3
    assert caplog.text.count("retry") == 2 and f"HTTP {status}" in caplog.text


def test_retries_exhausted(server):
    server.script(*[Fail(500, "boom")] * 3)
    [gen] = fast_backend(server, max_retries=2).generate([text_prompt("x")], GREEDY)
    assert gen.text is None
    assert "HTTP 500" in gen.error and "boom" in gen.error and "3 attempts" in gen.error
    assert gen.meta["status"] == 500 and len(server.requests) == 3


@pytest.mark.parametrize("status,message", [(400, "too many images"), (401, "bad key"), (404, "model not found")])
def test_client_errors_are_not_retried(server, status, message):
    server.script(Fail(status, message))
    [gen] = fast_backend(server, max_retries=3).generate([text_prompt("x")], GREEDY)
    assert gen.text is None
    assert f"HTTP {status}" in gen.error and message in gen.error
    assert gen.meta == {"attempts": 1, "status": status}
    assert len(server.requests) == 1


def test_retry_after_header_is_honoured(server):
    server.script(Fail(429, "slow down", retry_after="0"), "ok")
    [gen] = fast_backend(server).generate([text_prompt("x")], GREEDY)
    assert gen.ok and len(server.requests) == 2


def test_timeout_is_retried_then_reported(server):
    # the stub holds each request far beyond the client's timeout (released when the server closes)
    server.script(Delay(60.0), Delay(60.0))
    [gen] = fast_backend(server, timeout=0.5, max_retries=1).generate([text_prompt("x")], GREEDY)
    assert gen.text is None
    assert "timed out" in gen.error and "2 attempts" in gen.error
    assert len(server.requests) == 2


def test_timeout_then_success(server):
    # a generous timeout for the immediate second answer, so a loaded machine cannot make it time out too
    server.script(Delay(60.0), "late but fine")
    [gen] = fast_backend(server, timeout=1.5, max_retries=1).generate([text_prompt("x")], GREEDY)
    assert gen.ok and gen.text == "late but fine" and gen.meta["attempts"] == 2


MALFORMED = {
    "not json": Raw("<html>oops</html>", content_type="text/html"),
    "empty object": Raw({}),
    "empty choices": Raw({"choices": []}),
    "null content": Raw({"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]}),
    "missing content": Raw({"choices": [{"message": {"role": "assistant"}}]}),
    "non-string content": Raw({"choices": [{"message": {"content": 5}}]}),
    "no message": Raw({"choices": [{"text": "legacy"}]}),
    "json list": Raw([1, 2]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_response_is_an_error(server, case):
    server.script(MALFORMED[case])
    [gen] = fast_backend(server).generate([text_prompt("x")], GREEDY)
    assert gen.text is None and not gen.ok
    assert gen.error.startswith("malformed response")
    assert len(server.requests) == 1  # not retried


def test_connection_refused_is_retried_then_reported():
    backend = OpenAIBackend(f"http://127.0.0.1:{closed_port()}/v1", "UnifiedReward", max_retries=2, backoff=0.001)
    [gen] = backend.generate([text_prompt("x")], GREEDY)
    assert gen.text is None
    assert "connection failed" in gen.error and "3 attempts" in gen.error
    assert gen.meta["attempts"] == 3


def test_mixed_batch_keeps_order(server):
    def reply(body, index):
        text = request_text(body)
        return Fail(400, "rejected") if "bad" in text else Reply(text.upper())

    server.reply = reply
    gens = fast_backend(server, max_concurrency=3).generate([text_prompt(t) for t in ("a", "bad", "c")], GREEDY)
    assert [g.text for g in gens] == ["A", None, "C"]
    assert "HTTP 400" in gens[1].error


# ----------------------------------------------------------------------------------------------------------------
# health check and construction


def test_health_check_ok(server):
    entry = fast_backend(server).health_check()
    assert entry["id"] == "UnifiedReward" and entry["max_model_len"] == 32768


def test_health_check_wrong_model():
    with StubOpenAIServer(models=["Qwen3-VL-8B", "other"]) as stub:
        backend = OpenAIBackend(stub.base_url, "UnifiedReward")
        with pytest.raises(UnifiedRewardError, match="does not serve model 'UnifiedReward'.*'Qwen3-VL-8B', 'other'"):
            backend.health_check()


def test_health_check_unreachable():
    backend = OpenAIBackend(f"http://127.0.0.1:{closed_port()}/v1", "UnifiedReward", timeout=2)
    with pytest.raises(UnifiedRewardError, match="connection failed"):
        backend.health_check()


def test_health_check_hints_at_v1(server):
    backend = OpenAIBackend(server.base_url[: -len("/v1")], "UnifiedReward")
    with pytest.raises(UnifiedRewardError, match="HTTP 404.*did you mean"):
        backend.health_check()


@pytest.mark.parametrize(
    "kwargs",
    [{"max_concurrency": 0}, {"max_retries": -1}, {"timeout": 0}, {"video_as": "mp4"}, {"backoff": -1}],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", **kwargs)
    with pytest.raises(ValueError):
        OpenAIBackend("localhost:8000/v1", "m")


def test_backoff_is_exponential_jittered_and_capped():
    backend = OpenAIBackend("http://127.0.0.1:1/v1", "m", backoff=1.0, max_backoff=5.0)
    for retry, (low, high) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0), (2.5, 5.0)], start=1):
        assert low <= backend._delay(retry, None) <= high
    assert backend._delay(1, 3.0) >= 3.0
    assert backend._delay(1, 60.0) <= 5.0
