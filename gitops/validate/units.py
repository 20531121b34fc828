"""Compose value parsers shared by translation and normalization: durations, byte sizes, CPUs.

They follow the Docker CLI: durations are Go durations (``1m30s``, ``250ms``), sizes follow
``go-units.RAMInBytes`` (binary multiples, ``512m`` = 512 MiB), CPUs are decimal fractions of a
CPU turned into an exact whole number of nano-CPUs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def duration_ns(value: object) -> int:
    """A Go duration string (``"1m30s"``) in nanoseconds. Plain numbers are refused: compose
    durations carry a unit, and guessing seconds vs nanoseconds would be wrong half the time."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected a string such as '10s' or '1m30s'")
    text = value.strip()
    if not text:
        raise ValueError(f"invalid duration {value!r}")
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    pos = 0
    total = Decimal(0)
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: expected numbers with units (ns, us, ms, s, m, h)")
        total += Decimal(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * int(total)


def size_bytes(value: object) -> int:
    """A byte size: an integer, or a string such as ``512m``, ``1.5g``, ``64MiB`` (binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid size {value!r}: expected bytes or a string such as '512m'")
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"invalid size {value!r}: expected a number with an optional unit (k, m, g, t, p)")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as err:
        raise ValueError(f"invalid size {value!r}") from err
    return int(number * _SIZE_UNITS[(match.group(2) or "").lower()])


def nano_cpus(value: object) -> int:
    """``cpus: '0.5'`` (or ``0.5``) as nano-CPUs, exactly; refuses more than 9 decimal places."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"invalid cpus {value!r}: expected a number such as '0.5'")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as err:
        raise ValueError(f"invalid cpus {value!r}: expected a number such as '0.5'") from err
    nanos = number * 1_000_000_000
    if nanos != nanos.to_integral_value() or nanos < 0:
        raise ValueError(f"invalid cpus {value!r}: at most 9 decimal places, not negative")
    return int(nanos)
