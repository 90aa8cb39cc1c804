"""A small TOML writer for draft manifests (tables, arrays of tables, strings, numbers, booleans, lists).

The standard library reads TOML but does not write it; a manifest needs only this subset, and every draft
written is read back through the strict manifest parser before anyone signs it. Strings are written as JSON
strings, which are valid TOML basic strings for text the manifest allows (no DEL, no lone surrogates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def to_toml(values: Mapping[str, Any]) -> str:
    """TOML text for ``values``: scalars and scalar lists first, then tables, then arrays of tables."""
    lines = _body(values, prefix="")
    return "\n".join(lines).strip() + "\n"


def _body(values: Mapping[str, Any], *, prefix: str) -> list[str]:
    plain = [(k, v) for k, v in values.items() if not _is_table(v) and not _is_table_list(v)]
    tables = [(k, v) for k, v in values.items() if _is_table(v)]
    table_lists = [(k, v) for k, v in values.items() if _is_table_list(v)]
    lines = [f"{_key(k)} = {_value(v)}" for k, v in plain]
    for key, table in tables:
        name = f"{prefix}{_key(key)}"
        lines += ["", f"[{name}]", *_body(table, prefix=f"{name}.")]
    for key, items in table_lists:
        name = f"{prefix}{_key(key)}"
        for item in items:
            lines += ["", f"[[{name}]]", *_body(item, prefix=f"{name}.")]
    return lines


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML cannot hold {value!r} in a manifest")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
