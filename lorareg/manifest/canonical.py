"""Canonical JSON bytes and a strict, bounded JSON reader: the only JSON (de)serialiser for signed data.

Signatures cover exact bytes, so whatever lorareg signs (manifests, DSSE payloads, revocation lists) is
written by :func:`canonical_json`, and whatever it reads back after checking a signature is parsed by
:func:`strict_json_loads`, which refuses every input on which two JSON readers could disagree: duplicate keys,
``NaN``/``Infinity``, numbers that overflow to infinity, invalid UTF-8, and nesting deep enough to exhaust a
recursive parser. The canonical form is defined in ``docs/manifest.md`` ("Canonical JSON").

This module does no I/O and knows nothing about manifests; the manifest schema lives in
:mod:`lorareg.manifest.model`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lorareg.errors import InputError, PayloadTooLargeError

MAX_JSON_BYTES = 4 * 2**20  # default cap on a JSON document, bytes
MAX_JSON_DEPTH = 32  # default cap on nesting of arrays and objects


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON: UTF-8, keys sorted by code point, no insignificant whitespace.

    Non-ASCII text is written as UTF-8, never as ``\\u`` escapes; integers in decimal; floats as the
    shortest text that reads back to the same float (Python's ``repr``); ``NaN`` and infinities are refused.
    Equal values therefore always give equal bytes.

    Args:
        obj: dicts with ``str`` keys, lists, tuples, ``str``, ``int``, finite ``float``, ``bool``, ``None``.

    Returns:
        The canonical bytes.

    Raises:
        InputError: text that cannot be encoded as UTF-8 (a lone surrogate).
        TypeError, ValueError: a value that JSON cannot represent (a programming error).
    """
    _check_keys(obj)
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(
            f"JSON text holds a lone surrogate at character {e.start}; expected valid Unicode"
        ) from e


def strict_json_loads(
    data: bytes | str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Parse one JSON document strictly, refusing anything two readers could read differently.

    Args:
        data: the document; ``bytes`` must be strict UTF-8 without a byte order mark.
        max_bytes: size cap in bytes (UTF-8 encoded).
        max_depth: cap on nesting of arrays and objects.

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        PayloadTooLargeError: over ``max_bytes``.
        InputError: invalid UTF-8, syntax errors, duplicate keys, ``NaN``/``Infinity``, a number too large
            for a double, nesting deeper than ``max_depth``.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLargeError(f"JSON document is {size} bytes; the limit is {max_bytes} bytes")
    text = _decode(data) if isinstance(data, bytes) else data
    try:
        value = json.loads(
            text,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except RecursionError as e:  # the C scanner guards its recursion; far deeper than any cap
        raise InputError(f"JSON nesting is deeper than {max_depth} levels") from e
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except InputError:
        raise
    except ValueError as e:  # an integer with more digits than Python converts
        raise InputError(f"invalid JSON: {e}") from e
    _check_depth(value, max_depth)
    return value


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputError("JSON starts with a UTF-8 byte order mark; expected plain UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"JSON is not valid UTF-8 (byte {e.start}); expected UTF-8 text") from e


def _check_depth(value: Any, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth``; iterative, so the check itself cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > max_depth:
            raise InputError(f"JSON nesting is deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(
                f"duplicate JSON key {json.dumps(key, ensure_ascii=True)[:80]}; expected unique keys"
            )
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise InputError(f"JSON holds {name}; expected finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"JSON number {text[:40]} does not fit a double; expected a finite number")
    return value


def _check_keys(obj: Any) -> None:
    """Refuse non-string keys: ``json.dumps`` would silently make them strings (two values, one text)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs str keys, got {type(key).__name__}")
            _check_keys(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _check_keys(item)
