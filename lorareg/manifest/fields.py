"""The small validation engine behind the manifest: field specs on frozen dataclasses, checks, paths.

Each manifest dataclass declares its fields once, with a spec in the dataclass field's ``metadata``
(:func:`spec`): how to check a value, whether it is a nested table or a list, and whether completion *fills*
it in (a file fact or the creation time, so a draft may leave it out). From those declarations this module

* cleans untrusted input (a dict from TOML or JSON) into normalised Python values, refusing unknown keys,
  missing fields, wrong types, over-long text and lists, and control characters, always naming the field's
  path (``manifest.license.commercial_use: expected true/false, got "yes"``);
* builds the dataclass tree from the cleaned values; and
* dumps a dataclass tree back to JSON-ready data, omitting absent values and always writing lists (an absent
  list reads as empty), so one manifest has exactly one JSON form.

It knows nothing about which fields a manifest has; that is :mod:`lorareg.manifest.model`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from lorareg.errors import InputError

Check = Callable[[Any, str], Any]
T = TypeVar("T")

# Characters refused in all text: bidirectional embeddings, overrides and isolates (they reorder what a reader
# sees, "Trojan Source"), and the Unicode line/paragraph separators (line breaks that some tools miss).
# With C0/C1 controls (Unicode category Cc) and lone surrogates (Cs), they are what text may not hold.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_FORBIDDEN_MULTILINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")


def spec(
    check: Check | None = None,
    *,
    table: type | None = None,
    items: Mapping[str, Any] | None = None,
    max_items: int = 0,
    unique: bool = False,
    ascending: bool = False,
    filled: bool = False,
    dump: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Describe one field for ``dataclasses.field(metadata=...)``.

    Args:
        check: validates and normalises a scalar value ``(value, path) -> value``.
        table: the dataclass of a nested table.
        items: the spec of each list item (a list field); with ``max_items``, ``unique`` and ``ascending``
            (items in strictly ascending order: a set with one spelling).
        filled: completion fills the value in (file facts, `created`); a draft may omit it.
        dump: converts the stored value to JSON-ready data (e.g. datetime to text).
    """
    return {"check": check, "table": table, "items": items, "max_items": max_items, "unique": unique,
            "ascending": ascending, "filled": filled, "dump": dump}  # fmt: skip


def clean(cls: type, obj: Any, path: str, *, draft: bool = False) -> dict[str, Any]:
    """Validate ``obj`` against dataclass ``cls``'s field specs and return normalised values by field name.

    Raises:
        InputError: the first problem found, with its path.
    """
    if not isinstance(obj, Mapping):
        raise InputError(f"{path}: expected a table, got {show(obj)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(map(str, obj)):
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise InputError(
                f"{path}.{show_key(key)}: unknown field; {hint}expected one of {', '.join(fields)}"
            )
    out: dict[str, Any] = {}
    for name, field in fields.items():
        sub = f"{path}.{name}"
        if name in obj:
            out[name] = _clean_value(field.metadata, obj[name], sub, draft)
        elif _required(field) and not (draft and field.metadata["filled"]):
            raise InputError(f"{sub}: missing required field")
    return out


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Construct dataclass ``cls`` from values that :func:`clean` returned (nested tables and lists too)."""
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in values:
            kwargs[field.name] = _build_value(field.metadata, values[field.name])
    return cls(**kwargs)


def dump(obj: Any) -> dict[str, Any]:
    """JSON-ready dict of a dataclass tree; ``None`` values are omitted, lists (even empty) always written."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if value is None:
            continue
        out[field.name] = _dump_value(field.metadata, value)
    return out


# ----- checks (factories return a Check) -----


def text(*, max_chars: int, multiline: bool = False) -> Check:
    """Non-empty text without control characters (``multiline`` allows line feeds and tabs)."""

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise InputError(f"{path}: expected text, got {show(value)}")
        if not value:
            raise InputError(f"{path}: expected non-empty text")
        if len(value) > max_chars:
            raise InputError(f"{path}: text is {len(value)} characters; the limit is {max_chars}")
        _check_characters(value, path, multiline=multiline)
        return value

    return check


def pattern(regex: str, *, max_chars: int, expected: str) -> Check:
    """Single-line text matching ``regex`` in full; ``expected`` describes the rule in messages."""
    compiled = re.compile(regex)
    base = text(max_chars=max_chars)

    def check(value: Any, path: str) -> str:
        value = base(value, path)
        if not compiled.fullmatch(value):
            raise InputError(f"{path}: expected {expected}, got {show(value)}")
        return str(value)

    return check


def hex_digest(n_hex: int) -> Check:
    """Lower-case hexadecimal of exactly ``n_hex`` digits."""
    return pattern(f"[0-9a-f]{{{n_hex}}}", max_chars=n_hex, expected=f"{n_hex} lower-case hex digits")


def url(*, max_chars: int) -> Check:
    """An ``http://`` or ``https://`` URL without whitespace."""
    return pattern(_URL.pattern, max_chars=max_chars, expected="an http:// or https:// URL")


def integer(*, low: int, high: int) -> Check:
    """An integer (not a boolean, not a float) in ``[low, high]``."""

    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path}: expected an integer, got {show(value)}")
        if not low <= value <= high:
            raise InputError(f"{path}: expected an integer from {low} to {high}, got {value}")
        return value

    return check


