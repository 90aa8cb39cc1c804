"""Hostile safetensors files: each is refused with an InputError naming the rule, fast and in bounded memory.

One table drives three tests: the library (``read_header``: error, time, Python heap peak), peak RSS of a
child process for the cases that claim or hold something large, and the CLI (``lorareg inspect`` exits 2
with exactly one ``error:`` line on stderr).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lorareg.adapter.safetensors import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE_BYTES,
    MAX_NAME_BYTES,
    MAX_TENSORS,
    parse_header,
    read_header,
)
from lorareg.errors import InputError
from tests.support.safetensors_builders import entry, safetensors_bytes, valid_lora_bytes

TIME_LIMIT_S = 2.0
# A few copies of the largest header MAX_HEADER_BYTES admits, whatever size the file claims.
HEAP_LIMIT_BYTES = 96 * 2**20
RSS_GROWTH_LIMIT_BYTES = 128 * 2**20


@dataclass(frozen=True)
class Hostile:
    """A hostile file: ``build`` writes it at the path; ``expect`` is a regex of the refusal."""

    id: str
    build: Callable[[Path], None]
    expect: str
    big: bool = False


def _content(content: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content() if callable(content) else content)


def _header(header: dict[str, object] | bytes, data: bytes = b"") -> Callable[[Path], None]:
    return _content(lambda: safetensors_bytes(header, data))


def _claim(length: int, *, size: int | None = None) -> Callable[[Path], None]:
    """A file whose first 8 bytes claim a header of ``length`` bytes; sparse up to ``size`` bytes."""

    def build(path: Path) -> None:
        path.write_bytes(length.to_bytes(8, "little") + b"{")
        if size is not None:
            os.truncate(path, size)

    return build


def _tensor(**fields: object) -> Callable[[Path], None]:
    """One tensor 'w' (U8 [4] at [0, 4] unless overridden) and 4 bytes of data."""
    raw = entry("U8", [4], 0, 4) | fields
    return _header({"w": raw}, b"\x00" * 4)


def _metadata(metadata: object) -> Callable[[Path], None]:
    return _header({"__metadata__": metadata})


def _raw_metadata_value(json_value: str) -> Callable[[Path], None]:
    return _header(b'{"__metadata__":{"k":' + json_value.encode() + b"}}")


def _many_zero_size_tensors(count: int) -> bytes:
    header = {f"{i:x}": entry("U8", [0], 0, 0) for i in range(count)}
    return safetensors_bytes(header)


def _nested(depth: int) -> bytes:
    """A header nested ``depth`` levels deep in all (two of them are the header and __metadata__)."""
    inner = depth - 2
    return safetensors_bytes(b'{"__metadata__":{"k":' + b"[" * inner + b"]" * inner + b"}}")


VALID = valid_lora_bytes()

CASES = [
    # framing
    Hostile("empty-file", _content(b""), "empty"),
    Hostile("seven-bytes", _content(b"\x02\x00\x00\x00\x00\x00\x00"), "shorter than the 8-byte"),
    Hostile("length-2^63", _claim(2**63), "MAX_HEADER_BYTES", big=True),
    Hostile("length-2^64-1", _claim(2**64 - 1), "MAX_HEADER_BYTES"),
    Hostile("header-claim-200MB", _claim(200_000_000, size=8 + 200_000_000), "MAX_HEADER_BYTES", big=True),
    Hostile("length-past-end-of-file", _claim(4096), "runs past the end"),
    Hostile("length-zero", _content(bytes(8) + b"{}"), "smallest header"),
    Hostile("header-not-starting-with-brace", _header(b' {"__metadata__":{}}'), r"start with '\{'"),
    Hostile("utf8-bom-before-brace", _header(b"\xef\xbb\xbf{}"), r"start with '\{'"),
    Hostile("trailing-bytes-after-data", _content(VALID + b"PK\x03\x04polyglot"), "trailing bytes"),
    Hostile("data-cut-short", _content(VALID[:-1]), "has only"),
    Hostile("pickle-protocol-2", _content(pickle.dumps({"a": 1}, protocol=2)), "pickle"),
    Hostile("pickle-protocol-5", _content(pickle.dumps(list(range(100)), protocol=5)), "pickle"),
    Hostile("zip-archive", _content(b"PK\x03\x04\x14\x00\x00\x00" + bytes(100)), "ZIP"),
    # text and JSON
    Hostile("invalid-utf8", _header(b'{"__metadata__":{"k":"\xff"}}'), "UTF-8"),
    Hostile("overlong-utf8-slash", _header(b'{"__metadata__":{"k":"\xc0\xaf"}}'), "UTF-8"),
    Hostile("utf8-encoded-surrogate", _header(b'{"__metadata__":{"k":"\xed\xa0\x80"}}'), "UTF-8"),
    Hostile("escaped-lone-surrogate", _raw_metadata_value('"\\ud800"'), "surrogate"),
    Hostile("truncated-json", _header(b'{"__metadata__":{"k":"v"}'), "not valid JSON"),
    Hostile("garbage-after-json", _header(b'{"__metadata__":{}} x'), "after the JSON object"),
    Hostile("nul-padding", _header(b'{"__metadata__":{}}\x00\x00\x00'), "after the JSON object"),
    Hostile(
        "duplicate-tensor-key",
        _header(
            b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"w":{"dtype":"U8","shape":[0],'
            b'"data_offsets":[0,0]}}'
        ),
        "repeats the key 'w'",
    ),  # fmt: skip
    Hostile("duplicate-metadata-key", _header(b'{"__metadata__":{"k":"a","k":"b"}}'), "repeats the key 'k'"),
    Hostile(
        "duplicate-dtype-field",
        _header(b'{"w":{"dtype":"U8","dtype":"F64","shape":[0],"data_offsets":[0,0]}}'),
        "repeats the key 'dtype'",
    ),
    Hostile("nan-in-shape", _header(b'{"w":{"dtype":"U8","shape":[NaN],"data_offsets":[0,0]}}'), "NaN"),
    Hostile(
        "infinity-in-offsets",
        _header(b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,Infinity]}}'),
        "Infinity",
    ),  # fmt: skip
    Hostile("deeply-nested-json-100k", _content(lambda: _nested(100_000)), "MAX_NESTING_DEPTH", big=True),
    Hostile("nested-65-levels", _content(lambda: _nested(65)), "nests 65 levels"),
    Hostile(
        "integer-with-5000-digits",
        _header(b'{"w":{"dtype":"U8","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}'),
        "not valid JSON",
    ),
    # tensor entries
    Hostile("unknown-dtype", _tensor(dtype="F17"), "dtype 'F17' is not a safetensors dtype"),
    Hostile("lower-case-dtype", _tensor(dtype="u8"), "dtype 'u8'"),
    Hostile("dtype-not-a-string", _tensor(dtype=8), "dtype 8"),
    Hostile(
        "negative-dimension",
        _tensor(shape=[-4]),
        r"shape must hold integers in \[0, 2\^64\) written without sign",
    ),
    Hostile("boolean-dimension", _tensor(shape=[True, 4]), "found True"),
    Hostile("float-dimension", _tensor(shape=[4.0]), "found 4.0"),
    Hostile("shape-not-a-list", _tensor(shape="4"), "shape must be a list"),
    Hostile("seventeen-dimensions", _tensor(shape=[1] * 17), "17 items"),
    Hostile("dimension-of-2^64", _tensor(shape=[2**64]), r"\[0, 2\^64\)"),
    Hostile("shape-overflows-64-bits", _tensor(shape=[2**32, 2**32]), "overflows 64 bits"),
    Hostile(
        "shape-overflows-before-a-zero-dimension",
        _tensor(shape=[2**32, 2**32, 0], data_offsets=[0, 0]),
        "overflows 64 bits",
    ),
    Hostile(
        "negative-zero-offset", _header(b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[-0,0]}}'), "found -0"
    ),
    Hostile(
        "negative-zero-dimension",
        _header(b'{"w":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}}'),
        "found -0",
    ),
    Hostile(
        "exponent-dimension", _header(b'{"w":{"dtype":"U8","shape":[0e0],"data_offsets":[0,0]}}'), "found 0.0"
    ),
    Hostile(
        "negative-zero-fraction-offset",
        _header(b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,-0.0]}}'),
        "found -0.0",
    ),
    Hostile(
        "plus-signed-offset",
        _header(b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[+0,0]}}'),
        "not valid JSON",
    ),
    Hostile(
        "sub-byte-misaligned",
        _tensor(dtype="F4", shape=[3], data_offsets=[0, 2]),
        "not a whole number of bytes",
    ),  # fmt: skip
    Hostile("offsets-one-value", _tensor(data_offsets=[4]), r"must be \[begin, end\]"),
    Hostile("offsets-three-values", _tensor(data_offsets=[0, 2, 4]), "3 items"),
    Hostile("negative-offset", _tensor(data_offsets=[-1, 3]), "data_offsets must hold integers"),
    Hostile("size-mismatch", _tensor(dtype="F32", shape=[2]), r"span 4 bytes; F32 \[2\] needs 8"),
    Hostile(
        "end-before-begin",
        _header({"w": entry("U8", [0], 4, 0)}, b"\x00" * 4),
        "do not follow previous end 0",
    ),  # fmt: skip
    Hostile(
        "hole-before-first-tensor",
        _header({"lora_unet_x.alpha": entry("U8", [2], 2, 4)}, b"\x00" * 4),
        r"tensor 'lora_unet_x\.alpha': data_offsets \[2, 4\] do not follow previous end 0",
    ),
    Hostile(
        "overlapping-tensors",
        _header({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 1, 3)}, b"\x00" * 3),
        r"tensor 'b': data_offsets \[1, 3\] do not follow previous end 2",
    ),
    Hostile("missing-field", _header({"w": {"dtype": "U8", "shape": [0]}}), r"missing \['data_offsets'\]"),
    Hostile("unknown-field", _tensor(extra="x"), r"unknown \['extra'\]"),
    Hostile("entry-not-an-object", _header({"w": [0, 0]}), "entry must be an object"),
    Hostile(
        "tensor-name-too-long",
        _header({"w" * (MAX_NAME_BYTES + 1): entry("U8", [0], 0, 0)}),
        "MAX_NAME_BYTES",
    ),
    Hostile(
        "one-tensor-over-MAX_TENSORS",
        _content(lambda: _many_zero_size_tensors(MAX_TENSORS + 1)),
        f"MAX_TENSORS \\({MAX_TENSORS}\\)",  # the bracket budget catches it before parsing
        big=True,
    ),
    Hostile(
        "300000-zero-size-tensors",
        _content(lambda: _many_zero_size_tensors(300_000)),
        "MAX_TENSORS",
        big=True,
    ),
    Hostile(
        "shape-with-3M-items",
        _header(b'{"w":{"dtype":"U8","shape":[' + b"0," * 3_000_000 + b'0],"data_offsets":[0,0]}}'),
        "commas",
        big=True,
    ),  # fmt: skip
    Hostile(
        "800k-brackets",
        _header(b'{"__metadata__":{"k":[' + b"[]," * 400_000 + b"[]]}}"),
        "brackets",
        big=True,
    ),  # fmt: skip
    # metadata
    Hostile("metadata-not-an-object", _metadata(["a", "b"]), "__metadata__ must be an object"),
    Hostile("metadata-null", _metadata(None), "found null"),
    Hostile(
        "metadata-number-value", _metadata({"ss_network_dim": 4}), "value must be a string, found a number"
    ),
    Hostile("metadata-nested-object", _metadata({"ss": {"dim": "4"}}), "found an object"),
    Hostile("metadata-key-too-long", _metadata({"k" * (MAX_NAME_BYTES + 1): "v"}), "MAX_NAME_BYTES"),
    Hostile(
        "too-many-metadata-entries",
        _metadata({str(i): "" for i in range(MAX_METADATA_ENTRIES + 1)}),
        "MAX_METADATA_ENTRIES",
    ),  # fmt: skip
    Hostile(
        "600k-metadata-strings",
        _content(lambda: safetensors_bytes(b'{"__metadata__":{' + b'"":"",' * 300_000 + b'"":""}}')),
        "strings",
        big=True,
    ),  # fmt: skip
    Hostile(
        "metadata-value-over-value-cap",
        _content(
            lambda: safetensors_bytes(
                {"__metadata__": {"ss_tag_frequency": "x" * (MAX_METADATA_VALUE_BYTES + 1)}}
            )
        ),
        "MAX_METADATA_VALUE_BYTES",
        big=True,
    ),  # fmt: skip
    Hostile(
        "metadata-value-of-40MB",
        _content(lambda: safetensors_bytes({"__metadata__": {"modelspec.thumbnail": "A" * 40_000_000}})),
        "MAX_HEADER_BYTES",
        big=True,
    ),
    # hostile strings (metadata *values* with control characters are kept: test_safetensors_reader.py)
    Hostile("terminal-escape-in-metadata-key", _metadata({"\x1b[2Jk": "v"}), "U\\+001B"),
    Hostile("c1-csi-in-metadata-key", _metadata({"a\x9b31m": "v"}), "U\\+009B"),
    Hostile("bidi-isolate-in-metadata-key", _metadata({"a\u2066b": "v"}), "U\\+2066"),
    Hostile("nul-in-metadata-key", _metadata({"k\x00": "v"}), "U\\+0000"),
    Hostile("raw-control-byte-in-json-string", _header(b'{"__metadata__":{"k":"a\x1bb"}}'), "not valid JSON"),
    Hostile("bell-in-tensor-name", _header({"lora\x07": entry("U8", [0], 0, 0)}), "U\\+0007"),
]


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def _materialise(case: Hostile, directory: Path) -> Path:
    path = directory / f"{case.id}.safetensors"
    if not path.exists():
        case.build(path)
    return path


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_file_is_refused_quickly_in_bounded_memory(case: Hostile, hostile_dir: Path) -> None:
    path = _materialise(case, hostile_dir)
    started = time.perf_counter()
    with pytest.raises(InputError, match=case.expect):
        read_header(path)
    assert time.perf_counter() - started < TIME_LIMIT_S
    tracemalloc.start()  # a second run, traced: tracing slows allocation, so it is not timed
    try:
        with pytest.raises(InputError, match=case.expect):
            read_header(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < HEAP_LIMIT_BYTES, f"Python heap peaked at {peak / 2**20:.0f} MiB"


_CHILD = """
import sys
from lorareg.errors import InputError
from lorareg.adapter.safetensors import read_header
try:
    read_header(sys.argv[1])
