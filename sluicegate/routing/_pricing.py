"""Price tables and exact costs in integer nano-USD.

Prices are written as USD per million tokens with at most six decimals, so one token
costs a whole number of pico-USD (1e-12 USD) per token kind. A call's cost is the exact sum
in pico-USD, rounded up once to a whole nano-USD: never a float, never rounded per
token kind.

Example: 27,147 prompt tokens of which 27,146 were cache reads, and 351 output tokens, at
$1.40 / $0.26 / $4.40 per million: 1 x 1.40 + 27,146 x 0.26 + 351 x 4.40 = 8,603.76
micro-USD, which is 8,603,760 nano-USD ($0.00860376).
"""

from __future__ import annotations

import dataclasses

from sluicegate import api

_PICO_PER_NANO = 1000


class PricingError(ValueError):
    """A price table that cannot price a call (a missing or invalid price)."""


@dataclasses.dataclass(frozen=True)
class PriceTable:
    """Prices of one route in pico-USD per token (equal to micro-USD per million tokens)."""

    input: int
    output: int
    cached_input: int
    cache_write: int

    @classmethod
    def from_price(cls, price: api.Price) -> PriceTable:
        """Build from a validated Price; cachedInput and cacheWrite default to input."""
        try:
            input_price = _pico_per_token(price.input)
            return cls(
                input=input_price,
                output=_pico_per_token(price.output),
                cached_input=_pico_per_token(price.cached_input) if price.cached_input is not None else input_price,
                cache_write=_pico_per_token(price.cache_write) if price.cache_write is not None else input_price,
            )
        except api.MoneyError as error:
            raise PricingError(str(error)) from error

    @property
    def is_free(self) -> bool:
        """True for a $0 route, whose calls never need a budget."""
        return not (self.input or self.output or self.cached_input or self.cache_write)

    @property
    def max_prompt_price(self) -> int:
        """The highest price any prompt token can have: input or cache write."""
        return max(self.input, self.cache_write, self.cached_input)


def _pico_per_token(usd_per_million: str) -> int:
    # USD per million tokens with six decimals = micro-USD per million = pico-USD per token.
    return api.parse_usd(usd_per_million) // _PICO_PER_NANO


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens of one call as the provider reports them, in OpenAI's terms.

    ``prompt_tokens`` includes ``cached_tokens`` (cache reads) and ``cache_write_tokens``;
    ``completion_tokens`` includes reasoning tokens, which are billed as output.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise PricingError(f"invalid usage {field.name}={value!r}: token counts are non-negative integers")
        if self.cached_tokens + self.cache_write_tokens > self.prompt_tokens:
            raise PricingError(
                f"invalid usage: cached_tokens ({self.cached_tokens}) plus cache_write_tokens "
                f"({self.cache_write_tokens}) exceed prompt_tokens ({self.prompt_tokens})"
            )

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounded up, for non-negative numbers."""
    return -(-numerator // denominator)


def cost_nano(prices: PriceTable, usage: Usage) -> int:
    """Compute the exact cost of a call in nano-USD, rounded up to a whole nano-USD."""
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    pico = (
        uncached * prices.input
        + usage.cached_tokens * prices.cached_input
        + usage.cache_write_tokens * prices.cache_write
        + usage.completion_tokens * prices.output
    )
    return ceil_div(pico, _PICO_PER_NANO)


def estimate_nano(prices: PriceTable, *, prompt_tokens: int, max_output_tokens: int, strict: bool = False) -> int:
    """Estimate the most a call can cost: its prompt at the input price plus every output token it may produce.

    With ``strict`` the prompt is priced at the highest prompt price (input, cache read or
    cache write), so provider caching cannot make a call cost more than its estimate.
    """
    prompt_price = prices.max_prompt_price if strict else prices.input
    return ceil_div(prompt_tokens * prompt_price + max_output_tokens * prices.output, _PICO_PER_NANO)
