"""Write resolved scenarios back as TOML.

The standard library reads TOML but does not write it, and the core stays free of extra
dependencies, so this writes the subset scenarios use: tables, inline tables of scalars,
strings, booleans, integers, floats (repr round-trips exactly) and arrays of scalars.
``tomllib.loads(dumps(data)) == data`` for every scenario (tests/test_tomlwrite.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """Serialise nested mappings as TOML; top-level mappings become ``[tables]``."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    _emit_table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _emit_table(lines: list[str], prefix: list[str], table: Mapping[str, Any]) -> None:
    inline = {k: v for k, v in table.items() if not _needs_header(prefix, v)}
    nested = {k: v for k, v in table.items() if _needs_header(prefix, v)}
    if prefix and (inline or not nested):
        if lines and lines[-1] != "":
            lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in prefix)}]")
    for key, value in inline.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested.items():
        _emit_table(lines, [*prefix, key], value)


def _needs_header(prefix: list[str], value: Any) -> bool:
    """Mappings at the top level, or holding other mappings, get a ``[table]`` header."""
    if not isinstance(value, Mapping):
        return False
    return not prefix or any(isinstance(v, Mapping) for v in value.values())


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML: {value!r}")
