"""Any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint, with tool calling.

httpx's failures and the endpoint's answers are translated here, once, into
``ProviderError`` reasons: timeout → ``provider_timeout``; connection, DNS or TLS failure →
``provider_unreachable``; 401/403 → ``provider_refused``; any other non-2xx →
``provider_http_error``; a body that is not the documented shape → ``provider_bad_response``.
The API key goes in the ``Authorization`` header only, never into an error message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from core.agent.model import (
    Message,
    ModelReply,
    ProviderError,
    ProviderErrorReason,
    ToolCall,
    ToolSpec,
    Usage,
)

_BODY_EXCERPT = 200


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        url = httpx.URL(base_url)
        # Named in error messages: without any userinfo the URL may carry.
        self._where = f"the model endpoint {url.copy_with(userinfo=b'')}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelReply:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [wire_message(message) for message in messages],
        }
        if tools:
            body["tools"] = [wire_tool(spec) for spec in tools]
        return parse_reply(await self._post(body))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, body: dict[str, Any]) -> Any:
        """The decoded response body of one request, or ``ProviderError``."""
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            raise self._error("provider_timeout", "no answer in time") from exc
        except httpx.TransportError as exc:
            raise self._error("provider_unreachable", f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in (401, 403):
            detail = f"refused the request ({status}): {_error_message(response)}"
            raise self._error("provider_refused", detail, status)
        if not response.is_success:
            detail = f"answered {status}: {_error_message(response)}"
            raise self._error("provider_http_error", detail, status)
        try:
            return response.json()
        except ValueError as exc:
            raise self._error("provider_bad_response", "answered with something not JSON") from exc

    def _error(
        self, reason: ProviderErrorReason, detail: str, status_code: int | None = None
    ) -> ProviderError:
        message = f"{self._where}: {detail}"
        if self._api_key:  # Some servers echo what they were sent.
            message = message.replace(self._api_key, "***")
        return ProviderError(reason, message, status_code=status_code)


def wire_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return wire


def _bad(detail: str) -> ProviderError:
    return ProviderError("provider_bad_response", f"malformed chat completion: {detail}")


def parse_reply(payload: Any) -> ModelReply:
    """A chat-completions response body as a ``ModelReply``; ``ProviderError`` if malformed."""
    if not isinstance(payload, dict):
        raise _bad("the body is not an object")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _bad("no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise _bad("the choice has no message")
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise _bad("the message content is not a string")
    calls = tuple(_tool_call(raw) for raw in message.get("tool_calls") or ())
    usage = _usage(payload.get("usage"))
    if calls:
        names = ", ".join(dict.fromkeys(call.name for call in calls))
        thinking = f"The model chose to call {names}."
    else:
        thinking = "The model answered directly."
    return ModelReply(text=text, tool_calls=calls, usage=usage, thinking=thinking)


def _tool_call(raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
        raise _bad("a tool call has no function")
    call_id, function = raw.get("id"), raw["function"]
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _bad("a tool call lacks its id or name")
    if arguments is None or arguments == "":
        return ToolCall(call_id, name, {})
    if isinstance(arguments, dict):  # Some compatible servers send an object, not a string.
        return ToolCall(call_id, name, arguments)
    if not isinstance(arguments, str):
        raise _bad(f"the arguments of {name} are not a JSON string")
    try:
        parsed = json.loads(arguments)
    except ValueError as exc:
        raise _bad(f"the arguments of {name} are not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise _bad(f"the arguments of {name} are not a JSON object")
    return ToolCall(call_id, name, parsed)


def _usage(raw: Any) -> Usage:
    # Some OpenAI-compatible servers omit usage entirely; that is zero, not an error.
    if raw is None:
        return Usage(0, 0)
    if not isinstance(raw, dict):
        raise _bad("usage is not an object")
    prompt, completion = raw.get("prompt_tokens", 0), raw.get("completion_tokens", 0)
    for value in (prompt, completion):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad("usage token counts are not whole numbers")
    return Usage(prompt, completion)


def _error_message(response: httpx.Response) -> str:
    """The endpoint's own error message where it gives one, else a short body excerpt."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_BODY_EXCERPT] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str) and message:
            return message[:_BODY_EXCERPT]
    return json.dumps(body)[:_BODY_EXCERPT]
