"""Sizes as people write them (``500M``, ``1.5G``, ``2048``) and as the CLI prints them (``1.5G``)."""

from __future__ import annotations

import re

from .errors import InvalidInputError

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``500M``, ``1.5G``, ``2048``, ``10GB`` -> bytes (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*", str(text).lower())
    if not m:
        raise InvalidInputError(
            f"size {text!r} is not a number of bytes with an optional unit; write e.g. 2048, 500M, 1.5G or 2T"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def human_size(n: float) -> str:
    """Bytes as ``512B``, ``1.5K``, ``3.0M``, ``2.0G``, ``1.1T`` (powers of 1024)."""
    if n < 1024:
        return f"{n:.0f}B"
    n /= 1024
    for unit in ("K", "M", "G"):
        if n < 1024:
            return f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


__all__ = ["human_size", "parse_size"]
