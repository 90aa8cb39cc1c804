"""The one seam to weight fingerprints (issue #12), which this package does not compute.

Import deduplicates by SHA-256 and audit flags revoked digests; both would also like to know "is this file a
re-packaged copy of that one" (the same weights re-saved, re-named, cast to another dtype), which takes a
weight-level fingerprint. That lives in ``lorareg/fingerprint/`` (built separately) and the registry's
``similar`` endpoint. Until the integrator wires them here, these functions answer "no match": import keeps
byte-different copies as separate entries and audit never reports ``near-duplicate``. Their signatures are
the contract: callers need not change when they start answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def same_weights_as(path: Path, candidates: Sequence[Path]) -> Path | None:
    """The candidate whose weights are (nearly) those of ``path``, for import's dedup. Today: None."""
    del path, candidates
    return None


def near_duplicate_of_revoked(path: Path, *, registry: str | None) -> tuple[str, str] | None:
    """``(sha256 of the revoked version, its public reason)`` when ``path`` is a near-duplicate of one.

    Today: None (no fingerprint index is wired); audit's ``near-duplicate`` status and exit code 1 for it
    are in place for when this answers.
    """
    del path, registry
    return None
