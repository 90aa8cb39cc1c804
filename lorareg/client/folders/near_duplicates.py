"""Weight fingerprints for the folder commands: "is this file a re-packaged copy of that one?".

Import deduplicates by SHA-256 first; files whose bytes differ are then compared by weight fingerprint
(``lorareg.adapter.fingerprint``: the same adapter re-saved in another dtype, with renamed keys or another
alpha is one entry with several paths). Audit asks the registry's ``POST /api/v1/similar`` for files whose
digest it does not know: a match that is revoked, at least ``NEAR_DUPLICATE_SIMILARITY`` similar and
covering ``NEAR_DUPLICATE_COVERAGE`` of both adapters is reported as a near-duplicate of that version. Only
the fingerprint leaves the machine, never the file. A file that cannot be fingerprinted (an unknown
layout) simply has no match: fingerprints add findings, they never refuse a file on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from lorareg.errors import LoraregError

if TYPE_CHECKING:
    from lorareg.adapter.fingerprint import Fingerprint
    from lorareg.adapter.fingerprint.score import Comparison
    from lorareg.client.api_client import Client

NEAR_DUPLICATE_SIMILARITY = 0.9  # the registry's default LORAREG_NEAR_DUPLICATE_THRESHOLD
NEAR_DUPLICATE_COVERAGE = 0.5  # of both adapters' ‖ΔW‖², as at publish
_POOLED_FLOOR = 0.3  # pooled cosine below which two fingerprints are not compared module by module


def same_weights_as(path: Path, candidates: Sequence[Path]) -> Path | None:
    """The first candidate whose weights are a near-duplicate of ``path``'s (import's dedup), or None."""
    from lorareg.adapter.fingerprint.sketch import compare_fingerprints, pooled_cosine

    mine = _fingerprint(path)
    if mine is None:
        return None
    for candidate in candidates:
        theirs = _fingerprint(candidate)
        if theirs is None or theirs.family != mine.family or pooled_cosine(mine, theirs) < _POOLED_FLOOR:
            continue
        if _near(compare_fingerprints(mine, theirs)):
            return candidate
    return None


def near_duplicate_of_revoked(path: Path, *, client: Client) -> tuple[str, str] | None:
    """``(ref of the revoked version, why)`` when ``path`` is a near-duplicate of one, else None."""
    fp = _fingerprint(path)
    if fp is None:
        return None
    try:
        answer = client.similar_to(fp.to_bytes())
    except LoraregError:
        return None  # an older registry or an outage: audit says what it can from digests
    for match in answer.get("similar") or []:
        if not isinstance(match, dict) or match.get("status") != "revoked":
            continue
        similarity, coverage = match.get("similarity"), match.get("coverage")
        if isinstance(similarity, float | int) and isinstance(coverage, float | int):
            if similarity >= NEAR_DUPLICATE_SIMILARITY and coverage >= NEAR_DUPLICATE_COVERAGE:
                return str(match.get("ref")), f"weight similarity {similarity:.2f}"
    return None


def _near(comparison: Comparison) -> bool:
    return (
        comparison.similarity >= NEAR_DUPLICATE_SIMILARITY and comparison.coverage >= NEAR_DUPLICATE_COVERAGE
    )


def _fingerprint(path: Path) -> Fingerprint | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return _cached_fingerprint(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _cached_fingerprint(path: str, _size: int, _mtime_ns: int) -> Fingerprint | None:
    from lorareg.adapter.fingerprint import fingerprint_file

    try:
        return fingerprint_file(path)
    except LoraregError:
        return None
