"""Strict, bounded reader of safetensors headers.

A LoRA file arrives from strangers, so this module reads as little as it can and checks all of it: the
8-byte little-endian header length, then the JSON header, never the tensor data. Every rule that the
reference Rust crate enforces is enforced here (``LORA_FORMATS.md`` §1), plus caps that keep the work and
memory of a hostile header bounded *before* JSON parsing starts: the header length, the nesting depth and
the number of JSON strings, commas and brackets are all checked on the raw bytes (``adapter/header_json.py``).
Each refusal beyond the reference is a documented rule (``safetensors_rules.STRICTER_THAN_REFERENCE``),
and a differential test against the reference holds both directions.

What it deliberately does not do: read tensor data (only :func:`read_scalars` reads the few bytes of 0-dim
tensors such as kohya ``.alpha``, at their exact offsets), interpret tensor names (``facts.py`` does),
believe metadata (the strings are returned as untrusted text), import torch/numpy/safetensors, or load a
pickle: pickle and ZIP (``torch.save``) files are recognised by name and by magic bytes
(``adapter/foreign_formats.py``) and refused with an explanation of how to convert them.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lorareg.adapter.foreign_formats import refuse_foreign_magic, refuse_pickle_name
from lorareg.adapter.header_json import JsonBudget, load_header_json
from lorareg.errors import InputError, NotFoundError, PayloadTooLargeError

# Limits. A full SDXL kohya LoRA with both text encoders has a ~400 KB header and ~3,000 tensors; LyCORIS
# and DoRA variants reach ~15,000 tensors. The caps leave 40x and 4x room. MAX_HEADER_BYTES stays one byte
# under 16 MiB, where Civitai's AutoV3 starts hashing from byte 8 instead of after the header: every file
# accepted here has an AutoV3 that is the hash of its tensor data alone (``adapter/hashing.py``).
MAX_HEADER_BYTES = 16 * 2**20 - 1  # bytes of JSON after the 8-byte length (the crate allows 100 MB)
MAX_TENSORS = 65_536  # tensor entries in one header
MAX_TENSOR_DIMS = 16  # dimensions of one tensor (real ones have at most 5)
MAX_NAME_BYTES = 1024  # UTF-8 bytes of a tensor name or metadata key (kohya names are ~100)
MAX_METADATA_ENTRIES = 10_000  # keys of __metadata__ (kohya writes ~80)
MAX_METADATA_VALUE_BYTES = 8 * 2**20  # UTF-8 bytes of one metadata value (ss_tag_frequency, thumbnails)
MAX_NESTING_DEPTH = 64  # JSON nesting; a valid header needs 3

#: Bits per element of every dtype the reference crate knows (``Dtype::bitsize``); sub-byte types included.
DTYPE_BITS: Mapping[str, int] = MappingProxyType(
    {
        "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
    }
)  # fmt: skip

# Budgets on the raw header bytes, derived from the caps: a tensor entry has 5 strings, 6 brackets and at
# most 4 + MAX_TENSOR_DIMS commas; a metadata entry 2 strings and 1 comma.
_JSON_BUDGET = JsonBudget(
    strings=5 * MAX_TENSORS + 2 * MAX_METADATA_ENTRIES + 1,
    commas=(4 + MAX_TENSOR_DIMS) * MAX_TENSORS + MAX_METADATA_ENTRIES + 1,
    brackets=6 * MAX_TENSORS + 4,
    depth=MAX_NESTING_DEPTH,
    derived_from=f"MAX_TENSORS ({MAX_TENSORS}) and MAX_METADATA_ENTRIES ({MAX_METADATA_ENTRIES})",
)
_LENGTH_BYTES = 8  # the little-endian u64 header length
_USIZE_LIMIT = 2**64  # the crate computes sizes in u64/usize; anything at or above overflows
_TENSOR_FIELDS = frozenset({"dtype", "shape", "data_offsets"})


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


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path``, reading ``8 + N`` bytes only.

    Raises:
        NotFoundError: the file does not exist.
        InputError: the file is not a strictly valid safetensors file, or is a pickle/ZIP/other format.
    """
    file = Path(path)
    refuse_pickle_name(file)
    try:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{file} is not a regular file")
        with file.open("rb", buffering=0) as handle:  # unbuffered: no read-ahead into the tensor data
            prefix = handle.read(_LENGTH_BYTES)
            length = _header_length(prefix, file_size=info.st_size)
            buf = bytearray(_LENGTH_BYTES + length)
            buf[:_LENGTH_BYTES] = prefix
            got = _read_into(handle, memoryview(buf)[_LENGTH_BYTES:])
    except FileNotFoundError as e:
        raise NotFoundError(f"no such file: {file}") from e
    except OSError as e:
        raise InputError(f"cannot read {file}: {e.strerror or e}") from e
    if got != length:
        raise InputError(f"{file} changed while it was read: header ended after {got} of {length} bytes")
    return parse_header(buf, file_size=info.st_size)


