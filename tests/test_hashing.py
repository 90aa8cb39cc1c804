"""The six hashes match their definitions computed directly, for any chunking, in bounded memory."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
import zlib
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lorareg.adapter.hashing import (
    AUTOV3_HEADER_QUIRK_BYTES,
    CHUNK_BYTES,
    HASH_NAMES,
    FileHashes,
    StreamHasher,
    ThreadedStreamHasher,
    hash_file,
)
from lorareg.errors import NotFoundError
from tests.support.safetensors_builders import entry, header_bytes, safetensors_bytes, valid_lora_bytes

MIB = 2**20


def _lora_of(data_bytes: int, *, seed: int = 0) -> bytes:
    """A valid safetensors file with ``data_bytes`` of pseudo-random U8 data and some metadata."""
    header = header_bytes(
        {"__metadata__": {"ss_output_name": "ink"}, "w": entry("U8", [data_bytes], 0, data_bytes)}, pad_to=8
    )
    return safetensors_bytes(header, random.Random(seed).randbytes(data_bytes))


def _direct(content: bytes) -> FileHashes:
    """The definitions of LORA_FORMATS.md §6, computed directly with hashlib, zlib and blake3."""
    sha256 = hashlib.sha256(content).hexdigest()
    header_length = int.from_bytes(content[:8], "little")
    start = 8 + header_length if header_length < 16 * MIB else 8
    return FileHashes(
        sha256=sha256,
        autov1=hashlib.sha256(content[0x100000:0x110000]).hexdigest()[:8]
        if len(content) >= 2 * MIB
        else None,
        autov2=sha256[:10],
        autov3=hashlib.sha256(content[start:]).hexdigest(),
        crc32=zlib.crc32(content).to_bytes(4, "little").hex(),
        blake3=blake3.blake3(content).hexdigest(),
    )


@pytest.fixture(scope="module")
def big_lora() -> bytes:
    return _lora_of(3 * MIB + 12345)


def test_small_file_hashes_match_their_definitions_and_have_no_autov1(tmp_path: Path) -> None:
    content = valid_lora_bytes()
    path = tmp_path / "small.safetensors"
    path.write_bytes(content)
    hashes = hash_file(path)
    assert hashes == _direct(content)
    assert hashes.autov1 is None
    data_start = 8 + int.from_bytes(content[:8], "little")
    assert hashes.autov3 == hashlib.sha256(content[data_start:]).hexdigest()


def test_file_over_2_mib_hashes_match_their_definitions(tmp_path: Path, big_lora: bytes) -> None:
    path = tmp_path / "big.safetensors"
    path.write_bytes(big_lora)
    hashes = hash_file(path)
    assert hashes == _direct(big_lora)
    assert hashes.autov1 == hashlib.sha256(big_lora[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]


def test_autov3_ignores_metadata_edits_and_sha256_does_not() -> None:
    one = _lora_of(1000)
    other = safetensors_bytes(
        header_bytes({"__metadata__": {"ss_output_name": "renamed"}, "w": entry("U8", [1000], 0, 1000)}),
        one[-1000:],
    )
    a, b = _hash_stream(one), _hash_stream(other)
    assert a.autov3 == b.autov3
    assert a.sha256 != b.sha256


@pytest.mark.parametrize("size", [2 * MIB - 1, 2 * MIB], ids=["just-under-2MiB", "exactly-2MiB"])
def test_autov1_starts_at_exactly_2_mib(size: int) -> None:
    content = random.Random(size).randbytes(size)
    assert (_hash_stream(content).autov1 is None) == (size < 2 * MIB)
    assert _hash_stream(content) == _direct(content)


@pytest.mark.parametrize(
    ("header_length", "autov3_start"),
    [(AUTOV3_HEADER_QUIRK_BYTES - 1, 8 + AUTOV3_HEADER_QUIRK_BYTES - 1), (AUTOV3_HEADER_QUIRK_BYTES, 8)],
    ids=["header-just-under-16MiB", "header-of-16MiB-quirk"],
)
def test_autov3_quirk_hashes_from_byte_8_when_the_header_is_16_mib(
    header_length: int, autov3_start: int
) -> None:
    content = header_length.to_bytes(8, "little") + bytes(header_length) + b"tensor data"
    assert _hash_stream(content).autov3 == hashlib.sha256(content[autov3_start:]).hexdigest()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x01", b"7 bytes", b"\xff" * 8, b"\x10\x00\x00\x00\x00\x00\x00\x00{}"],
    ids=["empty", "one-byte", "seven-bytes", "length-past-end", "header-past-end"],
)
def test_any_bytes_can_be_hashed_even_if_not_safetensors(content: bytes) -> None:
    hashes = _hash_stream(content)
    assert hashes.sha256 == hashlib.sha256(content).hexdigest()
    assert hashes.autov3 == hashlib.sha256(b"").hexdigest()  # no tensor data: nothing after the header


def test_crc32_is_spelled_as_civitai_spells_it_little_endian() -> None:
    # zlib says 0x0d4a1185; Civitai's scanner (.NET Crc32.GetCurrentHash) prints the little-endian bytes.
    assert zlib.crc32(b"hello world") == 0x0D4A1185
    assert _hash_stream(b"hello world").crc32 == "85114a0d"


def test_hashes_are_lower_case_hex_of_the_right_lengths(big_lora: bytes) -> None:
    hashes = _hash_stream(big_lora)
    lengths = {"sha256": 64, "autov1": 8, "autov2": 10, "autov3": 64, "crc32": 8, "blake3": 64}
    for name in HASH_NAMES:
        value = getattr(hashes, name)
        assert len(value) == lengths[name] and value == value.lower()
        int(value, 16)
    assert list(hashes.to_json()) == list(HASH_NAMES)


_BIG_FOR_CHUNKS = _lora_of(2 * MIB + 777, seed=7)
_EXPECTED_FOR_CHUNKS = _direct(_BIG_FOR_CHUNKS)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.integers(min_value=0, max_value=3 * MIB), max_size=12), st.integers(0, 2))
def test_stream_hasher_gives_identical_results_for_any_chunk_boundaries(cuts: list[int], tiny: int) -> None:
    content = _BIG_FOR_CHUNKS
    # Cuts anywhere, plus a few inside the 8-byte length prefix and around the AutoV1 window.
    points = sorted({0, len(content), *(c % len(content) for c in cuts), *range(1, 1 + 3 * tiny, 3)})
    hasher = StreamHasher()
    for begin, end in zip(points, points[1:], strict=False):
        hasher.update(content[begin:end])
    assert hasher.size == len(content)
    assert hasher.finish() == _EXPECTED_FOR_CHUNKS


def test_threaded_hasher_equals_the_inline_hasher(big_lora: bytes) -> None:
    with ThreadedStreamHasher() as threaded:
        for begin in range(0, len(big_lora), 1 * MIB + 3):
            threaded.update(big_lora[begin : begin + 1 * MIB + 3])
        assert threaded.finish() == _hash_stream(big_lora) == _direct(big_lora)


def test_hash_file_memory_stays_at_a_few_chunks(tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    with path.open("wb") as handle:
        block = random.Random(1).randbytes(MIB)
        for _ in range(64):
            handle.write(block)
    tracemalloc.start()
    try:
        hash_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, (
        f"peak {peak / MIB:.0f} MiB while hashing 64 MiB in {CHUNK_BYTES / MIB:g} MiB chunks"
    )


def test_hash_file_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        hash_file(tmp_path / "absent.safetensors")


def _hash_stream(content: bytes) -> FileHashes:
    hasher = StreamHasher()
    hasher.update(content)
    return hasher.finish()
