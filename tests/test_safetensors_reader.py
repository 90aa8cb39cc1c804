"""The strict header reader on valid files, scalar reads, and the refusal of pickles and other formats."""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lorareg.adapter.foreign_formats import PICKLE_SUFFIXES
from lorareg.adapter.safetensors import (
    DTYPE_BITS,
    MAX_HEADER_BYTES,
    TensorInfo,
    parse_header,
    read_header,
    read_scalars,
)
from lorareg.errors import InputError, NotFoundError
from tests.support.safetensors_builders import entry, header_bytes, safetensors_bytes, valid_lora_bytes, write

_SLACK = 4  # bytes


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _bytes_read_by(action: Callable[[], object]) -> int:
    """Bytes this process read through read(2) during ``action`` (Linux ``/proc/self/io``), net of the
    reads of ``/proc/self/io`` itself."""
    start = _rchar()
    overhead = _rchar() - start
    before = _rchar()
    action()
    return _rchar() - before - overhead


@pytest.fixture
def saved_lora(tmp_path: Path) -> Path:
    """A file written by the safetensors package itself, with scalars, an empty tensor and metadata."""
    tensors = {
        "lora_unet_down.alpha": np.array(8.0, dtype=np.float16),
        "lora_unet_down.lora_down.weight": np.arange(32, dtype=np.float32).reshape(4, 8),
        "lora_unet_down.lora_up.weight": np.ones((8, 4), dtype=np.float16),
        "step": np.array(1200, dtype=np.int64),
        "scale64": np.array(0.25, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.int8),
    }
    path = tmp_path / "saved.safetensors"
    save_file(tensors, str(path), metadata={"ss_network_dim": "4", "ss_output_name": "ink"})
    return path


def test_saved_file_lists_every_tensor_with_dtype_shape_and_offsets(saved_lora: Path) -> None:
    header = read_header(saved_lora)
    assert header.file_size == saved_lora.stat().st_size
    assert set(header.tensors) == {
        "lora_unet_down.alpha",
        "lora_unet_down.lora_down.weight",
        "lora_unet_down.lora_up.weight",
        "step",
        "scale64",
        "empty",
    }
    down = header.tensors["lora_unet_down.lora_down.weight"]
    assert (down.dtype, down.shape, down.nbytes) == ("F32", (4, 8), 128)
    assert header.tensors["lora_unet_down.alpha"].shape == ()
    assert header.tensors["empty"].shape == (0, 3) and header.tensors["empty"].nbytes == 0
    assert header.metadata == {"ss_network_dim": "4", "ss_output_name": "ink"}
    last_end = max(t.end for t in header.tensors.values())
    assert header.data_offset + last_end == header.file_size
    assert header.data_offset == 8 + int.from_bytes(saved_lora.read_bytes()[:8], "little")


def test_parse_header_of_the_whole_file_equals_read_header(saved_lora: Path) -> None:
    content = saved_lora.read_bytes()
    from_buffer = parse_header(content, file_size=len(content))
    assert from_buffer == read_header(saved_lora)
    prefix_only = content[: from_buffer.data_offset]
    assert parse_header(memoryview(prefix_only), file_size=len(content)) == from_buffer


def test_read_header_reads_only_the_header_bytes(tmp_path: Path) -> None:
    header = {"big": entry("U8", [64 * 2**20], 0, 64 * 2**20)}
    path = write(tmp_path / "big.safetensors", safetensors_bytes(header_bytes(header, pad_to=8)))
    with path.open("r+b") as handle:  # a sparse 64 MiB data region
        handle.truncate(8 + len(header_bytes(header, pad_to=8)) + 64 * 2**20)
    parsed = read_header(path)
    # Exactly 8 + N bytes; the slack only absorbs a digit more in /proc/self/io's own text.
    assert parsed.data_offset <= _bytes_read_by(lambda: read_header(path)) <= parsed.data_offset + _SLACK
    assert parsed.tensors["big"].nbytes == 64 * 2**20


