"""Strict, bounded reader of safetensors headers (interface; implementation in progress).

Reads the 8-byte little-endian header length and the JSON header, never the tensor data, except the few
bytes of 0-dim scalar tensors (kohya ``.alpha``) read at their exact offsets. Pickle files are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor entry of the header. ``begin``/``end`` are relative to the start of the data buffer."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A validated header: tensors in header order, the flat str->str metadata, and sizes."""

    header_size: int  # N, the JSON header length in bytes (after the 8-byte prefix)
    file_size: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_offset(self) -> int:
        """Absolute file offset where the tensor data buffer starts (8 + N)."""
        return 8 + self.header_size
