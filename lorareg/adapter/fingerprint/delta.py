"""Each module's ΔW in factored form: low-rank pieces ``up @ down`` (scale folded in) or dense matrices.

What a module does to its layer, by format (``LORA_FORMATS.md`` §2; conv kernels flattened to
``out x (in*kh*kw)``):

- LoRA / LoCon: ``ΔW = s * up @ down`` with ``s = alpha / rank`` when the file has an ``.alpha`` (kohya,
  LyCORIS; alpha 0 means alpha = rank) and ``s = 1`` otherwise (PEFT and diffusers files fold it into ``up``).
- LoHa: ``ΔW = s * (w1a @ w1b) ⊙ (w2a @ w2b)``. The Hadamard product of two rank-r products is exactly the
  rank-r² product of their row-wise and column-wise Khatri-Rao products,
  ``(w1a ⊙ᵣ w2a) @ (w1b ⊙꜀ w2b)``, so a LoHa module becomes one more low-rank piece and the full ΔW is never
  built (r² ≤ 4096 for rank 64, smaller than any layer LoHa is used on).
- LoKr: ``ΔW = s * kron(W1, W2)``, ``W1``/``W2`` full or ``a @ b``. By the mixed-product rule
  ``kron(P, Q) @ kron(R, S) = kron(P @ R, Q @ S)``, a Kronecker product is a low-rank piece too (e.g.
  ``kron(I, w2a) @ kron(W1, w2b)``); the split with the smaller inner size is chosen.
- full diff (``.diff``): the dense ΔW.

Modules of FLUX adapters in diffusers layout are slices of the canonical fused matrix (``modules.py``): a
piece carries the first row it covers. A module this cannot read (Tucker ``lora_mid``/``hada_t1``, integer
dtypes, non-finite values) is skipped with a note instead of failing the whole adapter.

Deliberately not here: any score (``score.py``, ``sketch.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from lorareg.adapter.facts import compute_facts
from lorareg.adapter.facts.parse import AdaptedModule, group_modules
from lorareg.adapter.fingerprint.modules import place
from lorareg.adapter.fingerprint.tensors import (
    F32,
    RangeRead,
    UnsupportedTensorError,
    read_tensor,
    reduce_tensor,
)
from lorareg.adapter.safetensors import SafetensorsHeader, TensorInfo
from lorareg.errors import InputError

_WEIGHT_ROLES = frozenset({"down", "up", "hada_w1_a", "lokr_w1", "lokr_w1_a", "diff"})
_UNSUPPORTED_ROLES = ("mid", "hada_t1", "hada_t2", "lokr_t2")
_SHOWN_NOTES = 5
# No layer of a supported base model is wider than ~55k (a FLUX.2 fused projection). A factor wider than this
# is refused from the header alone, so a hostile file cannot make the fingerprint read and decode a
# gigabyte-sized tensor (and grow the cached projection tables to its size) at publish.
MAX_FACTOR_DIM = 1 << 17
MAX_WORKERS = 4  # modules processed at once: numpy releases the GIL in reads, casts and products
_T = TypeVar("_T")
Projector = Callable[[int, int], "F32 | None"]
"""``(first_row, count) -> count x k`` rows of a projection matrix, or ``None`` to decline."""


@dataclass(frozen=True, slots=True)
class Piece:
    """``scale * up @ down`` placed at ``row`` of its canonical matrix; ``down is None``: ``up`` is dense ΔW.

    The scale is kept apart (not multiplied into ``up``) so a module costs one pass over its factors.
    """

    row: int
    up: F32
    down: F32 | None
    scale: float = 1.0

    @property
    def height(self) -> int:
        return int(self.up.shape[0])

    @property
    def width(self) -> int:
        return int(self.up.shape[1] if self.down is None else self.down.shape[1])


@dataclass(frozen=True, slots=True)
class ModuleSource:
    """One module of the file (its tensors by role) and where its ΔW lands."""

    key: str
    parts: dict[str, TensorInfo]
    offset_blocks: int


@dataclass(slots=True)
class Adapter:
    """An adapter file seen as canonical modules whose pieces are read on demand (bounded memory)."""

    family: str
    format: str
    type: str
    header: SafetensorsHeader
    read: RangeRead
    modules: dict[str, list[ModuleSource]]
    notes: list[str] = field(default_factory=list)

    def pieces(self, canonical: str) -> list[Piece]:
        """Read and factor the pieces of one canonical module; unreadable modules are skipped with a note."""
        out = []
        for source in self.modules.get(canonical, ()):
            try:
                out.append(self._piece(source))
            except UnsupportedTensorError as e:
                self._note(f"module {source.key} skipped: {e}")
        return out

    def project(self, canonical: str, left_of: Projector, right_of: Projector) -> F32 | None:
        """``Σ Lᵀ ΔW R`` over the module's pieces (``k x k``), never building ΔW or a factor in float32.

        ``left_of(row, height)`` gives the ``height x k`` rows of ``L`` for a piece at ``row`` of the
        canonical matrix, ``right_of(0, width)`` the ``width x k`` of ``R``; either may answer ``None`` (a
        matrix it will not project), and the module is then not projected. Plain LoRA factors are streamed
        through :func:`reduce_tensor` (the fast path: nearly every module of nearly every adapter); LoHa,
        LoKr and dense pieces are built as :meth:`pieces` does and multiplied. ``None`` also when no piece
        of the module can be read (each is noted).
        """
        total: F32 | None = None
        for source in self.modules.get(canonical, ()):
            try:
                product = self._project_source(source, left_of, right_of)
            except UnsupportedTensorError as e:
                self._note(f"module {source.key} skipped: {e}")
                continue
            except _NotProjected:
                return None
            total = product if total is None else total + product
        return total

    def _project_source(self, source: ModuleSource, left_of: Projector, right_of: Projector) -> F32:
        p = source.parts
        if not _is_plain_lora(p):
            piece = self._piece(source)
            left, right = _projectors(left_of, right_of, piece.row, piece.height, piece.width)
            reduced_down = right if piece.down is None else piece.down @ right
            product: F32 = (left.T @ piece.up) @ reduced_down
            return product * np.float32(piece.scale)
        self._check_header(p)
        up, down = p["up"], p["down"]
        rank, width = down.shape[0], math.prod(down.shape[1:])
        if len(up.shape) < 2 or math.prod(up.shape[1:]) != rank:
            raise UnsupportedTensorError(f"up is {up.shape}, down is {down.shape}: ranks differ")
        left, right = _projectors(left_of, right_of, source.offset_blocks * width, up.shape[0], width)
        reduced_up = reduce_tensor(self.read, self.header, up, left, side="left")
        reduced_down = reduce_tensor(self.read, self.header, down, right, side="right")
        projected: F32 = reduced_up @ reduced_down
        return projected * np.float32(self._scale(p, rank=rank))

    def iter_pieces(self) -> Iterator[tuple[str, list[Piece]]]:
        """Every canonical module (sorted) with its pieces, one module in memory at a time."""
        for canonical in sorted(self.modules):
            yield canonical, self.pieces(canonical)

    def _piece(self, source: ModuleSource) -> Piece:
        p = source.parts
        self._check_header(p)
        if "diff" in p:
            up, down, scale = self._matrix(p["diff"]), None, 1.0
        elif "hada_w1_a" in p:
            up, down, scale = self._loha(p)
        elif "lokr_w1" in p or "lokr_w1_a" in p:
            up, down, scale = self._lokr(p)
        else:
            up, down, scale = self._lora(p)
        if not (np.isfinite(up).all() and (down is None or np.isfinite(down).all())):
            raise UnsupportedTensorError("non-finite values")
        width = up.shape[1] if down is None else down.shape[1]  # d, the layer's input width, for FLUX slices
        return Piece(row=source.offset_blocks * width, up=up, down=down, scale=scale)

    @staticmethod
    def _check_header(p: dict[str, TensorInfo]) -> None:
        """Refuse, from the header alone and before a byte is read, what no module of a base model has."""
        widest = max((d for info in p.values() for d in info.shape), default=0)
        if widest > MAX_FACTOR_DIM:
            raise UnsupportedTensorError(f"a dimension of {widest}, wider than any base model's layer")
        if any(role in p for role in _UNSUPPORTED_ROLES):
            raise UnsupportedTensorError("Tucker-decomposed factors (lora_mid, hada_t*, lokr_t2)")

    def _lora(self, p: dict[str, TensorInfo]) -> tuple[F32, F32, float]:
        if "up" not in p or "down" not in p:
            raise UnsupportedTensorError("a LoRA module without both up and down factors")
        down = self._matrix(p["down"])
        up = self._tensor(p["up"])
        up = up.reshape(up.shape[0], -1)
        if up.shape[1] != down.shape[0]:
            raise UnsupportedTensorError(f"up is {up.shape}, down is {down.shape}: ranks differ")
        return up, down, self._scale(p, rank=down.shape[0])

    def _loha(self, p: dict[str, TensorInfo]) -> tuple[F32, F32, float]:
        w1a, w1b = self._matrix(p["hada_w1_a"]), self._matrix(p["hada_w1_b"])
        w2a, w2b = self._matrix(p["hada_w2_a"]), self._matrix(p["hada_w2_b"])
        up = (w1a[:, :, None] * w2a[:, None, :]).reshape(w1a.shape[0], -1)
        down = (w1b[:, None, :] * w2b[None, :, :]).reshape(-1, w1b.shape[1])
        return up, down, self._scale(p, rank=w1b.shape[0])

    def _lokr(self, p: dict[str, TensorInfo]) -> tuple[F32, F32, float]:
        w1 = self._low_rank_or_full(p, "lokr_w1")
        w2 = self._low_rank_or_full(p, "lokr_w2")
        w2 = (w2[0].reshape(w2[0].shape[0], -1), None) if w2[1] is None else w2
        rank = next((a.shape[1] for a, b in (w2, w1) if b is not None), None)
        scale = 1.0 if rank is None else self._scale(p, rank=rank)
        up, down = _kron_factors(w1, w2)
        return up, down, scale

    def _low_rank_or_full(self, p: dict[str, TensorInfo], role: str) -> tuple[F32, F32 | None]:
        if role in p:
            return self._tensor(p[role]), None
        if f"{role}_a" not in p or f"{role}_b" not in p:
            raise UnsupportedTensorError(f"LoKr module without {role} or {role}_a/{role}_b")
        return self._matrix(p[f"{role}_a"]), self._matrix(p[f"{role}_b"])

    def _scale(self, p: dict[str, TensorInfo], *, rank: int) -> float:
        if "alpha" not in p:
            return 1.0
        alpha = float(self._tensor(p["alpha"]).reshape(-1)[0])
        return 1.0 if alpha == 0 or not np.isfinite(alpha) else alpha / rank

    def _matrix(self, info: TensorInfo) -> F32:
        t = self._tensor(info)
        if t.ndim < 2:
            raise UnsupportedTensorError(f"tensor {info.name} has shape {info.shape}, not a matrix")
        return t.reshape(t.shape[0], -1)

    def _tensor(self, info: TensorInfo) -> F32:
        return read_tensor(self.read, self.header, info)

    def _note(self, text: str) -> None:
        if len(self.notes) < _SHOWN_NOTES:
            self.notes.append(text)


class _NotProjected(Exception):
    """A projector declined a piece's matrix: the whole module is left out."""


