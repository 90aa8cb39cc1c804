"""Where the strict reader refuses a file that the reference ``safetensors`` reader accepts, and why.

The reader (``adapter/safetensors.py``) refuses everything the reference crate refuses (``LORA_FORMATS.md``
§1),
including the two classes the crate's serde_json catches and Python's ``json`` does not: a shape or offset
written ``-0`` (serde reads a float; only non-negative JSON integers without sign, fraction or exponent
are valid) and an element count that overflows 64 bits at any step of the product, even when a later
dimension is 0. It also refuses more, on purpose; each extra refusal is one rule below, with the pattern
its message matches. ``tests/test_reader_differential.py`` generates thousands of valid and mutated files
(seeded) and holds both directions: lorareg never accepts what the reference refuses, and each of its
refusals of a file the reference accepts matches one of these rules. ``docs/architecture.md`` lists them.

Deliberately not a rule: metadata *values* holding control, C1 or bidi characters (mojibake such as
``donâ\\x80\\x99t`` is common in real files); they are kept and escaped wherever they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StricterRule:
    """One documented refusal beyond the reference: ``message`` is a regex of the refusal's text."""

    name: str
    why: str
    message: str


STRICTER_THAN_REFERENCE: tuple[StricterRule, ...] = (
    StricterRule(
        "caps",
        "size and count caps (MAX_HEADER_BYTES 16 MiB - 1 where the crate allows 100 MB, MAX_TENSORS, "
        "MAX_TENSOR_DIMS, MAX_NAME_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_VALUE_BYTES, "
        "MAX_NESTING_DEPTH and the JSON token budget) bound a hostile header's work and memory",
        r"MAX_[A-Z_]+|has \d+ items; at most \d+ allowed|more than the \d+ that a header",
    ),
    StricterRule(
        "leading-brace",
        "the header starts with '{' (the format's README; the crate does not enforce it yet)",
        r"header must start with '\{'",
    ),
    StricterRule(
        "space-padding",
        "only spaces (the writer's padding) may follow the JSON object; the crate also allows tab, CR, LF",
        r"only spaces may pad it",
    ),
    StricterRule(
        "duplicate-keys",
        "a repeated key is refused (the crate keeps the last tensor or metadata entry): two readers "
        "must never see different tensors under one signature",
        r"repeats the key",
    ),
    StricterRule(
        "exact-fields",
        "a tensor entry holds exactly dtype, shape and data_offsets (the crate ignores unknown fields)",
        r"fields must be dtype, shape, data_offsets",
    ),
    StricterRule(
        "metadata-object",
        "__metadata__, when present, is an object (the crate also accepts null)",
        r"__metadata__ must be an object",
    ),
    StricterRule(
        "name-characters",
        "tensor names and metadata keys hold no control (C0 but tab/LF/CR, DEL, C1) or bidi "
        "embedding/override/isolate characters: they are identifiers, shown and matched everywhere",
        r"holds the control character U\+[0-9A-F]{4}",
    ),
)
