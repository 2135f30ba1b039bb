import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.agent.model import Message, ProviderError, ToolCall, Usage
from core.agent.providers import build_provider
from core.agent.providers.openai import OpenAIProvider
from core.agent.tools.base import ToolContext
from core.agent.tools.registry import default_registry
from core.settings import load_settings
from tests.core.agent.fakes import FakeUsageSource, converse

BASE_URL = "https://models.example.test/v1"
API_KEY = "sk-test-0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


def completion(message: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> dict:
    """A chat-completions body as OpenAI's API returns it."""
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def tool_call_message(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
        "refusal": None,
    }


def provider_for(handler: Handler) -> OpenAIProvider:
    return OpenAIProvider(
        BASE_URL, API_KEY, "gpt-4o-mini", timeout_s=5, transport=httpx.MockTransport(handler)
    )


async def reply_to(handler: Handler, text: str = "hello"):
    provider = provider_for(handler)
    try:
        return await provider.complete([Message("user", text)], default_registry().specs())
    finally:
        await provider.aclose()


async def test_a_tool_call_round_trip_sends_results_back_and_returns_the_answer():
    requests: list[dict[str, Any]] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        assert request.url == f"{BASE_URL}/chat/completions"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        body = json.loads(request.content)
        requests.append(body)
        if len(requests) == 1:
            message = tool_call_message("call_abc123", "calculator", '{"expression": "6 * 7"}')
            return httpx.Response(200, json=completion(message, 182, 19))
        answer = {"role": "assistant", "content": "6 × 7 = 42.", "refusal": None}  # noqa: RUF001
        return httpx.Response(200, json=completion(answer, 221, 9))

    provider = provider_for(endpoint)
    ctx = ToolContext("alice", FakeUsageSource())
    transcript = await converse(provider, default_registry(), ctx, "what is 6 * 7?")
    await provider.aclose()

    assert transcript.calls == [ToolCall("call_abc123", "calculator", {"expression": "6 * 7"})]
    assert transcript.text == "6 × 7 = 42."  # noqa: RUF001
    assert [reply.usage for reply in transcript.replies] == [Usage(182, 19), Usage(221, 9)]
    assert transcript.replies[0].thinking == "The model chose to call calculator."
    first, second = requests
    assert first["model"] == "gpt-4o-mini"
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        "calculator",
        "token_cost",
        "usage_report",
    ]
    assert first["tools"][0]["type"] == "function"
    assert "expression" in first["tools"][0]["function"]["parameters"]["properties"]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assistant, tool = second["messages"][2:]
    assert assistant["tool_calls"][0]["id"] == "call_abc123"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "expression": "6 * 7"
    }
    content = json.dumps({"expression": "6 * 7", "result": 42})
    assert tool == {"role": "tool", "tool_call_id": "call_abc123", "content": content}


async def test_a_direct_answer_carries_its_text_and_usage():
    message = {"role": "assistant", "content": "Hi! How can I help?"}
    reply = await reply_to(lambda _: httpx.Response(200, json=completion(message, 12, 7)))
    assert (reply.text, reply.tool_calls, reply.usage) == ("Hi! How can I help?", (), Usage(12, 7))
    assert reply.thinking == "The model answered directly."


async def test_a_server_that_omits_usage_counts_as_zero_tokens():
    body = completion({"role": "assistant", "content": "ok"}, 0, 0)
    del body["usage"]
    reply = await reply_to(lambda _: httpx.Response(200, json=body))
    assert reply.usage == Usage(0, 0)


async def test_several_tool_calls_in_one_reply_are_all_parsed():
    message = tool_call_message("call_1", "calculator", '{"expression": "1+1"}')
    message["tool_calls"].append(
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "usage_report", "arguments": "{}"},
        }
    )
    reply = await reply_to(lambda _: httpx.Response(200, json=completion(message, 50, 30)))
    assert [call.call_id for call in reply.tool_calls] == ["call_1", "call_2"]
    assert reply.tool_calls[1].arguments == {}


async def test_no_authorization_header_is_sent_without_a_key():
    seen: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion({"role": "assistant", "content": "ok"}, 1, 1))

    provider = OpenAIProvider(
        "http://localhost:11434/v1/", None, "llama3", 5, transport=httpx.MockTransport(endpoint)
    )
    await provider.complete([Message("user", "hi")], [])
    await provider.aclose()
    assert "authorization" not in seen[0].headers
    assert seen[0].url == "http://localhost:11434/v1/chat/completions"
    assert "tools" not in json.loads(seen[0].content)


def raising(exc: Exception) -> Handler:
    def endpoint(request: httpx.Request) -> httpx.Response:
        raise exc

    return endpoint


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