def parse_header(buf: bytes | bytearray | memoryview, *, file_size: int) -> SafetensorsHeader:
    """Validate the header held in ``buf``, which starts at byte 0 of a file of ``file_size`` bytes.

    ``buf`` may be the whole file (the loader parses the bytes it hashed) or only its first ``8 + N``
    bytes (``read_header``). The checks, in order: header length and cap, leading ``{``, strict UTF-8,
    nesting depth and token budget on the raw bytes, strict JSON (no duplicate keys, no NaN), the shape of
    each entry, offsets contiguous from 0 with exact sizes, and the data covering the file exactly.

    Raises:
        InputError: naming the rule that failed and, where there is one, the tensor.
    """
    view = memoryview(buf).cast("B")
    length = _header_length(view[:_LENGTH_BYTES], file_size=file_size)
    if len(view) < _LENGTH_BYTES + length:
        raise InputError(
            f"buffer holds {len(view)} bytes, less than the {_LENGTH_BYTES + length}-byte header"
        )
    document = load_header_json(bytes(view[_LENGTH_BYTES : _LENGTH_BYTES + length]), budget=_JSON_BUDGET)
    metadata = _validate_metadata(document.pop("__metadata__", {}))
    if len(document) > MAX_TENSORS:
        raise InputError(f"header has {len(document)} tensors; MAX_TENSORS is {MAX_TENSORS}")
    tensors = _validate_tensors(document)
    data_end = _check_offsets(tensors)
    _check_coverage(data_end, header_size=length, file_size=file_size)
    return SafetensorsHeader(header_size=length, file_size=file_size, tensors=tensors, metadata=metadata)


def read_scalars(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, header: SafetensorsHeader
) -> dict[str, float]:
    """Return the values of the 0-dim tensors (kohya ``.alpha``) of ``header``, read at their exact offsets.

    ``source`` is the file's path or a buffer of the whole file. Only float (F16, BF16, F32, F64) and
    integer scalars are read; each read is a few bytes, so the tensor data stays unread.

    Raises:
        InputError: the source is shorter than the header says, or cannot be read.
    """
    wanted = [t for t in header.tensors.values() if t.shape == () and t.dtype in _SCALAR_FORMATS]
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        if len(view) < header.file_size:
            raise InputError(f"buffer holds {len(view)} bytes; the header describes {header.file_size}")
        base = header.data_offset
        return {t.name: _decode_scalar(t, bytes(view[base + t.begin : base + t.end])) for t in wanted}
    return _read_scalars_from_file(Path(source), header, wanted)


# --- framing ------------------------------------------------------------------------------------------


def _header_length(prefix: bytes | memoryview, *, file_size: int) -> int:
    """Check the 8-byte prefix against the file size and return N; recognise foreign formats first."""
    if file_size == 0:
        raise InputError("file is empty; a safetensors file starts with an 8-byte header length")
    if file_size < _LENGTH_BYTES or len(prefix) < _LENGTH_BYTES:
        refuse_foreign_magic(bytes(prefix))
        raise InputError(
            f"file is {file_size} bytes, shorter than the 8-byte header length of a safetensors file"
        )
    length = int.from_bytes(prefix[:_LENGTH_BYTES], "little")
    if length > MAX_HEADER_BYTES or _LENGTH_BYTES + length > file_size:
        refuse_foreign_magic(bytes(prefix[:_LENGTH_BYTES]))
    if length > MAX_HEADER_BYTES:
        raise PayloadTooLargeError(
            f"header length {length} bytes exceeds MAX_HEADER_BYTES ({MAX_HEADER_BYTES} bytes)"
        )
    if _LENGTH_BYTES + length > file_size:
        raise InputError(f"header length {length} bytes runs past the end of the {file_size}-byte file")
    if length < 2:
        raise InputError(f"header length is {length} bytes; the smallest header, '{{}}', has 2")
    return length


def _read_into(handle: io.RawIOBase, target: memoryview) -> int:
    """Fill ``target`` from ``handle`` (a raw file may return short reads); return the bytes read."""
    done = 0
    while done < len(target) and (count := handle.readinto(target[done:])):
        done += count
    return done


def _check_coverage(data_end: int, *, header_size: int, file_size: int) -> None:
    expected = _LENGTH_BYTES + header_size + data_end
    if expected < file_size:
        raise InputError(
            f"file has {file_size - expected} trailing bytes after the tensor data (data ends at byte "
            f"{expected}, file has {file_size}); safetensors data must cover the file exactly"
        )
    if expected > file_size:
        raise InputError(f"tensor data ends at byte {expected} but the file has only {file_size} bytes")