def _projectors(
    left_of: Projector, right_of: Projector, row: int, height: int, width: int
) -> tuple[F32, F32]:
    left, right = left_of(row, height), right_of(0, width)
    if left is None or right is None:
        raise _NotProjected
    return left, right


def _is_plain_lora(parts: dict[str, TensorInfo]) -> bool:
    """Only ``up``/``down`` (and ``alpha``) factors, as nearly every LoRA and LoCon module is saved."""
    return "up" in parts and "down" in parts and parts.keys() <= {"up", "down", "alpha"}


def parallel_map(work: Callable[[str], _T], names: Iterable[str]) -> Iterator[_T]:
    """``work(name)`` for each name, in order, on a small thread pool (serially on one CPU)."""
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    if workers <= 1:
        yield from map(work, names)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lorareg-fingerprint") as pool:
        yield from pool.map(work, names)


def open_adapter(header: SafetensorsHeader, read: RangeRead) -> Adapter:
    """Group a validated header's modules by canonical matrix; reads only the alpha scalars now.

    Raises:
        InputError: the file has no adapter module of a known kind.
    """
    tensors = list(header.tensors.values())
    modules, _ = group_modules(t for t in tensors if not t.name.endswith(".diff"))
    for t in tensors:
        if t.name.endswith(".diff"):
            modules.setdefault(key := t.name[: -len(".diff")], AdaptedModule(key)).parts["diff"] = t
    adapted = {k: m for k, m in modules.items() if _WEIGHT_ROLES & m.parts.keys()}
    if not adapted:
        raise InputError("the file has no adapter modules of a known kind (LoRA, LoHa, LoKr, diff)")
    facts = compute_facts(header, _alphas(header, read))
    by_canonical: dict[str, list[ModuleSource]] = {}
    for key, m in adapted.items():
        placement = place(key, facts.family)
        by_canonical.setdefault(placement.canonical, []).append(
            ModuleSource(key, dict(m.parts), placement.row_offset_blocks)
        )
    return Adapter(facts.family, facts.format, facts.type, header, read, by_canonical)


