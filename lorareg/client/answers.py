"""Checks on what a registry answers, before any of it becomes a path, a URL or a printed line.

The registry is not trusted: a compromised one (or a man in the middle on plain http) may answer a
``resolve`` with the version ``../../x``, a NUL, a digest with a trailing newline, a size of ``-1`` or
``true``, or leave out a field the CLI prints. Every server-supplied name, version and digest is checked
here with the manifest's own rules (``lorareg.manifest.ids``), and every field the client or the CLI uses
is checked for its type. A refusal is a :class:`~lorareg.errors.RemoteError` (the server misbehaved; exit
code 4), naming the field and what was seen.

What it deliberately does not do: decide whether the answer is *true*. ``pull`` checks that against the
signature (``lorareg.client.pull``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lorareg.errors import InputError, RemoteError
from lorareg.manifest.ids import SemVer, check_name

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOWN_CHARS = 80  # of a hostile value quoted in a refusal


def checked_detail(data: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """A version detail (``resolve``, version pages) whose identity fields are valid.

    Checks ``name``, ``version``, ``sha256``, ``size``, ``ref`` and ``status``, and the types of
    ``hashes`` (an object of strings or nulls) and ``signers`` (a list of strings) when present.

    Raises:
        RemoteError: naming the first field that is missing or invalid.
    """
    checked_summary(data, what=what)
    hashes = data.get("hashes", {})
    if not isinstance(hashes, dict) or not all(isinstance(v, str | None) for v in hashes.values()):
        raise _bad(what, "hashes", hashes, "an object of hex strings")
    signers = data.get("signers", [])
    if not isinstance(signers, list) or not all(isinstance(s, str) for s in signers):
        raise _bad(what, "signers", signers, "a list of key ids")
    return dict(data)


def checked_summary(data: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """A version summary (a search item) with a valid name, version, digest, size, ref and status."""
    name = _text(data, "name", what)
    try:
        check_name(name, "name")
        SemVer.parse(_text(data, "version", what), "version")
    except InputError as e:
        raise RemoteError(f"{what}: the registry answered an invalid {e}") from e
    check_sha256(_text(data, "sha256", what), what=f"{what}: sha256")
    size = data.get("size")
    if type(size) is not int or size < 0:
        raise _bad(what, "size", size, "a non-negative integer")
    _text(data, "ref", what)
    _text(data, "status", what)
    return dict(data)


def checked_page(data: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """A search page: ``items`` (valid summaries) and ``next_cursor`` (a string or null)."""
    items = data.get("items")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _bad(what, "items", items, "a list of objects")
    for index, item in enumerate(items):
        checked_summary(item, what=f"{what}: items[{index}]")
    if not isinstance(data.get("next_cursor"), str | None):
        raise _bad(what, "next_cursor", data.get("next_cursor"), "a string or null")
    return dict(data)


def checked_keys(data: Mapping[str, Any], *, what: str) -> list[dict[str, str]]:
    """The registry's key list: ``keys``, a list of objects of strings."""
    keys = data.get("keys")
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and all(isinstance(v, str) for v in k.values()) for k in keys
    ):
        raise _bad(what, "keys", keys, "a list of objects of strings")
    return keys


def checked_texts(data: Mapping[str, Any], fields: tuple[str, ...], *, what: str) -> dict[str, Any]:
    """An answer whose ``fields`` are all strings (``yank``'s ``ref`` and ``status``)."""
    for field in fields:
        _text(data, field, what)
    return dict(data)


def checked_list(data: Mapping[str, Any], key: str, fields: tuple[str, ...], *, what: str) -> dict[str, Any]:
    """An answer whose ``key`` is a list of objects, each with ``fields`` as strings (the review queue)."""
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _bad(what, key, items, "a list of objects")
    for index, item in enumerate(items):
        checked_texts(item, fields, what=f"{what}: {key}[{index}]")
    return dict(data)


def check_sha256(value: str, *, what: str) -> str:
    """``value`` if it is exactly 64 lower-case hex characters (``fullmatch``: no trailing newline)."""
    if not _SHA256.fullmatch(value):
        raise RemoteError(
            f"{what}: the registry answered {_shown(value)}; expected 64 lower-case hex characters"
        )
    return value


def _text(data: Mapping[str, Any], field: str, what: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise _bad(what, field, value, "a string")
    return value


def _bad(what: str, field: str, value: object, expected: str) -> RemoteError:
    return RemoteError(f"{what}: the registry answered {field} = {_shown(value)}; expected {expected}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
