"""Inspect an adapter file: the strict header, the facts it shows, its hashes, and metadata claims checked.

This is the orchestration behind ``lorareg inspect`` and the first step of ``publish``: read the header
(``lorareg.adapter.safetensors``), the few bytes of the alpha scalars, compute facts
(``lorareg.adapter.facts``) and the six
hashes in one read (``lorareg.adapter.hashing``), then check the metadata's embedded hashes against AutoV3.

Deliberately not here: printing (``lorareg.cli.inspect_cmd``) and any trust in metadata. The file is opened
more than once (header, scalars, hashes); a caller that must bind facts to exact bytes (the loader, the
registry on upload) parses and hashes one buffer instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorareg.adapter.facts import AdapterFacts, MetadataClaim, compute_facts
from lorareg.adapter.facts.claims import hash_claims
from lorareg.adapter.hashing import HASH_NAMES, FileHashes, hash_file
from lorareg.adapter.safetensors import SafetensorsHeader, read_header, read_scalars

JSON_KEYS = (
    "size",
    "family",
    "format",
    "type",
    "rank",
    "alpha",
    "targets",
    "text_encoder",
    "tensors",
    "hashes",
    "metadata",
)
"""The keys DESIGN.md fixes for ``inspect --json``; :meth:`Inspection.to_json` adds more after these."""


@dataclass(frozen=True, slots=True)
class Inspection:
    """The result of inspecting one file. ``hashes`` is ``None`` when hashing was skipped."""

    path: Path
    header: SafetensorsHeader
    facts: AdapterFacts
    hashes: FileHashes | None

    @property
    def claims(self) -> tuple[MetadataClaim, ...]:
        """Every metadata claim contradicted by the tensors or by the computed hashes."""
        extra = hash_claims(self.header.metadata, autov3=self.hashes.autov3) if self.hashes else []
        return (*self.facts.claims, *extra)

    def to_json(self) -> dict[str, Any]:
        """The ``inspect --json`` document: DESIGN.md's keys first, then ``ranks``, ``parameters``,
        ``dtypes``, ``components``, ``claims``, ``notes``, ``hints``. ``hashes`` is ``null`` when skipped."""
        f = self.facts
        doc: dict[str, Any] = {
            "size": self.header.file_size,
            "family": f.family,
            "format": f.format,
            "type": f.type,
            "rank": f.rank,
            "alpha": f.alpha,
            "targets": list(f.targets),
            "text_encoder": f.text_encoder,
            "tensors": f.tensors,
            "hashes": {k: getattr(self.hashes, k) for k in HASH_NAMES} if self.hashes else None,
            "metadata": dict(self.header.metadata),
        }
        doc |= {
            "ranks": list(f.ranks),
            "parameters": f.parameters,
            "dtypes": list(f.dtypes),
            "components": list(f.components),
            "claims": [c.to_json() for c in self.claims],
            "notes": list(f.notes),
            "hints": dict(f.hints),
        }
        return doc


def inspect_file(path: str | os.PathLike[str], *, with_hashes: bool = True) -> Inspection:
    """Read ``path``'s header and alpha scalars, compute its facts and (by default) its six hashes.

    Args:
        path: a ``.safetensors`` file.
        with_hashes: read the whole file once to compute the hashes and check embedded hash claims.

    Raises:
        NotFoundError: no such file.
        InputError: not a regular file, or not a strictly valid safetensors file (pickle, zip, bad header).
    """
    file = Path(path)
    header = read_header(file)
    facts = compute_facts(header, read_scalars(file, header))
    hashes = hash_file(file) if with_hashes else None
    return Inspection(path=file, header=header, facts=facts, hashes=hashes)
