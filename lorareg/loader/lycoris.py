"""The weight change ΔW of one LyCORIS module (LoHa, LoKr, LoRA/LoCon), exactly as LyCORIS defines it.

diffusers 0.42 has no converter for LyCORIS' Hadamard (``hada_*``) and Kronecker (``lokr_*``) products, so
the loader merges ΔW into the base weights itself (``merge.py``). The formulas are LyCORIS' (and ComfyUI's,
A1111's, which follow it), per module, with ``scale = alpha / rank`` (alpha missing or 0: scale 1):

- LoHa: ``ΔW = (w1_a @ w1_b) ⊙ (w2_a @ w2_b) · scale``; with Tucker cores (conv) each factor is
  ``einsum("i j k l, j r, i p -> p r k l", t, w_b, w_a)``;
- LoKr: ``ΔW = kron(w1, w2) · scale``, ``w1 = lokr_w1`` or ``w1_a @ w1_b``, ``w2 = lokr_w2`` or
  ``w2_a @ w2_b`` or the Tucker form; when both ``w1`` and ``w2`` are full there is no rank and scale is 1;
- LoRA/LoCon (``lora_down``/``lora_up``, optional ``lora_mid`` core): ``ΔW = up @ down · scale``;
- ``dora_scale`` (weight decomposition): ``W' = W + s · ((W + ΔW) · m / ‖W + ΔW‖ - W)`` with the norm
  over the axis ``m`` has (input columns as LyCORIS stores it, or output rows), ``s`` the adapter weight.

Everything is computed in float32 and returned as float32; the caller casts. Deliberately not here: which
pipeline module a key names, and keeping the original weights (``merge.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

_EPS = torch.finfo(torch.float32).eps  # LyCORIS adds it to the norm so a zero column cannot divide by zero


class LycorisError(ValueError):
    """A module's tensors do not form a product LyCORIS defines, or do not fit the base weight."""


def delta_weight(parts: Mapping[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """ΔW (float32, shaped like the base weight ``shape``) of one module from its tensors by role."""
    p = {k: v.float() for k, v in parts.items() if k != "alpha"}
    rank: int | None
    if "hada_w1_a" in p:
        raw, rank = _loha(p), int(p["hada_w1_b"].shape[0])
    elif "lokr_w1" in p or "lokr_w1_a" in p:
        raw, rank = _lokr(p, shape)
    elif "down" in p and "up" in p:
        raw, rank = _lora(p, shape), int(p["down"].shape[0])
    else:
        raise LycorisError(f"no LoHa, LoKr or LoRA factors among {sorted(parts)}")
    if raw.numel() != shape.numel():
        raise LycorisError(f"ΔW has {tuple(raw.shape)}, the base weight {tuple(shape)}")
    return raw.reshape(shape) * _scale(parts.get("alpha"), rank)


def merged_weight(
    base: torch.Tensor, delta: torch.Tensor, *, strength: float, dora_scale: torch.Tensor | None
) -> torch.Tensor:
    """The new weight: ``base + strength · ΔW``, or the weight-decomposed form when ``dora_scale`` is set."""
    w = base.float()
    if dora_scale is None:
        return (w + strength * delta).to(base.dtype)
    combined = w + delta
    magnitude = dora_scale.float()
    out_axis = magnitude.shape[0] == combined.shape[0] and magnitude.shape[0] != 1
    decomposed = combined * (magnitude / (_norm(combined, out_axis=out_axis) + _EPS))
    return (w + strength * (decomposed - w)).to(base.dtype)


def _scale(alpha: torch.Tensor | None, rank: int | None) -> float:
    if alpha is None or rank is None:
        return 1.0
    value = float(alpha)
    return value / rank if value else 1.0


def _loha(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return _factor(p, "hada_w1_a", "hada_w1_b", "hada_t1") * _factor(p, "hada_w2_a", "hada_w2_b", "hada_t2")


def _factor(p: Mapping[str, torch.Tensor], a: str, b: str, t: str) -> torch.Tensor:
    if t in p:  # Tucker: w_a (rank, out), w_b (rank, in), t (rank, rank, kh, kw)
        return torch.einsum("i j k l, j r, i p -> p r k l", p[t], p[b], p[a])
    return p[a] @ p[b]


def _lokr(p: Mapping[str, torch.Tensor], shape: torch.Size) -> tuple[torch.Tensor, int | None]:
    w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
    if "lokr_w2" in p:
        w2 = p["lokr_w2"]
    elif "lokr_t2" in p:
        w2 = torch.einsum("i j k l, i p, j r -> p r k l", p["lokr_t2"], p["lokr_w2_a"], p["lokr_w2_b"])
    else:
        w2 = p["lokr_w2_a"] @ p["lokr_w2_b"]
    if len(shape) == 4 and w2.dim() == 2:  # noqa: PLR2004 - conv weight; w2 flattened over (in, kh, kw)
        out2 = int(w2.shape[0])
        w2 = w2.reshape(out2, -1, *shape[2:])
    if w2.dim() == 4:  # noqa: PLR2004
        w1 = w1.reshape(*w1.shape, 1, 1)
    rank = _first_dim(p, "lokr_w1_b", "lokr_w2_b") if "lokr_w1" not in p or "lokr_w2" not in p else None
    return torch.kron(w1.contiguous(), w2.contiguous()), rank


def _lora(p: Mapping[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    down, up = p["down"], p["up"]
    if "mid" in p:  # LoCon Tucker: up (out, r, 1, 1), mid (r, r, kh, kw), down (r, in, 1, 1)
        return torch.einsum("i j k l, p i, j r -> p r k l", p["mid"], up.flatten(1), down.flatten(1))
    return up.flatten(1) @ down.flatten(1)


def _first_dim(p: Mapping[str, torch.Tensor], *names: str) -> int | None:
    return next((int(p[n].shape[0]) for n in names if n in p), None)


def _norm(weight: torch.Tensor, *, out_axis: bool) -> torch.Tensor:
    """Per output row (``out_axis``) or per input column, the L2 norm over the other axes, broadcastable."""
    ones = [1] * (weight.dim() - 1)
    if out_axis:
        rows: torch.Tensor = weight.reshape(weight.shape[0], -1).norm(dim=1)
        return rows.reshape(weight.shape[0], *ones)
    columns: torch.Tensor = weight.transpose(0, 1).reshape(weight.shape[1], -1).norm(dim=1)
    return columns.reshape(weight.shape[1], *ones).transpose(0, 1)