except InputError:
    pass
"""


def _child_peak_rss(path: Path) -> int:
    """Peak RSS in bytes of a fresh interpreter that reads ``path``'s header (Linux: ru_maxrss in KiB)."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return usage.ru_maxrss * 1024


@pytest.mark.parametrize("case", [c for c in CASES if c.big], ids=[c.id for c in CASES if c.big])
def test_big_hostile_file_keeps_peak_rss_bounded(case: Hostile, hostile_dir: Path, tmp_path: Path) -> None:
    baseline = _child_peak_rss(_valid_file(tmp_path))
    growth = _child_peak_rss(_materialise(case, hostile_dir)) - baseline
    assert growth < RSS_GROWTH_LIMIT_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"


def _valid_file(directory: Path) -> Path:
    path = directory / "valid.safetensors"
    path.write_bytes(VALID)
    return path


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_file_gives_exit_2_and_one_error_line_in_the_cli(case: Hostile, hostile_dir: Path) -> None:
    path = _materialise(case, hostile_dir)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "lorareg", "inspect", str(path)], capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - started
    lines = result.stderr.splitlines()
    assert (result.returncode, len(lines)) == (2, 1), result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert elapsed < TIME_LIMIT_S


def test_the_builders_make_valid_files_when_nothing_is_hostile() -> None:
    # The table's files fail for the rule they name, not because the builders are broken.
    content = safetensors_bytes({"__metadata__": {"ss_tag_frequency": json.dumps({"ink": {"a": 1}})}})
    assert parse_header(content, file_size=len(content)).metadata["ss_tag_frequency"].startswith("{")
    assert parse_header(VALID, file_size=len(VALID)).tensors