# --- entries ------------------------------------------------------------------------------------------

# C0 controls except tab/newline/CR, DEL, C1 controls, and the bidi embeddings/overrides/isolates that
# reorder displayed text (Trojan Source). No tensor name or metadata key has a use for them (metadata
# values may hold them: they are kept and escaped when shown).
_HOSTILE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _checked_text(text: str, *, what: str, limit: int, limit_name: str, keep_controls: bool = False) -> str:
    """Refuse over-long text, lone surrogates and (unless ``keep_controls``) control/bidi characters."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise InputError(f"{what} holds a lone surrogate (\\u{ord(text[e.start]):04x}); not UTF-8") from e
    if size > limit:
        raise PayloadTooLargeError(f"{what} is {size} bytes; {limit_name} is {limit}")
    hostile = None if keep_controls else _HOSTILE_CHARS.search(text)
    if hostile:
        raise InputError(
            f"{what} holds the control character U+{ord(hostile.group()):04X} at {hostile.start()}"
        )
    return text


def _check_texts(texts: list[str], *, what: str, limit: int, limit_name: str) -> None:
    """:func:`_checked_text` for many strings with one C-level pass; the per-string path runs only to
    name the culprit. ``what`` has a ``{}`` for the quoted string."""
    joined = "/".join(texts)
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        suspicious = True
    else:
        too_long = max(map(len, texts), default=0) * 4 > limit  # 4: the most UTF-8 bytes of a character
        suspicious = too_long or _HOSTILE_CHARS.search(joined) is not None
    if suspicious:
        for text in texts:
            _checked_text(text, what=what.format(_label(text)), limit=limit, limit_name=limit_name)


def _validate_metadata(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise InputError(f"__metadata__ must be an object of strings, found {_json_type(metadata)}")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InputError(
            f"__metadata__ has {len(metadata)} entries; MAX_METADATA_ENTRIES is {MAX_METADATA_ENTRIES}"
        )
    _check_texts(
        list(metadata), what="__metadata__ key {}", limit=MAX_NAME_BYTES, limit_name="MAX_NAME_BYTES"
    )
    for key, value in metadata.items():
        what = f"__metadata__ key {_label(key)}: value"
        if not isinstance(value, str):
            raise InputError(f"{what} must be a string, found {_json_type(value)}")
        # Untrusted text that real trainers fill with mojibake (``donâ\x80\x99t``) and escapes: control
        # and bidi characters are kept (printers escape them); only size and UTF-8 are checked.
        _checked_text(
            value,
            what=what,
            limit=MAX_METADATA_VALUE_BYTES,
            limit_name="MAX_METADATA_VALUE_BYTES",
            keep_controls=True,
        )
    return metadata


def _validate_tensors(document: dict[str, Any]) -> dict[str, TensorInfo]:
    """Validate every tensor entry: a fast path for valid ones, the checked path to explain a failure."""
    _check_texts(list(document), what="tensor {}: name", limit=MAX_NAME_BYTES, limit_name="MAX_NAME_BYTES")
    tensors = {}
    for name, entry in document.items():
        info = _fast_tensor(name, entry)
        tensors[name] = info if info is not None else _checked_tensor(name, entry)
    return tensors


def _fast_tensor(name: str, entry: object) -> TensorInfo | None:
    """The entry as a TensorInfo if it is valid (offsets aside), else ``None``; no message built."""
    if type(entry) is not dict or entry.keys() != _TENSOR_FIELDS:
        return None
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if type(dtype) is not str or dtype not in DTYPE_BITS:
        return None
    if not (_is_u64_list(shape, MAX_TENSOR_DIMS) and _is_u64_list(offsets, 2) and len(offsets) == 2):
        return None
    bits = _bits(shape, DTYPE_BITS[dtype])
    begin, end = offsets
    if bits is None or bits % 8 or (end >= begin and end - begin != bits // 8):
        return None
    return TensorInfo(name=name, dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def _is_u64_list(value: object, max_len: int) -> bool:
    return (
        type(value) is list
        and len(value) <= max_len
        and all(type(item) is int and 0 <= item < _USIZE_LIMIT for item in value)
    )


def _checked_tensor(name: str, entry: object) -> TensorInfo:
    """Check one entry rule by rule and raise naming the first that fails (the slow, explaining path)."""
    where = f"tensor {_label(name)}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: entry must be an object, found {_json_type(entry)}")
    if entry.keys() != _TENSOR_FIELDS:
        missing, unknown = sorted(_TENSOR_FIELDS - entry.keys()), sorted(entry.keys() - _TENSOR_FIELDS)
        raise InputError(
            f"{where}: fields must be dtype, shape, data_offsets (missing {missing}, unknown {unknown})"
        )
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise InputError(f"{where}: dtype {dtype!r} is not a safetensors dtype ({', '.join(DTYPE_BITS)})")
    shape = _int_list(entry["shape"], where=f"{where}: shape", max_len=MAX_TENSOR_DIMS)
    offsets = _int_list(entry["data_offsets"], where=f"{where}: data_offsets", max_len=2)
    if len(offsets) != 2:
        raise InputError(f"{where}: data_offsets must be [begin, end], found {offsets}")
    begin, end = offsets
    info = TensorInfo(name=name, dtype=dtype, shape=tuple(shape), begin=begin, end=end)
    expected = _expected_nbytes(info, where=where)
    if end >= begin and info.nbytes != expected:
        raise InputError(
            f"{where}: data_offsets [{begin}, {end}] span {info.nbytes} bytes; "
            f"{dtype} {list(shape)} needs {expected}"
        )
    return info


def _int_list(value: object, *, where: str, max_len: int) -> list[int]:
    """Return ``value`` as a list of u64 ints (not bools, not floats) of at most ``max_len`` items."""
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list of integers, found {_json_type(value)}")
    if len(value) > max_len:
        raise InputError(f"{where} has {len(value)} items; at most {max_len} allowed")
    for item in value:
        if type(item) is not int or not 0 <= item < _USIZE_LIMIT:
            raise InputError(
                f"{where} must hold integers in [0, 2^64) written without sign, fraction or exponent, "
                f"found {str(item)[:40]}"
            )
    return value


def _bits(shape: list[int] | tuple[int, ...], bitsize: int) -> int | None:
    """Bits of a tensor, or ``None`` when the crate's checked arithmetic overflows: the element count is
    multiplied dimension by dimension and checked at every step (so a later zero cannot hide an overflow),
    then multiplied by the dtype's bit size (``Metadata::validate``, ST ``tensor.rs``)."""
    elements = 1
    for dim in shape:
        elements *= dim
        if elements >= _USIZE_LIMIT:
            return None
    bits = elements * bitsize
    return bits if bits < _USIZE_LIMIT else None


