"""USD decimal strings and integer nano-USD (``sluicegate.api._money``), as the ledger stores them.

Covers: parsing exact amounts, every rejected form, formatting with up to nine places
and a round trip through both.
"""

from __future__ import annotations

import pytest

from sluicegate import api


@pytest.mark.parametrize(
    ("text", "nano"),
    [("0", 0), ("20.00", 20_000_000_000), ("0.000001", 1_000), ("5", 5_000_000_000), ("0.10", 100_000_000)],
)
def test_parse_usd_is_exact(text: str, nano: int) -> None:
    assert api.parse_usd(text) == nano


@pytest.mark.parametrize("text", ["-1", "+1", "1e3", " 1", "1.", ".5", "1,00", "", "0.0000001", "NaN"])
def test_parse_usd_rejects_other_forms(text: str) -> None:
    with pytest.raises(api.MoneyError, match="invalid USD amount"):
        api.parse_usd(text)


def test_parse_usd_rejects_non_strings() -> None:
    with pytest.raises(api.MoneyError, match="quoted decimal string"):
        api.parse_usd(20)  # type: ignore[arg-type]


def test_parse_usd_allows_more_places_on_request() -> None:
    assert api.parse_usd("0.000000001", max_decimals=9) == 1


@pytest.mark.parametrize(
    ("nano", "text"),
    [(0, "0"), (1, "0.000000001"), (2_500_000, "0.0025"), (8_603_760, "0.00860376"), (20_000_000_000, "20"), (-1_500_000_000, "-1.5")],
)
def test_format_usd(nano: int, text: str) -> None:
    assert api.format_usd(nano) == text


def test_format_then_parse_round_trips() -> None:
    for nano in (0, 1, 999_999_999, 1_000_000_000, 123_456_789_012):
        assert api.parse_usd(api.format_usd(nano), max_decimals=9) == nano
