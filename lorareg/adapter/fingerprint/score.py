"""Exact similarity of two adapters: Frobenius inner products of ΔW computed from the factors.

For low-rank pieces ``⟨B1 A1, B2 A2⟩_F = sum((B1ᵀ B2) ⊙ (A1 A2ᵀ))``: only rank-sized products, never the full
ΔW, and the result does not change when the rank dimension is rotated, permuted or sign-flipped, or when the
scale moves between ``alpha`` and the factors. Pieces that cover different row slices of a canonical matrix
(FLUX in diffusers layout) are compared on the rows they share.

The adapter score is the energy-weighted cosine over the canonical modules both adapters touch,
``Σ⟨ΔW1,ΔW2⟩ / sqrt(Σ‖ΔW1‖² · Σ‖ΔW2‖²)``, reported with the **coverage** (each adapter's share of ‖ΔW‖² in
those shared modules) and the **scale** ``‖ΔW2‖ / ‖ΔW1‖`` over them. Adapters of two different base families
are incomparable: similarity 0 and a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorareg.adapter.fingerprint.delta import Adapter, Piece, parallel_map


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of comparing adapter A with adapter B."""

    similarity: float
    coverage_a: float
    coverage_b: float
    scale: float | None
    modules_shared: int
    modules_a: int
    modules_b: int
    family_a: str
    family_b: str
    notes: tuple[str, ...] = field(default=())

    @property
    def coverage(self) -> float:
        """The smaller of the two coverages: how much of the *less* covered adapter the score speaks for."""
        return min(self.coverage_a, self.coverage_b)

    def to_json(self) -> dict[str, Any]:
        """The ``compare --json`` document: DESIGN.md's keys first, then the per-side coverages and a note."""
        return {
            "similarity": round(self.similarity, 6),
            "coverage": round(self.coverage, 6),
            "scale": None if self.scale is None else round(self.scale, 6),
            "modules_shared": self.modules_shared,
            "modules_a": self.modules_a,
            "modules_b": self.modules_b,
            "family_a": self.family_a,
            "family_b": self.family_b,
            "coverage_a": round(self.coverage_a, 6),
            "coverage_b": round(self.coverage_b, 6),
            "note": "; ".join(self.notes) or None,
        }


def inner(p: Piece, q: Piece) -> float:
    """``⟨ΔW_p, ΔW_q⟩_F`` over the rows both pieces cover (0 when they share none or differ in width)."""
    top, bottom = max(p.row, q.row), min(p.row + p.height, q.row + q.height)
    if top >= bottom or p.width != q.width:
        return 0.0
    pu, qu = p.up[top - p.row : bottom - p.row], q.up[top - q.row : bottom - q.row]
    if p.down is not None and q.down is not None:
        value = np.sum((pu.T @ qu) * (p.down @ q.down.T), dtype=np.float64)
    elif p.down is None and q.down is None:
        value = np.sum(pu * qu, dtype=np.float64)
    else:
        dense, lu, ld = (pu, qu, q.down) if p.down is None else (qu, pu, p.down)
        assert ld is not None
        value = np.sum((lu.T @ dense) * ld, dtype=np.float64)
    return float(value) * p.scale * q.scale


def module_inner(a: list[Piece], b: list[Piece]) -> float:
    """``⟨ΣΔW_a, ΣΔW_b⟩`` of one canonical module given as pieces."""
    return sum(inner(p, q) for p in a for q in b)


def compare_adapters(a: Adapter, b: Adapter) -> Comparison:
    """Exact energy-weighted cosine of ``a`` and ``b`` over shared modules, with coverage and scale.

    Reads a few canonical modules of each adapter at a time (``delta.MAX_WORKERS`` threads), so memory stays
    at a few times the size of the largest module.
    """
    if a.family != b.family:
        note = f"adapters of different base families ({a.family} vs {b.family}) are incomparable"
        return _empty(a, b, note)
    energy_a, energy_b, shared_a, shared_b, cross, shared = 0.0, 0.0, 0.0, 0.0, 0.0, 0

    def module(name: str) -> tuple[float, float, float | None]:
        pa, pb = a.pieces(name), b.pieces(name)
        both = bool(pa and pb) and name in a.modules and name in b.modules
        return module_inner(pa, pa), module_inner(pb, pb), module_inner(pa, pb) if both else None

    for ea, eb, ab in parallel_map(module, sorted(a.modules.keys() | b.modules.keys())):
        energy_a, energy_b = energy_a + ea, energy_b + eb
        if ab is not None:
            shared += 1
            shared_a, shared_b, cross = shared_a + ea, shared_b + eb, cross + ab
    notes = tuple(a.notes + b.notes)
    if a.family == "unknown":
        notes += ("base family unknown for both: modules matched by name only",)
    return Comparison(
        similarity=cross / math.sqrt(shared_a * shared_b) if shared_a > 0 and shared_b > 0 else 0.0,
        coverage_a=shared_a / energy_a if energy_a > 0 else 0.0,
        coverage_b=shared_b / energy_b if energy_b > 0 else 0.0,
        scale=math.sqrt(shared_b / shared_a) if shared_a > 0 else None,
        modules_shared=shared,
        modules_a=len(a.modules),
        modules_b=len(b.modules),
        family_a=a.family,
        family_b=b.family,
        notes=notes,
    )


def _empty(a: Adapter, b: Adapter, note: str) -> Comparison:
    return Comparison(0.0, 0.0, 0.0, None, 0, len(a.modules), len(b.modules), a.family, b.family, (note,))
