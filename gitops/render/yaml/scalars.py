"""What a YAML scalar means, read the way the consumer of the file reads it.

* Plain scalars are resolved per :class:`Dialect`: Kubernetes reads YAML through go-yaml v2
  (YAML 1.1: ``yes``/``on`` are booleans, timestamps stay strings), Docker's compose loader
  through go-yaml v3 (YAML 1.2 core: only ``true``/``false``).
* Tags construct nothing (safe loading): a core tag (``!!str``, ``!!int``...) picks the type, any
  other tag is read as the text a plain scalar would be, like go-yaml into an interface value.
* Non-string mapping keys become strings the way ``sigs.k8s.io/yaml`` converts them
  (:func:`stringify_key`).

Pure functions of one scalar; building documents from them is :mod:`.documents`.
"""

from __future__ import annotations

import enum
import re
import struct
from typing import Any

__all__ = ["CONSTANTS", "MERGE", "Dialect", "resolve_scalar", "stringify_key"]


class Dialect(enum.Enum):
    KUBERNETES = "kubernetes"  # go-yaml v2 through sigs.k8s.io/yaml (YAML 1.1 scalars)
    COMPOSE = "compose"  # go-yaml v3 as used by Docker's compose loader (YAML 1.2 core scalars)


_NULLS = {"", "~", "null", "Null", "NULL"}
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INT_RE = re.compile(r"^[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")
_SPECIAL_FLOATS = {
    ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan"),
    ".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"),
    "+.inf": float("inf"), "+.Inf": float("inf"), "+.INF": float("inf"),
    "-.inf": float("-inf"), "-.Inf": float("-inf"), "-.INF": float("-inf"),
}  # fmt: skip
_BOOLS_12 = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_BOOLS_11 = {
    **_BOOLS_12,
    "y": True, "Y": True, "yes": True, "Yes": True, "YES": True, "on": True, "On": True, "ON": True,
    "n": False, "N": False, "no": False, "No": False, "NO": False, "off": False, "Off": False,
    "OFF": False,
}  # fmt: skip
MERGE = object()
"""What the merge key ``<<`` resolves to: the loader merges, it never becomes a key."""


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) (or ParseUint) after go-yaml removed the underscores."""
    plain = text.replace("_", "")
    if not _INT_RE.match(plain):
        return None
    sign = -1 if plain[0] == "-" else 1
    digits = plain.lstrip("+-")
    lowered = digits[:2].lower()
    if lowered == "0x":
        value = int(digits[2:], 16)
    elif lowered == "0b":
        value = int(digits[2:], 2)
    elif lowered == "0o":
        value = int(digits[2:], 8)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value *= sign
    if value < -(2**63) or value >= 2**64:
        return None
    return value


def _make_resolver(dialect: Dialect) -> dict[str, Any]:
    constants: dict[str, Any] = dict.fromkeys(_NULLS)
    constants.update(_BOOLS_11 if dialect is Dialect.KUBERNETES else _BOOLS_12)
    constants.update(_SPECIAL_FLOATS)
    constants["<<"] = MERGE
    return constants


CONSTANTS = {dialect: _make_resolver(dialect) for dialect in Dialect}
"""Per dialect, the plain scalars that resolve to a constant (nulls, booleans, special floats, ``<<``)."""
_NUMERIC_START = frozenset("0123456789+-.")


def _resolve_plain(text: str, constants: dict[str, Any]) -> Any:
    if text in constants:
        return constants[text]
    if text[0] in _NUMERIC_START:
        number = _go_int(text)
        if number is not None:
            return number
        plain = text.replace("_", "")
        if _FLOAT_RE.match(plain):
            return float(plain)
    return text


_TAG_PREFIX = "tag:yaml.org,2002:"


def resolve_scalar(event: Any, constants: dict[str, Any]) -> Any:
    """The value of a scalar event, with a dialect's ``CONSTANTS``; nothing is constructed from its tag."""
    tag: str | None = event.tag
    value: str = event.value
    if tag is None or tag == "!":
        if event.implicit[0]:
            return _resolve_plain(value, constants) if value else None
        return value
    short = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else ""
    if short == "str":
        return value
    if short in ("int", "float", "bool", "null"):
        resolved = _resolve_plain(value, constants) if value else None
        if short == "null":
            return None
        if short == "float" and isinstance(resolved, int) and not isinstance(resolved, bool):
            return float(resolved)
        return resolved
    # Unknown or local tags (``!Ref``, ``!!binary``, ``!!timestamp``): read the text as a plain
    # scalar would be, like go-yaml does when decoding into an interface value.
    if event.implicit[0] or event.style in (None, ""):
        return _resolve_plain(value, constants) if value else None
    return value


def _go_float32_key(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 32), as sigs.k8s.io/yaml uses for float map keys."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    rounded = struct.unpack("f", struct.pack("f", value))[0]
    for precision in range(1, 10):
        text = f"{rounded:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == rounded:
            break
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    digits = mantissa.replace(".", "").lstrip("-").rstrip("0") or "0"
    negative = mantissa.startswith("-")
    # Go's shortest 'g' uses the exponent form when exp < -4 || exp >= 6, else a plain decimal.
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if exponent < 0 else "+"
        text = f"{body}e{sign}{abs(exponent):02d}"
    elif exponent >= len(digits) - 1:
        text = digits + "0" * (exponent - len(digits) + 1)
    elif exponent >= 0:
        text = digits[: exponent + 1] + "." + digits[exponent + 1 :]
    else:
        text = "0." + "0" * (-exponent - 1) + digits
    return ("-" if negative else "") + text


def stringify_key(key: Any) -> str | None:
    """A mapping key as Kubernetes reads it; None when it has no string form (null, collections)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_key(key)
    return None