def number(*, low: float, high: float) -> Check:
    """A finite number in ``[low, high]``, stored as ``float`` so 8 and 8.0 are one value."""

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{path}: expected a number, got {show(value)}")
        if not math.isfinite(value) or not low <= value <= high:
            raise InputError(f"{path}: expected a number from {low:g} to {high:g}, got {show(value)}")
        return float(value)

    return check


def boolean(value: Any, path: str) -> bool:
    """``true`` or ``false`` (never 0/1 or "yes")."""
    if not isinstance(value, bool):
        raise InputError(f"{path}: expected true/false, got {show(value)}")
    return value


def choice(values: Sequence[str]) -> Check:
    """One of ``values``."""

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in values:
            raise InputError(f"{path}: expected one of {', '.join(values)}, got {show(value)}")
        return value

    return check


def utc_datetime(value: Any, path: str) -> datetime:
    """RFC 3339 UTC time: a TOML offset datetime or text ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (or ``+00:00``)."""
    if isinstance(value, str):
        if not _RFC3339_UTC.fullmatch(value):
            raise InputError(
                f"{path}: expected an RFC 3339 UTC time like 2025-01-31T12:00:00Z, got {show(value)}"
            )
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as e:
            raise InputError(f"{path}: {show(value)} is not a real date and time ({e})") from e
    if not isinstance(value, datetime):
        raise InputError(
            f"{path}: expected an RFC 3339 UTC time like 2025-01-31T12:00:00Z, got {show(value)}"
        )
    if value.utcoffset() is None or value.utcoffset() != UTC.utcoffset(None):
        raise InputError(f"{path}: expected a UTC time (suffix Z), got {value.isoformat()}")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """The one text form of a UTC time: seconds, a fraction only if non-zero (no trailing zeros), ``Z``."""
    head = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
    return f"{head}{fraction}Z"


def show(value: Any) -> str:
    """A short, escaped rendering of an untrusted value for an error message."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:60] + "…"
        return '"' + shown.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)[:40]
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def show_key(key: str) -> str:
    """A key as it can appear in a path; odd keys are quoted and escaped."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key) else show(key)


# ----- private -----


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _clean_value(meta: Mapping[str, Any], value: Any, path: str, draft: bool) -> Any:
    if meta["table"] is not None:
        return clean(meta["table"], value, path, draft=draft)
    if meta["items"] is not None:
        return _clean_list(meta, value, path, draft)
    return meta["check"](value, path)


def _clean_list(meta: Mapping[str, Any], value: Any, path: str, draft: bool) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise InputError(f"{path}: expected a list, got {show(value)}")
    if len(value) > meta["max_items"]:
        raise InputError(f"{path}: list has {len(value)} items; the limit is {meta['max_items']}")
    items = tuple(_clean_value(meta["items"], item, f"{path}[{i}]", draft) for i, item in enumerate(value))
    if meta["ascending"]:
        for i in range(1, len(items)):
            if not items[i - 1] < items[i]:
                raise InputError(
                    f"{path}[{i}]: {show(items[i])} is out of order; expected sorted, unique items"
                )
    if meta["unique"]:
        seen: set[Any] = set()
        for i, item in enumerate(items):
            if item in seen:
                raise InputError(f"{path}[{i}]: duplicate item {show(item)}")
            seen.add(item)
    return items


def _build_value(meta: Mapping[str, Any], value: Any) -> Any:
    if meta["table"] is not None:
        return build(meta["table"], value)
    if meta["items"] is not None:
        return tuple(_build_value(meta["items"], item) for item in value)
    return value


def _dump_value(meta: Mapping[str, Any], value: Any) -> Any:
    if meta["table"] is not None:
        return dump(value)
    if meta["items"] is not None:
        return [_dump_value(meta["items"], item) for item in value]
    return meta["dump"](value) if meta["dump"] is not None else value


def _check_characters(value: str, path: str, *, multiline: bool) -> None:
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN).search(value)
    if found is not None:
        ch = found.group()
        kind = "surrogate" if unicodedata.category(ch) == "Cs" else "control character"
        where = "" if multiline else " (a single-line field)"
        raise InputError(
            f"{path}: {kind} U+{ord(ch):04X} at character {found.start()}{where}; expected printable text"
        )
