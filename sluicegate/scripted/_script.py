"""What a scripted upstream does for one request: answer, fail, stall or cut the stream."""

from __future__ import annotations

import dataclasses
import enum


class UsageMode(str, enum.Enum):
    """When a streamed answer carries a usage object."""

    WHEN_ASKED = "when_asked"  # only if the request sets stream_options.include_usage, like OpenAI
    ALWAYS = "always"  # a usage-only chunk whether asked or not
    NEVER = "never"  # no usage at all, like some local servers
    CUMULATIVE = "cumulative"  # running totals on every chunk, the last one final


@dataclasses.dataclass(frozen=True)
class Script:
    """The behaviour of a scripted upstream for one request.

    Token counts are what the upstream reports as usage; ``chunks`` is the visible answer,
    one streamed chunk per item. ``prompt_tokens=None`` reports a quarter of the request's
    characters, like a typical tokenizer.
    """

    chunks: tuple[str, ...] = ("Hello", " from", " the", " scripted", " upstream.")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None  # None: one token per chunk
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    usage: UsageMode = UsageMode.WHEN_ASKED
    include_usage_in_response: bool = True  # non-streamed answers
    status: int = 200
    error_type: str = "server_error"
    error_code: str | None = None
    error_message: str = "scripted failure"
    delay_seconds: float = 0.0  # before the response headers
    chunk_delay_seconds: float = 0.0
    close_before_headers: bool = False  # accept the request, then drop the connection
    cut_after_chunks: int | None = None  # stream this many chunks, then drop the connection
    finish_reason: str = "stop"
    tool_calls: tuple[dict[str, object], ...] = ()

    def completion_count(self) -> int:
        """Completion tokens to report."""
        if self.completion_tokens is not None:
            return self.completion_tokens
        return len(self.chunks) + self.reasoning_tokens


def flat(*, completion_tokens: int, prompt_tokens: int = 0, **changes: object) -> Script:
    """Return a script that always reports these token counts, with one chunk per ten tokens."""
    chunk_count = max(1, min(completion_tokens // 10, 200))
    return Script(
        chunks=tuple(f"t{i} " for i in range(chunk_count)),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        **changes,  # type: ignore[arg-type]
    )
