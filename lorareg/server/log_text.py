"""Text bound for a log line, made unable to forge one: control characters become visible escapes.

An access-log line carries the decoded request path, which a client chooses freely: ``%0a`` in it would
otherwise end the line and start a fake one, and ESC sequences would repaint an operator's terminal. Every
value that reaches a log line goes through :func:`log_safe` first.
"""

from __future__ import annotations

import unicodedata

MAX_LOGGED_CHARS = 2048  # a longer value is cut (and says so): one request, one bounded line

_LINE_BREAKERS = frozenset("\u2028\u2029\u0085")


def log_safe(value: object) -> str:
    """``value`` as text with C0/C1 controls, DEL, line/paragraph separators and backslashes escaped."""
    text = str(value)
    cut = len(text) > MAX_LOGGED_CHARS
    text = text[:MAX_LOGGED_CHARS]
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char in _LINE_BREAKERS or unicodedata.category(char) in ("Cc", "Cf"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out) + ("…[cut]" if cut else "")
