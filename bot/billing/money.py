"""Money as integer nano-dollars (1e-9 USD): exact sums, no float drift in the ledger.

A price of $X per 1M tokens is X * 1000 nano-dollars per token, so every published price (quoted
to at most three decimals per 1M tokens) is a whole number of nano-dollars per unit.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(value: str | float | Decimal) -> int:
    """Exact conversion of a dollar amount (a string or a TOML number) to nano-dollars."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount of dollars: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not an amount of dollars: {value!r}")
    return int((amount * NANOS_PER_USD).to_integral_value())


def format_usd(nanos: int) -> str:
    """$1.23 for display; amounts under a cent keep enough digits to be non-zero ($0.0004)."""
    dollars = Decimal(nanos) / NANOS_PER_USD
    if nanos == 0 or abs(dollars) >= Decimal("0.01"):
        return f"${dollars:,.2f}"
    return f"${dollars:.9f}".rstrip("0")