def test_read_scalars_reads_alpha_values_in_every_scalar_dtype(tmp_path: Path) -> None:
    values = {
        "f16": ("F16", struct.pack("<e", 0.5)),
        "bf16": ("BF16", struct.pack("<f", -3.0)[2:]),  # bfloat16: the high half of the float32
        "f32": ("F32", struct.pack("<f", 16.0)),
        "f64": ("F64", struct.pack("<d", 1e-3)),
        "i8": ("I8", struct.pack("<b", -7)),
        "u8": ("U8", struct.pack("<B", 200)),
        "i32": ("I32", struct.pack("<i", -70000)),
        "u64": ("U64", struct.pack("<Q", 2**40)),
    }
    header, data = {}, b""
    for name, (dtype, raw) in values.items():
        header[name] = entry(dtype, [], len(data), len(data) + len(raw))
        data += raw
    header["not_scalar"] = entry("F32", [1], len(data), len(data) + 4)
    header["fp8_scalar"] = entry("F8_E4M3", [], len(data) + 4, len(data) + 5)
    content = safetensors_bytes(header, data + b"\x00\x00\x80\x3f" + b"\x01")
    path = write(tmp_path / "scalars.safetensors", content)
    parsed = read_header(path)
    expected = {"f16": 0.5, "bf16": -3.0, "f32": 16.0, "f64": 1e-3, "i8": -7.0, "u8": 200.0, "i32": -70000.0}
    expected["u64"] = float(2**40)
    assert read_scalars(path, parsed) == expected
    assert read_scalars(content, parsed) == expected


def test_read_scalars_reads_only_the_scalar_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "lora.safetensors", valid_lora_bytes())
    parsed = read_header(path)
    assert read_scalars(path, parsed) == {"lora_unet_mid_block_attn.alpha": 1.0}
    assert 2 <= _bytes_read_by(lambda: read_scalars(path, parsed)) <= 2 + _SLACK


def test_read_scalars_refuses_a_file_that_changed_size(tmp_path: Path) -> None:
    path = write(tmp_path / "lora.safetensors", valid_lora_bytes())
    parsed = read_header(path)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InputError, match="bytes now"):
        read_scalars(path, parsed)
    with pytest.raises(InputError, match="buffer holds"):
        read_scalars(valid_lora_bytes()[:-1], parsed)


def test_sub_byte_dtypes_are_sized_by_bits() -> None:
    header = {
        "f4": entry("F4", [2, 3], 0, 3),
        "f6": entry("F6_E2M3", [4], 3, 6),
        "c64": entry("C64", [1], 6, 14),
    }
    parsed = parse_header(safetensors_bytes(header, bytes(14)), file_size=8 + len(header_bytes(header)) + 14)
    assert [t.nbytes for t in parsed.tensors.values()] == [3, 3, 8]
    assert DTYPE_BITS["F4"] == 4 and DTYPE_BITS["F6_E3M2"] == 6 and len(DTYPE_BITS) == 22


def test_header_padded_with_spaces_and_empty_header_are_accepted() -> None:
    padded = safetensors_bytes(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}      ', b"x")
    assert parse_header(padded, file_size=len(padded)).tensors["a"] == TensorInfo("a", "U8", (1,), 0, 1)
    empty = safetensors_bytes(b"{}")
    parsed = parse_header(empty, file_size=len(empty))
    assert parsed.tensors == {} and parsed.metadata == {}


def test_metadata_markup_and_scripts_are_kept_verbatim_as_untrusted_text() -> None:
    # Markup is inert text: refusing '<' would refuse real descriptions. Escaping is the printer's job.
    text = "<script>alert(1)</script> <b>ink</b> — نص 👩‍🎨 \t\n"
    content = safetensors_bytes({"__metadata__": {"modelspec.description": text}})
    assert parse_header(content, file_size=len(content)).metadata == {"modelspec.description": text}


