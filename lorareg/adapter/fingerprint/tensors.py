"""Read one tensor's values as float32 from a safetensors file, by range, with numpy only.

The registry server must not import torch, and a 1 GiB adapter must not be read whole: each tensor is read
at the offsets the strict header reader (``lorareg.adapter.safetensors``) validated, one at a time.
F32/F64/F16 map to
numpy directly; BF16 is the top half of an F32 and F8 E5M2 the top half of an F16, so both convert by bit
shifts; F8 E4M3 goes through a 256-entry table built from its bit layout. Integer and sub-byte dtypes are not
adapter weights: they raise :class:`UnsupportedTensorError`, which callers turn into a note.

Deliberately not here: naming modules (``modules.py``) or interpreting factors (``delta.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from lorareg.adapter.safetensors import SafetensorsHeader, TensorInfo, read_header
from lorareg.errors import InputError, NotFoundError

F32 = npt.NDArray[np.float32]
RangeRead = Callable[[int, int], bytes]
"""``read(start, end)``: the file's bytes ``[start, end)`` (absolute offsets); fewer only at end of file."""

_DIRECT = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}
_F8_E4M3_NAN = 0x7F  # E4M3 "fn": no infinities, S.1111.111 is NaN


class UnsupportedTensorError(InputError):
    """A tensor whose dtype is not a float format that adapters are saved in."""


class TensorFile:
    """A safetensors file opened for range reads of single tensors (use as a context manager)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.header: SafetensorsHeader = read_header(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as e:
            raise NotFoundError(f"no such file: {self.path}") from e
        except OSError as e:
            raise InputError(f"cannot read {self.path}: {e.strerror or e}") from e

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the file (``os.pread``: no shared file position)."""
        return os.pread(self._fd, end - start, start)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_tensor(read: RangeRead, header: SafetensorsHeader, info: TensorInfo) -> F32:
    """The values of one tensor as a float32 array of its shape.

    Raises:
        UnsupportedTensorError: an integer, bool or sub-byte dtype.
        InputError: the source returned fewer bytes than the header promised (file changed or truncated).
    """
    start = header.data_offset + info.begin
    raw = read(start, start + info.nbytes)
    if len(raw) != info.nbytes:
        raise InputError(f"tensor {info.name}: read {len(raw)} of {info.nbytes} bytes (file truncated?)")
    return decode(raw, info.dtype).reshape(info.shape)


def decode(raw: bytes, dtype: str) -> F32:
    """Little-endian bytes of ``dtype`` elements as a flat float32 array (a copy)."""
    if dtype in _DIRECT:
        return np.frombuffer(raw, dtype=_DIRECT[dtype]).astype(np.float32)
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    if dtype == "F8_E5M2":
        half = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16) << 8
        return half.view(np.float16).astype(np.float32)
    if dtype == "F8_E4M3":
        return _E4M3_TABLE[np.frombuffer(raw, dtype=np.uint8)]
    raise UnsupportedTensorError(f"dtype {dtype} is not a float format adapters are saved in")


def _e4m3_table() -> F32:
    """float32 value of every E4M3fn byte: bias 7, subnormals at exponent 0, only S.1111.111 is NaN."""
    b = np.arange(256, dtype=np.int32)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp, man = (b >> 3) & 0xF, (b & 0x7).astype(np.float64)
    value = np.where(exp == 0, man / 8 * 2.0**-6, (1 + man / 8) * 2.0 ** (exp - 7))
    value = np.where((b & 0x7F) == _F8_E4M3_NAN, np.nan, value)
    return (sign * value).astype(np.float32)


_E4M3_TABLE = _e4m3_table()
