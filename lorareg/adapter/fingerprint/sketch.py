"""A compact, seeded sketch of an adapter's ΔW for storage and search, and its pooled summary vector.

Per canonical module, ``S = Ψᵀ ΔW Ω / k`` (``k x k``) with ``Ψ``, ``Ω`` fixed random ±1 matrices whose row
``i`` is a hash of ``i``: the same module of any adapter gets the same projections, whatever its file's
layout, and a slice of a fused matrix (FLUX ``to_q`` in ``img_attn.qkv``) gets exactly its rows.
``S`` is computed as ``(Ψᵀ B)(A Ω)`` with the factors streamed through the products
(``Adapter.project``), so neither the full ΔW nor a float32 copy of a factor is ever built.
Since ``E⟨S1,S2⟩ = ⟨ΔW1,ΔW2⟩``, sketches estimate the exact scores of ``score.py``; for near-duplicates
the estimate is tight because the same projections see the same directions.

The **pooled** vector (``POOLED_DIM`` floats) feature-hashes every sketch entry, with a random sign, into one
vector, so ``⟨pooled1, pooled2⟩`` estimates the whole-adapter inner product: the registry's candidate search
uses its cosine and locality-sensitive **band keys** (random hyperplane bits, ``BANDS`` bands of
``BAND_BITS`` bits) that a database index can look up; the few candidates are then scored from sketches.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lorareg.adapter.fingerprint.delta import Adapter
from lorareg.adapter.fingerprint.score import Comparison
from lorareg.adapter.fingerprint.tensors import F32
from lorareg.errors import InputError

SKETCH_K = 8  # k: each module's sketch is k x k (64 floats, 128 bytes as float16)
POOLED_DIM = 256  # floats in the pooled summary vector
BANDS = 24  # LSH bands over the pooled vector
BAND_BITS = 10  # hyperplane bits per band: unrelated pooled vectors share a band with p = 24/1024
FORMAT_VERSION = 1
# A canonical matrix (fused slices placed at their row offsets) wider than this is not sketched: the cached
# ±1 projection tables never grow past it (``delta.MAX_FACTOR_DIM`` refuses single factors before reading).
MAX_SKETCH_DIM = 1 << 18
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_HYPERPLANE_SEED = 0x10AE6  # fixed forever: band keys of stored fingerprints depend on it
_U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """An adapter's family, per-module sketches and energies, and the pooled summary."""

    family: str
    modules: tuple[str, ...]
    sketches: F32  # (len(modules), k, k)
    energies: F32  # ‖S‖² per module: an unbiased estimate of ‖ΔW‖² (exact ones cost rank² per row)
    pooled: F32  # (POOLED_DIM,), unit length (zero for an empty adapter)

    def band_keys(self) -> list[int]:
        """One integer per band: ``band << BAND_BITS | bits``, for an indexed equality lookup."""
        bits = (_HYPERPLANES @ self.pooled) > 0
        keys = []
        for band in range(BANDS):
            chunk = bits[band * BAND_BITS : (band + 1) * BAND_BITS]
            keys.append(band << BAND_BITS | int(sum(int(b) << i for i, b in enumerate(chunk))))
        return keys

    def summary(self) -> dict[str, Any]:
        """What ``inspect --fingerprint`` prints: family, size, and the pooled vector (6 decimals)."""
        return {
            "family": self.family,
            "modules": len(self.modules),
            "sketch_k": int(self.sketches.shape[1]) if self.sketches.ndim == 3 else SKETCH_K,
            "pooled": [round(float(x), 6) for x in self.pooled],
        }

    def to_bytes(self) -> bytes:
        """Stored form: length-prefixed JSON head (names, family), float16 sketches, float32 energies."""
        head = json.dumps({"v": FORMAT_VERSION, "family": self.family, "modules": list(self.modules)})
        raw = head.encode()
        body = self.sketches.astype("<f2").tobytes() + self.energies.astype("<f4").tobytes()
        return struct.pack("<I", len(raw)) + raw + body + self.pooled.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Parse :meth:`to_bytes` output. Raises InputError on anything malformed."""
        try:
            (n,) = struct.unpack_from("<I", data)
            head = json.loads(data[4 : 4 + n])
            names = tuple(str(x) for x in head["modules"])
            m, k, pos = len(names), SKETCH_K, 4 + n
            sketches = np.frombuffer(data, "<f2", m * k * k, pos).astype(np.float32).reshape(m, k, k)
            pos += 2 * m * k * k
            energies = np.frombuffer(data, "<f4", m, pos).astype(np.float32)
            pooled = np.frombuffer(data, "<f4", POOLED_DIM, pos + 4 * m).astype(np.float32)
        except (ValueError, KeyError, TypeError, struct.error) as e:
            raise InputError(f"stored fingerprint is malformed: {e}") from e
        return cls(str(head["family"]), names, sketches, energies, pooled)


def fingerprint(adapter: Adapter, *, k: int = SKETCH_K) -> Fingerprint:
    """Sketch every canonical module of ``adapter`` (a few modules in memory at a time) and pool them."""
    names, sketches, energies = [], [], []
    pooled = np.zeros(POOLED_DIM, dtype=np.float64)

    def rows(start: int, count: int) -> F32 | None:
        return None if start + count > MAX_SKETCH_DIM else _projection("rows", start, count, k)

    def cols(start: int, count: int) -> F32 | None:
        return None if start + count > MAX_SKETCH_DIM else _projection("cols", start, count, k)

    def sketch_module(name: str) -> F32 | None:
        product = adapter.project(name, rows, cols)  # no module of a real base model is too wide for these
        return None if product is None else product / np.float32(k)

    # One thread: a module's sketch is many short numpy calls on cache-sized blocks, and threads of one
    # process would queue for the interpreter lock between them (measured: two threads slower than one).
    for name in sorted(adapter.modules):
        s = sketch_module(name)
        if s is None:
            continue
        names.append(name)
        sketches.append(s)
        energies.append(float(np.sum(s.astype(np.float64) ** 2)))
        buckets, signs = _hash_entries(name, k * k)
        np.add.at(pooled, buckets, signs * s.reshape(-1))
    norm = float(np.linalg.norm(pooled))
    return Fingerprint(
        family=adapter.family,
        modules=tuple(names),
        sketches=np.stack(sketches).astype(np.float32) if sketches else np.zeros((0, k, k), np.float32),
        energies=np.asarray(energies, dtype=np.float32),
        pooled=(pooled / norm if norm > 0 else pooled).astype(np.float32),
    )


def pooled_cosine(a: Fingerprint, b: Fingerprint) -> float:
    """Cosine of the pooled vectors (both are unit length): the coarse score used to rank candidates."""
    return float(np.dot(a.pooled, b.pooled))


def compare_fingerprints(a: Fingerprint, b: Fingerprint) -> Comparison:
    """Estimate :func:`~lorareg.adapter.fingerprint.score.compare_adapters` from two stored fingerprints.

    The cosine, coverage and scale all come from the sketches of the modules (shared ones for the cosine).
    """
    if a.family != b.family:
        note = f"adapters of different base families ({a.family} vs {b.family}) are incomparable"
        return Comparison(0.0, 0.0, 0.0, None, 0, len(a.modules), len(b.modules), a.family, b.family, (note,))
    index_b = {name: i for i, name in enumerate(b.modules)}
    ia = [i for i, name in enumerate(a.modules) if name in index_b]
    ib = [index_b[a.modules[i]] for i in ia]
    sa, sb = a.sketches[ia].astype(np.float64), b.sketches[ib].astype(np.float64)
    cross, na, nb = float(np.sum(sa * sb)), float(np.sum(sa * sa)), float(np.sum(sb * sb))
    ea, eb = float(a.energies[ia].sum()), float(b.energies[ib].sum())
    ta, tb = float(a.energies.sum()), float(b.energies.sum())
    return Comparison(
        similarity=cross / math.sqrt(na * nb) if na > 0 and nb > 0 else 0.0,
        coverage_a=ea / ta if ta > 0 else 0.0,
        coverage_b=eb / tb if tb > 0 else 0.0,
        scale=math.sqrt(eb / ea) if ea > 0 else None,
        modules_shared=len(ia),
        modules_a=len(a.modules),
        modules_b=len(b.modules),
        family_a=a.family,
        family_b=b.family,
    )


def _projection(role: str, start: int, count: int, k: int) -> F32:
    """Rows ``start .. start+count`` of the fixed ±1 matrix of ``role`` (``rows`` is Ψ, ``cols`` is Ω).

    Row ``i`` is a hash of ``(role, i)``, so every module and every slice of a fused matrix sees the same
    projection at the same position, and nothing is drawn per module: the table grows (consistently) to
    the largest dimension seen and the answer is a view of it.
    """
    table = _TABLES.get((role, k))
    if table is None or len(table) < start + count:
        size = max(_TABLE_MIN_ROWS, 1 << (start + count - 1).bit_length())
        rows = _splitmix(np.arange(size, dtype=np.uint64) + np.uint64(_seed("projection", role)))
        bits = (rows[:, None] >> np.arange(k, dtype=np.uint64)[None, :]) & np.uint64(1)
        table = _TABLES[(role, k)] = bits.astype(np.float32) * 2 - 1
    return table[start : start + count]


def _hash_entries(name: str, n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Bucket and sign of each of a module's ``n`` sketch entries in the pooled vector."""
    h = _splitmix(np.arange(n, dtype=np.uint64) + np.uint64(_seed(name, "pool")))
    buckets = (h % np.uint64(POOLED_DIM)).astype(np.intp)
    signs = np.where((h >> np.uint64(32)) & np.uint64(1), 1.0, -1.0)
    return buckets, signs


def _seed(name: str, role: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{role}:{name}".encode(), digest_size=8).digest(), "little")


def _splitmix(x: _U64) -> _U64:
    """splitmix64 finaliser, vectorised: a fast position-addressable hash (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return z ^ (z >> np.uint64(31))


_TABLE_MIN_ROWS = 1 << 15  # Ψ/Ω tables start at 32,768 rows (the widest SDXL layer is 10,240)
_TABLES: dict[tuple[str, int], F32] = {}
_HYPERPLANES: F32 = np.random.default_rng(_HYPERPLANE_SEED).standard_normal(
    (BANDS * BAND_BITS, POOLED_DIM), dtype=np.float32
)