MOJIBAKE_AND_ESCAPES = {
    "ss_training_comment": "don\u00e2\u0080\u0099t",  # latin-1 mojibake of a UTF-8 apostrophe (C1 chars)
    "modelspec.title": "\x1b[1mInk\x1b[0m",  # an ESC from a coloured terminal paste
    "ss_output_name": "nul\x00 bell\x07 del\x7f csi\x9b31m bidi\u202eexe",
}


def test_metadata_values_with_control_and_c1_characters_are_kept_not_refused() -> None:
    # False refusals of real files (issue 11 item 15): metadata values are untrusted text, kept verbatim.
    header = {"__metadata__": MOJIBAKE_AND_ESCAPES, "w": entry("U8", [2], 0, 2)}
    content = safetensors_bytes(header, b"ab")
    assert parse_header(content, file_size=len(content)).metadata == MOJIBAKE_AND_ESCAPES


@pytest.mark.parametrize("name", ["w\x1b[2J", "w\x9b", "w\u202e", "w\x00"], ids=["esc", "c1", "bidi", "nul"])
def test_tensor_names_and_metadata_keys_with_control_characters_stay_refused(name: str) -> None:
    as_tensor = safetensors_bytes({name: entry("U8", [0], 0, 0)})
    with pytest.raises(InputError, match="control character"):
        parse_header(as_tensor, file_size=len(as_tensor))
    as_key = safetensors_bytes({"__metadata__": {name: "v"}})
    with pytest.raises(InputError, match="control character"):
        parse_header(as_key, file_size=len(as_key))


def test_tensor_order_follows_the_header_not_the_offsets() -> None:
    header = {"z": entry("U8", [1], 1, 2), "a": entry("U8", [1], 0, 1)}
    content = safetensors_bytes(header, b"ab")
    assert list(parse_header(content, file_size=len(content)).tensors) == ["z", "a"]


def test_max_header_bytes_is_generous_for_real_headers_and_below_the_autov3_quirk() -> None:
    assert 400_000 * 20 < MAX_HEADER_BYTES < 16 * 2**20


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        read_header(tmp_path / "absent.safetensors")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        read_header(tmp_path)


# --- pickles and other formats ---------------------------------------------------------------------


class _Tripwire:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_named_safetensors_is_refused_and_never_loaded(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pickle-was-loaded"
    path = write(tmp_path / "innocent.safetensors", pickle.dumps(_Tripwire(marker), protocol=protocol))
    with pytest.raises(InputError, match=rf"pickle \(protocol {protocol}\).*safetensors\.torch\.save_file"):
        read_header(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES + (".CKPT", ".Pt"))
def test_pickle_file_names_are_refused_whatever_the_bytes(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"model{suffix}", valid_lora_bytes())
    with pytest.raises(InputError, match="pickles, which can run code.*save_file"):
        read_header(path)


def test_torch_zip_archive_is_refused_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        archive.writestr("archive/version", "3\n")
    with pytest.raises(InputError, match="ZIP archive.*pickle.*save_file"):
        read_header(path)


@pytest.mark.parametrize(
    ("magic", "expected"),
    [
        (b"GGUF\x03\x00\x00\x00", "GGUF"),
        (b"\x93NUMPY\x01\x00", "NumPy"),
        (b"\x89HDF\r\n\x1a\n", "HDF5"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
    ],
    ids=["gguf", "npy", "hdf5", "gzip"],
)
def test_other_formats_are_named_in_the_refusal(tmp_path: Path, magic: bytes, expected: str) -> None:
    path = write(tmp_path / "adapter.safetensors", magic + bytes(64))
    with pytest.raises(InputError, match=expected):
        read_header(path)


def test_valid_file_whose_length_looks_like_pickle_magic_is_still_read() -> None:
    # A 640-byte header starts with 80 02: the pickle protocol-2 magic. The framing decides, not the magic.
    raw = header_bytes({"t": entry("U8", [1], 0, 1), "__metadata__": {"pad": "x" * 560}})
    raw += b" " * (640 - len(raw))
    content = safetensors_bytes(raw, b"\x00")
    assert content[:2] == b"\x80\x02"
    assert parse_header(content, file_size=len(content)).header_size == 640
