"""The JSON of a safetensors header, parsed strictly and within a budget fixed before parsing starts.

A hostile header may be 16 MiB of anything, so before ``json`` builds a single object this module checks,
with C-level byte operations only (no recursion, no per-token Python loop): the leading ``{``, strict
UTF-8, and the number of strings, commas and brackets outside strings and the nesting depth against a
:class:`JsonBudget` that the caller derives from its caps. Then it parses: duplicate keys, ``NaN`` and
``Infinity`` are refused and only spaces may follow the closing brace (the writer's padding).

Numbers are kept as JSON wrote them where Python would blur them: ``json`` turns ``-0`` into the integer
``0``, while the reference reader (serde_json) reads it as the float ``-0.0`` and refuses it as a shape or
offset. So when a ``-`` appears outside strings, the token ``-0`` is parsed into :data:`NEGATIVE_ZERO`, which
is not an ``int`` and fails the caller's integer checks naming the tensor. Fractions and exponents already
parse as ``float``, and a ``+`` sign is not JSON.

What it deliberately does not do: check what the JSON means (``adapter/safetensors.py`` does). It is separate
from ``manifest_json.strict_json_loads`` because a header needs the budget *before* parsing and the
trailing-space rule; that loader checks depth after parsing documents capped at 4 MiB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NoReturn

from lorareg.errors import InputError

_LENGTH_BYTES = 8  # the header text starts after the 8-byte length: error positions are file offsets

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = [0] * 256
for _byte, _step in ((b"[", 1), (b"{", 1), (b"]", -1), (b"}", -1)):
    _DEPTH_STEP[_byte[0]] = _step


class _NegativeZero:
    """The JSON token ``-0``: a number that is not a non-negative integer (shown as ``-0``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "-0"


NEGATIVE_ZERO = _NegativeZero()


@dataclass(frozen=True, slots=True)
class JsonBudget:
    """Most strings, commas (outside strings) and brackets a header may hold, its deepest nesting, and
    the caps they derive from (quoted in the refusal)."""

    strings: int
    commas: int
    brackets: int
    depth: int
    derived_from: str


def load_header_json(raw: bytes, *, budget: JsonBudget) -> dict[str, Any]:
    """Check ``raw`` (the header bytes after the 8-byte length) against ``budget``, then parse it strictly.

    Raises:
        InputError: naming the rule that failed.
    """
    text, signed = _decode_checked(raw, budget)
    return _load_json(text, keep_negative_zero=signed)


def _decode_checked(raw: bytes, budget: JsonBudget) -> tuple[str, bool]:
    """Bound the parser's work and memory before it runs; return the header text.

    Checks the leading '{' and strict UTF-8, then counts strings, commas and brackets outside strings and
    the bracket nesting depth, all with C-level byte operations: no recursion, no per-token Python loop.
    Also says whether a ``-`` stands outside strings (a negative number, perhaps ``-0``).
    """
    if raw[:1] != b"{":
        raise InputError(f"header must start with '{{', found {raw[:1]!r}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"header is not valid UTF-8 at byte {_LENGTH_BYTES + e.start}: {e.reason}") from e
    # Drop escaped backslashes, then escaped quotes: every '"' left delimits a string (in valid JSON).
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    strings = unescaped.count(b'"') // 2
    _check_budget(strings, budget.strings, "strings", budget)
    outside = b"".join(unescaped.split(b'"')[::2])
    del unescaped
    _check_budget(outside.count(b","), budget.commas, "commas", budget)
    brackets = outside.translate(None, _NOT_BRACKETS)
    _check_budget(len(brackets), budget.brackets, "brackets", budget)
    depth = max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)
    if depth > budget.depth:
        raise InputError(f"header JSON nests {depth} levels deep; MAX_NESTING_DEPTH is {budget.depth}")
    return text, b"-" in outside


def _check_budget(count: int, most: int, what: str, budget: JsonBudget) -> None:
    if count > most:
        raise InputError(
            f"header JSON has {count} {what}, more than the {most} that a header within "
            f"{budget.derived_from} can hold"
        )


def _load_json(text: str, *, keep_negative_zero: bool) -> dict[str, Any]:
    """Parse strictly: duplicate keys and NaN/Infinity refused, only spaces after the closing brace.

    With ``keep_negative_zero``, integers go through a Python hook (slower, so only when a ``-`` is
    present) that parses ``-0`` into :data:`NEGATIVE_ZERO`.
    """
    decoder = json.JSONDecoder(
        object_pairs_hook=_unique_keys,
        parse_constant=_refuse_constant,
        parse_int=_int_keeping_negative_zero if keep_negative_zero else None,
    )
    try:
        document, end = decoder.raw_decode(text)
    except InputError:
        raise
    except (ValueError, RecursionError) as e:
        raise InputError(f"header is not valid JSON: {e}") from e
    if text[end:].strip(" "):
        raise InputError(
            f"header has {text[end:].strip(' ')[:20]!r} after the JSON object; only spaces may pad it"
        )
    if not isinstance(document, dict):
        raise InputError("header JSON must be an object")
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # C speed; a duplicate shows as a shorter dict, then we look for it
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(f"header JSON repeats the key '{key[:80]}'; duplicate keys are ambiguous")
            seen.add(key)
    return result


def _int_keeping_negative_zero(digits: str) -> int | _NegativeZero:
    return NEGATIVE_ZERO if digits == "-0" else int(digits)


def _refuse_constant(name: str) -> NoReturn:
    raise InputError(f"header JSON holds {name}, which is not JSON")
