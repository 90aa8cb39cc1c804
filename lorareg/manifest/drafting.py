"""Authoring: a manifest draft, and completing it with the facts computed from the adapter file.

Authors write the provenance (name, version, licence, consent, creators, ...) and may leave out everything
the file itself shows: size, digests, base family, key format, adapter type, rank, alpha and targets. Those
are filled in from the file by :func:`complete_manifest`, never copied from the author or the file's
metadata; an author who did write one and contradicts the file is refused, with the field, what the
author wrote and what the file shows (``DESIGN.md``, "Signed manifests").

This module reads no files: the caller passes the facts and hashes it computed from one read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lorareg.errors import UnprocessableError
from lorareg.manifest.fields import clean, show
from lorareg.manifest.model import MANIFEST_ROOT, Manifest, parse_toml

if TYPE_CHECKING:
    from lorareg.adapter.facts.model import AdapterFacts
    from lorareg.adapter.hashing import FileHashes

ALPHA_REL_TOLERANCE = 1e-3  # an author's alpha within this of the file's (fp16/bf16 storage) agrees
FILLED_DIGESTS = ("sha256", "autov3", "blake3")  # written into every completed manifest
CHECKED_DIGESTS = ("autov1", "autov2", "crc32")  # kept only if the author wrote them, and then checked

_Path = tuple[str, ...]


@dataclass(frozen=True)
class ManifestDraft:
    """An author's manifest, validated like a :class:`Manifest` except that file facts may be missing.

    ``values`` holds the cleaned fields (nested dicts and tuples); treat it as read-only.
    """

    values: Mapping[str, Any]

    @classmethod
    def from_json(cls, obj: Any) -> ManifestDraft:
        """Validate an author's dict strictly (unknown keys, types, caps); file facts optional.

        Raises:
            InputError: with the field path.
        """
        return cls(clean(Manifest, obj, MANIFEST_ROOT, draft=True))

    @classmethod
    def from_toml(cls, source: str | bytes) -> ManifestDraft:
        """Parse the author's ``manifest.toml`` (see ``docs/manifest.md``)."""
        return cls.from_json(parse_toml(source))

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ManifestDraft:
        """A complete manifest as a draft (to re-check it against a file)."""
        return cls.from_json(manifest.to_json())


def complete_manifest(
    draft: ManifestDraft | Manifest,
    *,
    facts: AdapterFacts,
    hashes: FileHashes,
    size: int,
    now: datetime | None = None,
) -> Manifest:
    """Fill a draft's file facts from the file and return the complete manifest.

    Args:
        draft: the author's draft (or a complete manifest, re-checked against the file).
        facts: facts computed from the file's tensor names and shapes.
        hashes: the file's digests (``FileHashes``): sha256, autov3 and blake3 are filled in.
        size: the file's size in bytes.
        now: ``created`` for a draft that has none (default: the current UTC time).

    Returns:
        The complete, validated manifest.

    Raises:
        UnprocessableError: (an ``InputError``) every field where the author contradicts the file.
        InputError: a computed fact breaks a manifest limit (e.g. more targets than allowed).
    """
    if isinstance(draft, Manifest):
        draft = ManifestDraft.from_manifest(draft)
    values = _deep_copy(draft.values)
    problems = [_fill(values, path, observed) for path, observed in _observed(facts, hashes, size).items()]
    problems += [_check_extra_digest(values, name, getattr(hashes, name)) for name in CHECKED_DIGESTS]
    found = [p for p in problems if p is not None]
    if found:
        raise UnprocessableError("the manifest contradicts the file: " + "; ".join(found))
    values.setdefault("created", now if now is not None else datetime.now(UTC).replace(microsecond=0))
    return Manifest.from_json(values)


def _observed(facts: AdapterFacts, hashes: FileHashes, size: int) -> dict[_Path, Any]:
    """Every file fact by its path in the manifest; ``None`` where the file has no such value."""
    observed: dict[_Path, Any] = {("size",): size}
    for name in FILLED_DIGESTS:
        observed[("digests", name)] = getattr(hashes, name)
    observed[("base_model", "family")] = facts.family
    observed[("adapter", "format")] = facts.format
    observed[("adapter", "type")] = facts.type
    observed[("adapter", "rank")] = facts.rank
    observed[("adapter", "alpha")] = None if facts.alpha is None else float(facts.alpha)
    observed[("adapter", "targets")] = tuple(sorted(facts.targets))
    return observed


def _fill(values: dict[str, Any], path: _Path, observed: Any) -> str | None:
    """Set ``path`` to what the file shows; return a problem if the author wrote something else."""
    table = values
    for key in path[:-1]:
        table = table.setdefault(key, {})
    leaf = path[-1]
    if leaf in table and not _agrees(table[leaf], observed):
        return _contradiction(path, table[leaf], observed)
    if observed is None:
        table.pop(leaf, None)
    else:
        table[leaf] = observed
    return None


def _check_extra_digest(values: dict[str, Any], name: str, observed: str | None) -> str | None:
    written = values.get("digests", {}).get(name)
    if written is None or written == observed:
        return None
    return _contradiction(("digests", name), written, observed)


def _agrees(written: Any, observed: Any) -> bool:
    if observed is None:
        return False
    if isinstance(observed, float) and isinstance(written, float):
        return math.isclose(written, observed, rel_tol=ALPHA_REL_TOLERANCE)
    if isinstance(observed, tuple):
        return sorted(written) == list(observed)
    return bool(written == observed)


def _contradiction(path: _Path, written: Any, observed: Any) -> str:
    field = ".".join((MANIFEST_ROOT, *path))
    shown = "no value" if observed is None else _show(observed)
    hint = ""
    if path == ("base_model", "family") and observed == "unknown":
        hint = " (lorareg cannot tell the family from the tensors, so it cannot confirm yours; leave it out)"
    elif observed is None:
        hint = " (leave the field out)"
    return f"{field}: the manifest says {_show(written)}, the file shows {shown}{hint}"


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        items = ", ".join(show(v) for v in list(value)[:5])
        more = f", … ({len(value)} in all)" if len(value) > 5 else ""
        return f"[{items}{more}]"
    return show(value)


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}
