"""Property tests: whatever the bytes, the reader answers with a valid header or an InputError, nothing else.

Random bytes, random bytes behind a consistent length prefix, random JSON documents, and mutations of a
valid file (byte flips, overwrites, insertions, deletions, truncations). An accepted mutation must still
satisfy the format's invariants, and the path reader must agree with the buffer reader.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorareg.adapter.safetensors import SafetensorsHeader, parse_header, read_header, read_scalars
from lorareg.errors import InputError
from tests.support.safetensors_builders import safetensors_bytes, valid_lora_bytes

VALID = valid_lora_bytes()
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(content: bytes) -> SafetensorsHeader | InputError:
    """Parse ``content`` as a whole file; any exception other than InputError fails the test."""
    try:
        header = parse_header(content, file_size=len(content))
    except InputError as e:
        assert str(e)  # a message for the user, never empty
        return e
    _assert_invariants(header, content)
    return header


def _assert_invariants(header: SafetensorsHeader, content: bytes) -> None:
    ends = [t.end for t in header.tensors.values()]
    assert header.data_offset + max(ends, default=0) == len(content)
    assert all(isinstance(v, str) for v in header.metadata.values())
    assert isinstance(read_scalars(content, header), dict)


@FAST
@given(st.binary(max_size=600))
def test_random_bytes_give_a_header_or_an_input_error(content: bytes) -> None:
    _outcome(content)


@FAST
@given(st.binary(max_size=400), st.binary(max_size=64))
def test_random_header_behind_a_true_length_gives_a_header_or_an_input_error(raw: bytes, data: bytes) -> None:
    _outcome(safetensors_bytes(b"{" + raw, data))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["U8", "F16", "F4", "BF16", "F17", "bool"]) | _json_values,
        "shape": st.lists(st.integers(min_value=-2, max_value=2**65), max_size=3) | _json_values,
        "data_offsets": st.lists(st.integers(min_value=-1, max_value=40), max_size=3) | _json_values,
    }
)


@FAST
@given(
    st.dictionaries(st.text(max_size=6), _entries | _json_values, max_size=5),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=6), _json_values, max_size=3)),
    st.binary(max_size=40),
)
def test_random_json_headers_give_a_header_or_an_input_error(
    tensors: dict[str, object], metadata: dict[str, object] | None, data: bytes
) -> None:
    header = dict(tensors)
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    _outcome(safetensors_bytes(raw, data))


_mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.integers(min_value=0, max_value=len(VALID) - 1),
        st.integers(min_value=0, max_value=255),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(content: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(content)
    for op, position, value in mutations:
        at = min(position, max(len(buf) - 1, 0))
        if op == "flip" and buf:
            buf[at] ^= 1 << (value % 8)
        elif op == "set" and buf:
            buf[at] = value
        elif op == "insert":
            buf[at:at] = bytes([value])
        elif op == "delete":
            del buf[at : at + 1 + value % 4]
        elif op == "truncate":
            del buf[at:]
    return bytes(buf)


@FAST
@given(_mutations)
def test_mutated_valid_file_gives_a_header_or_an_input_error(mutations: list[tuple[str, int, int]]) -> None:
    _outcome(_mutate(VALID, mutations))


@settings(max_examples=60, deadline=None, database=None)
@given(_mutations)
def test_path_reader_agrees_with_buffer_reader(mutations: list[tuple[str, int, int]]) -> None:
    content = _mutate(VALID, mutations)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "mutant.safetensors"
        path.write_bytes(content)
        from_path: SafetensorsHeader | str
        try:
            from_path = read_header(path)
        except InputError as e:
            from_path = str(e)
        from_buffer = _outcome(content)
        expected = from_buffer if isinstance(from_buffer, SafetensorsHeader) else str(from_buffer)
        assert from_path == expected
        assert os.path.getsize(path) == len(content)
