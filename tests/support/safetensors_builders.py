"""Hand-built safetensors bytes for the reader, hostile-input, property and hashing tests.

The ``safetensors`` package cannot write a broken file, so tests that need one build the bytes here: an
8-byte little-endian length, the JSON header exactly as given (a dict is dumped compactly, bytes are used
verbatim) and the data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    """One tensor entry of a header."""
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def header_bytes(header: dict[str, Any] | bytes, *, pad_to: int = 1) -> bytes:
    """The JSON header: a dict dumped compactly (non-ASCII kept), or bytes as given; space-padded."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % pad_to)


def safetensors_bytes(
    header: dict[str, Any] | bytes, data: bytes = b"", *, length: int | None = None
) -> bytes:
    """A whole file: length prefix (``length`` overrides the true one), header, data."""
    raw = header_bytes(header)
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + data


def write(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` and return the path."""
    path.write_bytes(content)
    return path


def valid_lora_bytes() -> bytes:
    """A small, valid kohya-style file: F16 down/up weights, an F16 alpha scalar and metadata."""
    header = {
        "__metadata__": {"ss_network_dim": "2", "ss_network_alpha": "1.0"},
        "lora_unet_mid_block_attn.alpha": entry("F16", [], 0, 2),
        "lora_unet_mid_block_attn.lora_down.weight": entry("F16", [2, 4], 2, 18),
        "lora_unet_mid_block_attn.lora_up.weight": entry("F16", [4, 2], 18, 34),
    }
    alpha = b"\x00\x3c"  # 1.0 in little-endian float16
    return safetensors_bytes(header_bytes(header, pad_to=8), alpha + bytes(range(32)))