def _expected_nbytes(info: TensorInfo, *, where: str) -> int:
    bits = _bits(info.shape, DTYPE_BITS[info.dtype])
    if bits is None:
        raise InputError(f"{where}: shape {list(info.shape)} of {info.dtype} overflows 64 bits")
    if bits % 8:
        raise InputError(
            f"{where}: {info.dtype} {list(info.shape)} is {bits} bits, not a whole number of bytes"
        )
    return bits // 8


def _check_offsets(tensors: dict[str, TensorInfo]) -> int:
    """Offsets, sorted as the crate sorts them, must tile [0, end) with no hole or overlap; return end."""
    previous_end = 0
    for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if info.begin != previous_end or info.end < info.begin:
            raise InputError(
                f"tensor {_label(info.name)}: data_offsets [{info.begin}, {info.end}] do not follow "
                f"previous end {previous_end}"
            )
        previous_end = info.end
    return previous_end


def _label(name: str) -> str:
    """Quote a name for a message, shortened so a hostile name cannot flood the error line."""
    shown = name if len(name) <= 80 else name[:77] + "..."
    return f"'{shown}'"


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- scalars ------------------------------------------------------------------------------------------

_SCALAR_FORMATS = {
    "F16": "<e", "F32": "<f", "F64": "<d", "BF16": "bf16",
    "I8": "<b", "U8": "<B", "I16": "<h", "U16": "<H", "I32": "<i", "U32": "<I", "I64": "<q", "U64": "<Q",
}  # fmt: skip


def _decode_scalar(info: TensorInfo, raw: bytes) -> float:
    fmt = _SCALAR_FORMATS[info.dtype]
    if fmt == "bf16":  # bfloat16 is the high half of a float32; little-endian puts it last
        fmt, raw = "<f", b"\x00\x00" + raw
    return float(struct.unpack(fmt, raw)[0])


def _read_scalars_from_file(
    file: Path, header: SafetensorsHeader, wanted: list[TensorInfo]
) -> dict[str, float]:
    result: dict[str, float] = {}
    try:
        with file.open("rb", buffering=0) as handle:  # unbuffered: read the scalar bytes and no more
            size = os.fstat(handle.fileno()).st_size
            if size != header.file_size:
                raise InputError(f"{file} is {size} bytes now; its header was read at {header.file_size}")
            for info in wanted:
                handle.seek(header.data_offset + info.begin)
                raw = handle.read(info.nbytes)
                if len(raw) != info.nbytes:
                    raise InputError(
                        f"{file} changed while it was read: tensor {_label(info.name)} is cut short"
                    )
                result[info.name] = _decode_scalar(info, raw)
    except FileNotFoundError as e:
        raise NotFoundError(f"no such file: {file}") from e
    except OSError as e:
        raise InputError(f"cannot read {file}: {e.strerror or e}") from e
    return result