def _alphas(header: SafetensorsHeader, read: RangeRead) -> dict[str, float]:
    """Values of the 0-dim ``.alpha`` tensors, which family detection and the scale need."""
    out = {}
    for info in header.tensors.values():
        if info.shape == () and info.name.endswith(".alpha"):
            try:
                out[info.name] = float(read_tensor(read, header, info).reshape(-1)[0])
            except UnsupportedTensorError:
                continue
    return out


def _kron_factors(w1: tuple[F32, F32 | None], w2: tuple[F32, F32 | None]) -> tuple[F32, F32]:
    """``(up, down)`` with ``up @ down == kron(W1, W2)``, ``W = a @ b`` when ``b`` is given, else ``a``."""
    (a1, b1), (a2, b2) = w1, w2
    if b2 is not None:  # kron(W1, a2 b2) = kron(I_l, a2) @ kron(W1, b2)
        full1 = a1 if b1 is None else a1 @ b1
        return np.kron(np.eye(full1.shape[0], dtype=np.float32), a2), np.kron(full1, b2)
    if b1 is not None:  # kron(a1 b1, W2) = kron(a1, I_k) @ kron(b1, W2)
        return np.kron(a1, np.eye(a2.shape[0], dtype=np.float32)), np.kron(b1, a2)
    # both full: kron(W1, W2) = kron(I_l, W2) @ kron(W1, I_n)
    eye_l, eye_n = np.eye(a1.shape[0], dtype=np.float32), np.eye(a2.shape[1], dtype=np.float32)
    return np.kron(eye_l, a2), np.kron(a1, eye_n)
