"""Money: USD decimal strings at the edges, integer nano-USD inside.

Every amount in code and storage is an ``int`` of nano-USD (1e-9 USD), so sums are exact
and no float ever touches a budget. Users write USD as decimal strings with at most six
decimal places ("20.00", "0.000001"); headers and reports print up to nine.
"""

from __future__ import annotations

import decimal
import re

NANO_PER_USD = 1_000_000_000
MAX_INPUT_DECIMALS = 6

_DECIMAL_STRING = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class MoneyError(ValueError):
    """A USD amount that is not a plain, non-negative decimal string."""


def parse_usd(text: str, *, max_decimals: int = MAX_INPUT_DECIMALS) -> int:
    """Parse a USD decimal string into nano-USD.

    ``parse_usd("20.00") == 20_000_000_000``. Signs, exponents, spaces and more than
    ``max_decimals`` decimal places raise MoneyError with a message naming the value.
    """
    if not isinstance(text, str):
        raise MoneyError(
            f"expected a USD amount as a quoted decimal string such as \"20.00\", got {text!r}"
        )
    if not _DECIMAL_STRING.match(text):
        raise MoneyError(
            f"invalid USD amount {text!r}: write a non-negative decimal string such as \"20.00\""
        )
    _, _, fraction = text.partition(".")
    if len(fraction) > max_decimals:
        raise MoneyError(
            f"invalid USD amount {text!r}: at most {max_decimals} decimal places are allowed"
        )
    return int(decimal.Decimal(text) * NANO_PER_USD)


def format_usd(nano: int) -> str:
    """Format nano-USD as a plain decimal string with up to nine places: 2500000 -> "0.0025"."""
    sign = "-" if nano < 0 else ""
    whole, fraction = divmod(abs(nano), NANO_PER_USD)
    fraction_text = f"{fraction:09d}".rstrip("0")
    if not fraction_text:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction_text}"
