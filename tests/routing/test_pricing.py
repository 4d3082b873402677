"""Exact call costs in nano-USD from ``sluicegate.routing._pricing``.

Covers: the cached-prompt example, rounding up once per call, the defaults of
cachedInput and cacheWrite, strict estimates, $0 routes, and invalid usage and prices.
"""

from __future__ import annotations

import pytest

from sluicegate import api
from sluicegate.routing import _pricing


def prices(**fields: str) -> _pricing.PriceTable:
    return _pricing.PriceTable.from_price(api.Price(**fields))


def test_cached_prompt_cost_is_exact() -> None:
    table = prices(input="1.40", cached_input="0.26", output="4.40")
    usage = _pricing.Usage(prompt_tokens=27_147, cached_tokens=27_146, completion_tokens=351)
    assert _pricing.cost_nano(table, usage) == 8_603_760


def test_cost_rounds_up_once_per_call() -> None:
    table = prices(input="0.000001", output="0.000001")  # 1 pico-USD per token
    assert _pricing.cost_nano(table, _pricing.Usage(prompt_tokens=1)) == 1
    assert _pricing.cost_nano(table, _pricing.Usage(prompt_tokens=1000)) == 1
    assert _pricing.cost_nano(table, _pricing.Usage(prompt_tokens=600, completion_tokens=401)) == 2


def test_cache_prices_default_to_input() -> None:
    table = prices(input="2.00", output="8.00")
    assert (table.input, table.cached_input, table.cache_write, table.output) == (2_000_000, 2_000_000, 2_000_000, 8_000_000)
    usage = _pricing.Usage(prompt_tokens=1_000, cached_tokens=400, cache_write_tokens=100, completion_tokens=10)
    assert _pricing.cost_nano(table, usage) == 2_080_000


def test_cache_write_priced_separately() -> None:
    table = prices(input="3.00", cached_input="0.30", cache_write="3.75", output="15.00")
    usage = _pricing.Usage(prompt_tokens=10_000, cached_tokens=6_000, cache_write_tokens=3_000, completion_tokens=500)
    # 1,000 x 3.00 + 6,000 x 0.30 + 3,000 x 3.75 + 500 x 15.00 micro-USD
    assert _pricing.cost_nano(table, usage) == 23_550_000


def test_estimate_bounds_output_and_strict_prompt() -> None:
    table = prices(input="1.00", cache_write="1.25", output="4.00")
    assert _pricing.estimate_nano(table, prompt_tokens=1_000, max_output_tokens=500) == 3_000_000
    assert _pricing.estimate_nano(table, prompt_tokens=1_000, max_output_tokens=500, strict=True) == 3_250_000


def test_free_route_costs_nothing() -> None:
    table = prices(input="0", output="0")
    assert table.is_free
    assert _pricing.cost_nano(table, _pricing.Usage(prompt_tokens=10**6, completion_tokens=10**6)) == 0
    assert not prices(input="0", output="0.000001").is_free


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt_tokens": -1}, "prompt_tokens=-1"),
        ({"completion_tokens": True}, "completion_tokens=True"),
        ({"prompt_tokens": 10, "cached_tokens": 8, "cache_write_tokens": 3}, "exceed prompt_tokens"),
    ],
)
def test_invalid_usage_is_rejected(fields: dict[str, int], message: str) -> None:
    with pytest.raises(_pricing.PricingError, match=message):
        _pricing.Usage(**fields)


def test_ceil_div_rounds_up() -> None:
    assert [_pricing.ceil_div(n, 1000) for n in (0, 1, 999, 1000, 1001)] == [0, 1, 1, 1, 2]