@pytest.mark.parametrize(
    ("handler", "reason", "detail"),
    [
        (raising(httpx.ReadTimeout("timed out")), "provider_timeout", "no answer in time"),
        (raising(httpx.ConnectTimeout("timed out")), "provider_timeout", "no answer in time"),
        (raising(httpx.ConnectError("refused")), "provider_unreachable", "ConnectError"),
        (raising(httpx.RemoteProtocolError("closed")), "provider_unreachable", "closed"),
        (
            lambda _: httpx.Response(401, json=error_body("Incorrect API key provided")),
            "provider_refused",
            ": refused the request (401): Incorrect API key provided",
        ),
        (
            lambda _: httpx.Response(403, json=error_body("Project lacks access")),
            "provider_refused",
            "(403)",
        ),
        (
            lambda _: httpx.Response(429, json=error_body("Rate limit reached")),
            "provider_http_error",
            ": answered 429: Rate limit reached",
        ),
        (
            lambda _: httpx.Response(502, text="<html>Bad gateway</html>"),
            "provider_http_error",
            ": answered 502: <html>Bad gateway</html>",
        ),
        (lambda _: httpx.Response(200, text="not json"), "provider_bad_response", "not JSON"),
        (lambda _: httpx.Response(200, json=[1, 2]), "provider_bad_response", "not an object"),
        (
            lambda _: httpx.Response(200, json={"choices": []}),
            "provider_bad_response",
            "no choices",
        ),
        (
            lambda _: httpx.Response(200, json={"choices": [{"index": 0}]}),
            "provider_bad_response",
            "no message",
        ),
        (
            lambda _: httpx.Response(
                200, json=completion(tool_call_message("c1", "calculator", "{not json"), 1, 1)
            ),
            "provider_bad_response",
            "arguments of calculator are not valid JSON",
        ),
        (
            lambda _: httpx.Response(
                200, json=completion(tool_call_message("c1", "calculator", "[1]"), 1, 1)
            ),
            "provider_bad_response",
            "not a JSON object",
        ),
        (
            lambda _: httpx.Response(
                200, json=completion(tool_call_message("", "calculator", "{}"), 1, 1)
            ),
            "provider_bad_response",
            "lacks its id or name",
        ),
        (
            lambda _: httpx.Response(
                200,
                json={
                    **completion({"role": "assistant", "content": "x"}, 1, 1),
                    "usage": {"prompt_tokens": "12", "completion_tokens": 1},
                },
            ),
            "provider_bad_response",
            "usage token counts",
        ),
    ],
)
async def test_failures_map_to_provider_error_reasons(handler, reason, detail):
    with pytest.raises(ProviderError) as caught:
        await reply_to(handler)
    assert caught.value.reason == reason
    assert detail in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_credentials_never_reach_an_error_message():
    def echoing(_: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=error_body(f"Incorrect API key provided: {API_KEY}"))

    provider = OpenAIProvider(
        "https://vigil:hunter2@models.example.test/v1",
        API_KEY,
        "gpt-4o-mini",
        5,
        transport=httpx.MockTransport(echoing),
    )
    with pytest.raises(ProviderError) as caught:
        await provider.complete([Message("user", "hi")], [])
    await provider.aclose()
    message = str(caught.value)
    assert "Incorrect API key provided: ***" in message
    assert "https://models.example.test/v1" in message
    assert API_KEY not in message and "hunter2" not in message


async def test_an_http_error_keeps_its_status_code():
    with pytest.raises(ProviderError) as caught:
        await reply_to(lambda _: httpx.Response(503, json=error_body("overloaded")))
    assert caught.value.status_code == 503


async def test_a_closed_port_is_unreachable_over_a_real_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider(f"http://127.0.0.1:{port}/v1", API_KEY, "gpt-4o-mini", 5)
    with pytest.raises(ProviderError) as caught:
        await provider.complete([Message("user", "hi")], [])
    await provider.aclose()
    assert caught.value.reason == "provider_unreachable"


async def test_a_server_that_never_answers_times_out_over_a_real_connection():
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # Never answers; returns when the client hangs up.
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = OpenAIProvider(f"http://127.0.0.1:{port}/v1", API_KEY, "gpt-4o-mini", 0.2)
    async with server:
        with pytest.raises(ProviderError) as caught:
            await provider.complete([Message("user", "hi")], [])
        await provider.aclose()
        await asyncio.wait_for(hung_up.wait(), 5)
    assert caught.value.reason == "provider_timeout"


async def test_the_settings_choose_the_openai_provider():
    settings = load_settings(
        provider="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_api_key="sk-x",
        openai_model="gpt-4.1-mini",
    )
    provider = build_provider(settings)
    assert isinstance(provider, OpenAIProvider)
    assert (provider.name, provider.model) == ("openai", "gpt-4.1-mini")
    await provider.aclose()
