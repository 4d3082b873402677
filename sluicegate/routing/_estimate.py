"""Prompt estimates and output limits, made before any token is spent.

No tokenizer runs in the request path, so the prompt estimate is deliberately high: a
quarter more tokens than the usual four characters per token (``ceil(chars / 3)``) plus a
per-message allowance for the chat template. With ``strictCeiling`` the estimate is the
UTF-8 byte count plus a larger per-message allowance: a byte-level BPE tokenizer never
emits more tokens than the bytes it reads, so that bound holds for every such model.

Content that cannot be bounded before the call (an unknown content part type, audio,
files, or images under ``strictCeiling``) raises CannotEstimate, so a request is never
admitted without a reservation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

# Tokens a chat template adds around each message (role markers, separators), and once
# per request to prime the reply. OpenAI documents 3 to 4 per message for its models;
# the strict allowance leaves room for templates with longer markers.
MESSAGE_OVERHEAD_TOKENS = 4
STRICT_MESSAGE_OVERHEAD_TOKENS = 16
REPLY_PRIMING_TOKENS = 3

# An image part, outside strict mode. OpenAI bills a high-detail image of the largest size
# its vision models accept at under 1,600 tokens; other providers bill less.
IMAGE_PART_TOKENS = 1600

_TEXT_PART_TYPES = frozenset({"text", "refusal"})


class CannotEstimate(ValueError):
    """Content whose token count cannot be bounded before the call."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclasses.dataclass(frozen=True)
class PromptEstimate:
    """Estimated prompt tokens and the number of characters they were counted from."""

    tokens: int
    chars: int


def estimate_prompt(
    *,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Any] | None = None,
    strict: bool = False,
) -> PromptEstimate:
    """Estimate the prompt tokens of an OpenAI chat request.

    Counts every message's text, names, tool calls and tool schemas. Raises
    CannotEstimate for content parts that cannot be bounded.
    """
    overhead = STRICT_MESSAGE_OVERHEAD_TOKENS if strict else MESSAGE_OVERHEAD_TOKENS
    tokens = REPLY_PRIMING_TOKENS
    chars = 0
    for index, message in enumerate(messages):
        texts, images = _message_texts(message, index=index, strict=strict)
        for text in texts:
            chars += len(text)
            tokens += _text_tokens(text, strict=strict)
        tokens += overhead + images * IMAGE_PART_TOKENS
    if tools:
        schema = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
        chars += len(schema)
        tokens += _text_tokens(schema, strict=strict) + overhead
    return PromptEstimate(tokens=tokens, chars=chars)


def _text_tokens(text: str, *, strict: bool) -> int:
    if strict:
        return len(text.encode("utf-8"))
    return math.ceil(len(text) / 3)


def _message_texts(message: Mapping[str, Any], *, index: int, strict: bool) -> tuple[list[str], int]:
    texts: list[str] = []
    images = 0
    for field in ("role", "name", "tool_call_id"):
        value = message.get(field)
        if isinstance(value, str):
            texts.append(value)

    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part_index, part in enumerate(content):
            param = f"messages[{index}].content[{part_index}]"
            part_type = part.get("type") if isinstance(part, Mapping) else None
            if part_type in _TEXT_PART_TYPES:
                texts.append(str(part.get(part_type, "")))
            elif part_type == "image_url" and not strict:
                images += 1
            elif part_type == "image_url":
                raise CannotEstimate(
                    f"{param} is an image, whose token count cannot be bounded before the call under strictCeiling: "
                    "send text only, or turn strictCeiling off in the RoutePolicy",
                    param=param,
                )
            else:
                raise CannotEstimate(
                    f"{param} has content part type {part_type!r}, which sluicegate cannot price before the call: "
                    "send text or image_url parts",
                    param=param,
                )

    for call in message.get("tool_calls") or ():
        texts.append(json.dumps(call, separators=(",", ":"), ensure_ascii=False))
    function_call = message.get("function_call")
    if function_call is not None:
        texts.append(json.dumps(function_call, separators=(",", ":"), ensure_ascii=False))
    return texts, images
