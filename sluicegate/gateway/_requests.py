"""Parsing and validating OpenAI chat completion requests before anything is reserved.

The gateway forwards the client's body almost unchanged, so it keeps the raw JSON object
and checks only what it relies on: the model, the messages, streaming flags, output limits
and sampling values. Each problem is a 400 that names the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sluicegate.gateway import _errors

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_N = 128


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """A validated chat request; ``raw`` is the client's JSON object, forwarded upstream."""

    raw: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    max_tokens_field: str  # "max_tokens" or "max_completion_tokens", as the client sent it
    n: int
    temperature: float | None
    tools: list[Any] | None


def parse_chat_request(body: bytes) -> ChatRequest:
    """Parse and validate a request body; raise InvalidRequest naming the problem."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _errors.InvalidRequest(
            f"the request body is not valid JSON ({error}): send a JSON object such as "
            '{"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}'
        ) from None
    if not isinstance(raw, dict):
        raise _errors.InvalidRequest(f"the request body must be a JSON object, got {type(raw).__name__}")

    model = raw.get("model")
    if model is None:
        raise _errors.InvalidRequest("'model' is missing: send auto, local, cloud or a route's model name", param="model")
    if not isinstance(model, str) or not model:
        raise _errors.InvalidRequest(
            f"'model' must be a non-empty string, got {model!r}: use auto, local, cloud or a route's model name",
            param="model",
        )
    messages = _check_messages(raw.get("messages"))
    stream = _optional_bool(raw, "stream") or False
    include_usage = _check_stream_options(raw, stream=stream)
    max_tokens = _check_max_tokens(raw)
    n = _optional_int(raw, "n", minimum=1, maximum=MAX_N)
    temperature = _optional_number(raw, "temperature", minimum=0, maximum=2)
    tools = raw.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _errors.InvalidRequest(f"'tools' must be a list of tool definitions, got {type(tools).__name__}", param="tools")
    return ChatRequest(
        raw=raw,
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        max_tokens_field="max_completion_tokens" if raw.get("max_tokens") is None and max_tokens is not None else "max_tokens",
        n=n if n is not None else 1,
        temperature=temperature,
        tools=tools,
    )


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise _errors.InvalidRequest("'messages' is missing: send at least one message, e.g. [{\"role\": \"user\", \"content\": \"Hello\"}]", param="messages")
    if not isinstance(messages, list):
        raise _errors.InvalidRequest(f"'messages' must be a list of message objects, got {type(messages).__name__}", param="messages")
    if not messages:
        raise _errors.InvalidRequest("'messages' is empty: send at least one message", param="messages")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _errors.InvalidRequest(f"{param} must be an object with 'role' and 'content', got {type(message).__name__}", param=param)
        role = message.get("role")
        if role not in _ROLES:
            raise _errors.InvalidRequest(
                f"{param}.role is {role!r}: use one of {', '.join(sorted(_ROLES))}", param=f"{param}.role"
            )
        content = message.get("content")
        if content is None and role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            continue
        if not isinstance(content, (str, list)):
            raise _errors.InvalidRequest(
                f"{param}.content must be a string or a list of content parts, got {type(content).__name__}",
                param=f"{param}.content",
            )
    return messages


def _check_stream_options(raw: dict[str, Any], *, stream: bool) -> bool:
    options = raw.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise _errors.InvalidRequest("'stream_options' is only allowed when 'stream' is true", param="stream_options")
    if not isinstance(options, dict):
        raise _errors.InvalidRequest(f"'stream_options' must be an object, got {type(options).__name__}", param="stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise _errors.InvalidRequest(
            f"'stream_options.include_usage' must be true or false, got {include!r}", param="stream_options.include_usage"
        )
    return include


def _check_max_tokens(raw: dict[str, Any]) -> int | None:
    max_tokens = _optional_int(raw, "max_tokens", minimum=1)
    max_completion = _optional_int(raw, "max_completion_tokens", minimum=1)
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise _errors.InvalidRequest(
            f"'max_tokens' ({max_tokens}) and 'max_completion_tokens' ({max_completion}) differ: they mean the same, so send one",
            param="max_tokens",
        )
    return max_tokens if max_tokens is not None else max_completion


def _optional_bool(raw: dict[str, Any], name: str) -> bool | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, bool):
        raise _errors.InvalidRequest(f"'{name}' must be true or false, got {value!r}", param=name)
    return value


def _optional_int(raw: dict[str, Any], name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _errors.InvalidRequest(f"'{name}' must be an integer, got {value!r}", param=name)
    if value < minimum or (maximum is not None and value > maximum):
        limit = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise _errors.InvalidRequest(f"'{name}' is {value}: it must be {limit}", param=name)
    return value


def _optional_number(raw: dict[str, Any], name: str, *, minimum: float, maximum: float) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _errors.InvalidRequest(f"'{name}' must be a number, got {value!r}", param=name)
    if not minimum <= value <= maximum:
        raise _errors.InvalidRequest(f"'{name}' is {value}: it must be between {minimum} and {maximum}", param=name)
    return float(value)
