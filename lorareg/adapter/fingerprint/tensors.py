"""Read one tensor's values as float32 from a safetensors file, by range, with numpy only.

The registry server must not import torch, and a 1 GiB adapter must not be read whole: each tensor is read
at the offsets the strict header reader (``lorareg.adapter.safetensors``) validated, one at a time.
F32/F64 map to
numpy directly; BF16 is the top half of an F32 and F8 E5M2 the top half of an F16, so both convert by bit
shifts; F8 E4M3 goes through a 256-entry table built from its bit layout. F16 converts by bit shifts too
(:func:`_f16_into`), block by block: numpy's own F16 cast is a scalar loop, twice as slow, and F16 is what
most adapters are saved in. Integer and sub-byte dtypes are not adapter weights: they raise
:class:`UnsupportedTensorError`, which callers turn into a note.

A sketch only needs a tensor multiplied by a thin matrix (``Lᵀ M`` or ``M R``), so :func:`reduce_tensor`
streams the tensor through one cache-sized block instead of decoding it whole: the float32 copy of a
gigabyte adapter never exists, and the weights are converted once and multiplied while still in cache.

Deliberately not here: naming modules (``modules.py``) or interpreting factors (``delta.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
import numpy.typing as npt

from lorareg.adapter.safetensors import SafetensorsHeader, TensorInfo, read_header
from lorareg.errors import InputError, NotFoundError

F32 = npt.NDArray[np.float32]
RangeRead = Callable[[int, int], bytes]
"""``read(start, end)``: the file's bytes ``[start, end)`` (absolute offsets); fewer only at end of file."""

_DIRECT = {"F32": "<f4", "F64": "<f8"}
_ITEM_BYTES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "F8_E5M2": 1, "F8_E4M3": 1}
BLOCK_ELEMENTS = 1 << 16  # elements decoded at once by reduce_tensor: 256 KiB of float32 stays in L2
_F16_EXPONENT = 0x7C00  # all ones: infinity or NaN
_BF16_EXPONENT = 0x7F80
_F16_SCALE = np.float32(2.0**112)  # 2^(127-15): F32 exponent bias minus F16's
_F16_CLEAR_SIGN_SPILL = np.int32(-0x70000001)  # 0x8FFFFFFF: keep the sign, drop its copies in bits 28-30
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


def reduce_tensor(read: RangeRead, header: SafetensorsHeader, info: TensorInfo, by: F32, *,
                  side: Literal["left", "right"]) -> F32:  # fmt: skip
    """``byᵀ @ M`` (``side="left"``, ``by`` is ``shape[0] x k``) or ``M @ by`` (``"right"``, ``rest x k``) for
    the tensor seen as the matrix ``M`` (``shape[0] x rest``).

    The tensor is read and decoded a block of whole rows at a time, so memory stays at one block whatever the
    tensor's size.

    Raises:
        UnsupportedTensorError: an integer dtype, a non-matrix, or a non-finite value.
        InputError: the file is shorter than the header says.
    """
    if info.dtype not in _ITEM_BYTES:
        raise UnsupportedTensorError(f"dtype {info.dtype} is not a float format adapters are saved in")
    if len(info.shape) < 2:
        raise UnsupportedTensorError(f"tensor {info.name} has shape {info.shape}, not a matrix")
    rows, cols = info.shape[0], math.prod(info.shape[1:])
    k = by.shape[1]
    out = np.zeros((k, cols), np.float32) if side == "left" else np.empty((rows, k), np.float32)
    step = max(1, BLOCK_ELEMENTS // max(cols, 1))
    scratch = np.empty(step * cols, np.float32)
    start, item = header.data_offset + info.begin, _ITEM_BYTES[info.dtype]
    for first in range(0, rows, step):
        last = min(rows, first + step)
        raw = read(start + first * cols * item, start + last * cols * item)
        if len(raw) != (last - first) * cols * item:
            raise InputError(f"tensor {info.name}: the file is shorter than its header says (truncated?)")
        block = _decode_into(raw, info.dtype, scratch[: (last - first) * cols]).reshape(last - first, cols)
        if side == "left":
            out += by[first:last].T @ block
        else:
            np.matmul(block, by, out=out[first:last])
    return out


def _decode_into(raw: bytes, dtype: str, out: F32) -> F32:
    """``raw`` decoded into ``out`` (same element count); raises on a non-finite value."""
    if dtype in ("F16", "BF16"):
        bits = np.frombuffer(raw, dtype="<u2")
        exponent = _F16_EXPONENT if dtype == "F16" else _BF16_EXPONENT
        if np.bitwise_and(bits, exponent).max(initial=0) == exponent:
            raise UnsupportedTensorError("non-finite values")
        if dtype == "F16":
            return _f16_into(bits, out)
        np.left_shift(bits, 16, out=out.view(np.uint32), dtype=np.uint32)  # BF16: the top half of an F32
        return out
    out[...] = decode(raw, dtype)
    if not np.isfinite(out).all():
        raise UnsupportedTensorError("non-finite values")
    return out


def _f16_into(bits: npt.NDArray[np.uint16], out: F32) -> F32:
    """Finite F16 bit patterns as float32, exactly: shift exponent and mantissa into place, rescale.

    ``int16 << 13`` in 32 bits puts the F16 exponent and mantissa at F32's mantissa end with the sign at bit
    31 (and, sign-extended, in bits 28-30, cleared next). Read as an F32 that is ``x * 2^-112`` for every
    finite ``x`` (F16 subnormals land on F32 subnormals), so one multiply by ``2^112`` gives ``x``.
    """
    ints = out.view(np.int32)
    np.left_shift(bits.view(np.int16), 13, out=ints, dtype=np.int32)
    np.bitwise_and(ints, _F16_CLEAR_SIGN_SPILL, out=ints)
    np.multiply(out, _F16_SCALE, out=out)
    return out


def decode(raw: bytes, dtype: str) -> F32:
    """Little-endian bytes of ``dtype`` elements as a flat float32 array (a copy)."""
    if dtype == "F16":
        bits = np.frombuffer(raw, dtype="<u2")
        out = np.empty(len(bits), np.float32)
        for at in range(0, len(bits), BLOCK_ELEMENTS):  # in cache-sized blocks: three passes, one trip
            block, into = bits[at : at + BLOCK_ELEMENTS], out[at : at + BLOCK_ELEMENTS]
            _f16_into(block, into)
            if np.bitwise_and(block, _F16_EXPONENT).max(initial=0) == _F16_EXPONENT:
                into[...] = block.view("<f2")  # infinities and NaNs keep their meaning for the caller
        return out
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
