"""Printing for the CLI: JSON, safe human text, and the one-line error format.

Text that comes from files or servers (tensor names, metadata, manifest strings) may hold terminal
control sequences; :func:`safe_text` replaces them before anything reaches a terminal.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any

NO_HASH_TEXT = "n/a (file under 2 MiB)"  # the one hash that can be absent: AutoV1 (lorareg.adapter.hashing)
UNWRAPPED_WIDTH = 1_000_000  # columns given to rich when stdout is a pipe or file: lines are never wrapped


# What ``json.dumps(ensure_ascii=False)`` leaves raw but a terminal or a line splitter acts on: DEL and C1
# controls (NEL and CSI among them), bidi marks/embeddings/overrides/isolates, line and paragraph separators.
# They can only stand inside JSON strings, where a \uXXXX escape means the same text.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (keys in insertion order, non-ASCII kept) with the
    characters a terminal would act on escaped, so each field stays one clean line."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def safe_text(text: object, *, limit: int | None = None) -> str:
    """Return ``text`` with control characters (C0, C1, DEL, bidi overrides, line/paragraph separators)
    shown as ``\\xNN``/``\\uNNNN`` escapes; tab and line feed become spaces."""
    out = []
    for ch in str(text):
        if ch in "\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    result = "".join(out)
    if limit is not None and len(result) > limit:
        result = result[: limit - 1] + "…"
    return result


def hash_rows(hashes: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """``(name, value)`` rows of a file's hashes as ``inspect`` and ``show`` print them alike."""
    return [(name, safe_text(value) if value else NO_HASH_TEXT) for name, value in hashes.items()]


def stdout_console() -> Any:
    """A rich console for stdout that wraps to the terminal, and never wraps when stdout is not one.

    Scripts read our output line by line (``lorareg inspect F | grep sha256``): a hash split over two lines
    because rich assumed 80 columns is a wrong answer, not a cosmetic one.
    """
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)


def error_line(message: str) -> None:
    """Write ``error: <message>`` as a single safe line on stderr."""
    sys.stderr.write("error: " + safe_text(message) + "\n")
