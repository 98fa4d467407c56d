"""The number and verdict formats every section of ``benchmarks/RESULTS.md`` shares."""

from __future__ import annotations

__all__ = ["fmt", "verdict"]


def fmt(value: float, digits: int = 1) -> str:
    """``value`` with thousands separators and ``digits`` decimals."""
    return f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    """A target's verdict cell."""
    return "**PASS**" if ok else "**MISS**"
