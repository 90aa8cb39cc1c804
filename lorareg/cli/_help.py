"""``--help`` in the words people know: no ``<bool>`` on flags, ``TEXT``/``PATH``/``INTEGER`` for values.

typer (0.2x) labels every parameter with its Python type in angle brackets (``--json <bool>``,
``--registry <str>``): noise on a flag, which takes no value, and jargon on the rest. :func:`install`
wraps typer's ``display_type`` so a flag shows no type and a value shows click's familiar metavar.

This wraps a private name, ``typer.core._TyperParameter.display_type``; with a typer that lacks it
:func:`install` changes nothing and the help keeps typer's labels (``tests/test_cli_contracts.py`` notices).
"""

from __future__ import annotations

from typing import Any

_LABELS = {"str": "TEXT", "Path": "PATH", "path": "PATH", "int": "INTEGER", "float": "FLOAT"}


def install() -> None:
    """Replace typer's type labels in help output (idempotent)."""
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return
    original = getattr(_TyperParameter, "display_type", None)
    if original is None or getattr(original, "_lorareg_plain", False):
        return

    def display_type(self: Any, ctx: Any) -> str:
        if getattr(self, "is_flag", False):
            return ""  # a flag takes no value
        return plain_label(str(original(self, ctx)))

    display_type._lorareg_plain = True  # type: ignore[attr-defined]
    _TyperParameter.display_type = display_type  # type: ignore[method-assign]


def plain_label(label: str) -> str:
    """``<str>`` -> ``TEXT``, ``<list[str]>`` -> ``TEXT...``, ``<a|b>`` -> ``[a|b]``, ``<int range>`` ->
    ``INTEGER RANGE``."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    if inner.startswith("list[") and inner.endswith("]"):
        return plain_label(inner[5:-1]) + "..."
    if "|" in inner:
        return f"[{inner}]"
    words = inner.split(" ", 1)
    head = _LABELS.get(words[0], words[0].upper())
    return " ".join([head, *(w.upper() for w in words[1:])])
