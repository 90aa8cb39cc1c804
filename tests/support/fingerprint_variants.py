"""Trained-like adapters and the re-packagings a takedown evader would try, written as real files.

Why: a weight fingerprint is only worth something if it survives what people really do to a taken-down
adapter before re-uploading it (issue #12): rename keys kohya -> PEFT / diffusers, re-save in another dtype,
move the scale between ``alpha`` and the factors, rotate the rank dimension, truncate the rank with an SVD
(kohya ``resize_lora``), drop modules, merge with another adapter, train a little further. Each adapter here
has the real layout of ``tests/support/lora_layouts.py`` and a trained-like spectrum: per-module magnitudes
drawn log-normally, singular values decaying geometrically, random singular vectors.

An adapter is held as ``{layout Module: factors}`` with ΔW = ``up @ down`` exactly (scale folded in), so every
variant is computed on ΔW and then written in a naming format, with ``alpha`` and a dtype of choice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support.lora_factory import factorization, modules
from tests.support.lora_layouts import Module
from tests.support.safetensors_builders import safetensors_bytes

DECAY = 0.7  # singular value ratio i+1 : i
F32 = np.ndarray


@dataclass(frozen=True)
class LowRank:
    """ΔW = up @ down (up: out x r, down: r x in*kh*kw)."""

    up: F32
    down: F32


@dataclass(frozen=True)
class Hadamard:
    """LoHa: ΔW = (w1a @ w1b) * (w2a @ w2b)."""

    w1a: F32
    w1b: F32
    w2a: F32
    w2b: F32


@dataclass(frozen=True)
class Kron:
    """LoKr: ΔW = kron(w1, w2a @ w2b)."""

    w1: F32
    w2a: F32
    w2b: F32


Factors = LowRank | Hadamard | Kron
Adapter = dict[Module, Factors]

# kind -> (factory kind of the original, factory kind with the same modules in diffusers/PEFT names)
LAYOUTS = {
    "sd1": ("sd1-kohya", "sd1-peft"),
    "sdxl": ("sdxl-kohya", "sdxl-peft"),
    "flux1": ("flux1-kohya", None),
}
_KOHYA_PREFIX = {
    "sd1": {"unet": "lora_unet", "text_encoder": "lora_te"},
    "sdxl": {"unet": "lora_unet", "text_encoder": "lora_te1", "text_encoder_2": "lora_te2"},
    "flux1": {"transformer": "lora_unet", "text_encoder": "lora_te1"},
}


def layout(base: str, *, blocks: int = 2) -> list[Module]:
    """The layers a ``base`` (sd1, sdxl, flux1) kohya adapter targets, text encoders included."""
    return modules(LAYOUTS[base][0], blocks=blocks, text_encoder=True)


def trained(mods: list[Module], *, kind: str = "lora", rank: int = 8, seed: int = 0) -> Adapter:
    """A trained-like adapter over ``mods``: LoRA, LoHa or LoKr factors with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    out: Adapter = {}
    for m in mods:
        width = m.in_features * (m.kernel[0] * m.kernel[1] if m.kernel else 1)
        gain = float(np.exp(rng.normal(0, 0.7))) * 0.05
        if kind == "lora":
            out[m] = _spectral(rng, m.out_features, width, rank, gain)
        elif kind == "loha":
            a, b = (
                _spectral(rng, m.out_features, width, rank, gain),
                _spectral(rng, m.out_features, width, rank, 1),
            )
            out[m] = Hadamard(a.up, a.down, b.up, b.down)
        else:
            (rows, k), (cols, n) = factorization(m.out_features), factorization(m.in_features)
            w2 = _spectral(rng, k, n, min(rank, k, n), gain)
            out[m] = Kron(rng.standard_normal((rows, cols)).astype(np.float32), w2.up, w2.down)
    return out


def _spectral(rng: np.random.Generator, out: int, width: int, rank: int, gain: float) -> LowRank:
    u, _ = np.linalg.qr(rng.standard_normal((out, rank)))
    v, _ = np.linalg.qr(rng.standard_normal((width, rank)))
    sigma = gain * DECAY ** np.arange(rank)
    return LowRank((u * sigma).astype(np.float32), v.T.astype(np.float32))


# --------------------------------------------------------------------------- re-packagings (on ΔW)


def rotated(a: Adapter, seed: int = 1) -> Adapter:
    """Factors rotated by a random orthogonal R in the rank dimension: B R, Rᵀ A (ΔW unchanged)."""
    rng = np.random.default_rng(seed)

    def rot(up: F32, down: F32) -> tuple[F32, F32]:
        r, _ = np.linalg.qr(rng.standard_normal((up.shape[1], up.shape[1])))
        return (up @ r).astype(np.float32), (r.T @ down).astype(np.float32)

    out: Adapter = {}
    for m, f in a.items():
        if isinstance(f, LowRank):
            out[m] = LowRank(*rot(f.up, f.down))
        elif isinstance(f, Hadamard):
            out[m] = Hadamard(*rot(f.w1a, f.w1b), *rot(f.w2a, f.w2b))
        else:
            out[m] = Kron(f.w1, *rot(f.w2a, f.w2b))
    return out


def svd_truncated(a: Adapter, keep: float = 0.5) -> Adapter:
    """kohya ``resize_lora``: the best rank-(r*keep) approximation of each module's ΔW."""
    out: Adapter = {}
    for m, f in a.items():
        assert isinstance(f, LowRank)
        qb, rb = np.linalg.qr(f.up)
        qa, ra = np.linalg.qr(f.down.T)
        u, s, vt = np.linalg.svd(rb @ ra.T)
        h = max(1, int(f.up.shape[1] * keep))
        out[m] = LowRank((qb @ u[:, :h] * s[:h]).astype(np.float32), (qa @ vt[:h].T).T.astype(np.float32))
    return out


def dropped(a: Adapter, share: float = 0.2, seed: int = 2) -> Adapter:
    """``share`` of the modules removed (a pruned or partially extracted copy)."""
    keys = list(a)
    gone = set(np.random.default_rng(seed).choice(len(keys), int(len(keys) * share), replace=False).tolist())
    return {m: f for i, (m, f) in enumerate(a.items()) if i not in gone}


def merged(a: Adapter, other: Adapter, weight: float = 0.8) -> Adapter:
    """Concatenation merge (kohya ``merge_lora --concat``): ΔW = w ΔW_a + (1 - w) ΔW_other, with ``other``
    first scaled to the same total ‖ΔW‖ as ``a`` (so the weights are the shares of what each contributes)."""
    ratio = np.sqrt(_energy(a) / _energy(other))
    out: Adapter = {}
    for m, f in a.items():
        g = other[m]
        assert isinstance(f, LowRank) and isinstance(g, LowRank)
        up = np.hstack([f.up * weight, g.up * (ratio * (1 - weight))]).astype(np.float32)
        out[m] = LowRank(up, np.vstack([f.down, g.down]))
    return out


def _energy(a: Adapter) -> float:
    return sum(float(np.sum((f.up @ f.down) ** 2)) for f in a.values() if isinstance(f, LowRank))


def trained_further(a: Adapter, *, noise: float = 0.03, new: float = 0.3, seed: int = 3) -> Adapter:
    """Factor noise (``noise`` of each factor's norm) and new directions holding ``new`` of ‖ΔW‖."""
    rng = np.random.default_rng(seed)

    def jitter(x: F32) -> F32:
        return (x + rng.standard_normal(x.shape) * noise * np.linalg.norm(x) / np.sqrt(x.size)).astype(
            np.float32
        )

    out: Adapter = {}
    for m, f in a.items():
        if isinstance(f, LowRank):
            base = LowRank(jitter(f.up), jitter(f.down))
            norm = float(np.linalg.norm(f.up @ f.down))
            extra = _spectral(rng, f.up.shape[0], f.down.shape[1], 2, 1.0)
            extra_norm = float(np.linalg.norm(extra.up @ extra.down))
            up = np.hstack([base.up, extra.up * (new * norm / extra_norm)])
            out[m] = LowRank(up.astype(np.float32), np.vstack([base.down, extra.down]))
        elif isinstance(f, Hadamard):
            out[m] = Hadamard(jitter(f.w1a), jitter(f.w1b), jitter(f.w2a), jitter(f.w2b))
        else:
            out[m] = Kron(jitter(f.w1), jitter(f.w2a), jitter(f.w2b))
    return out


# --------------------------------------------------------------------------- writing files

Writer = Callable[[Module, str], str]


def write(
    path: Path,
    a: Adapter,
    *,
    base: str,
    fmt: str = "kohya",
    dtype: str = "F32",
    alpha: float | None = None,
) -> Path:
    """Write ``a`` as a ``fmt`` file (kohya, peft, diffusers; LoHa/LoKr: kohya or dotted) of ``dtype``.

    kohya files carry ``.alpha`` = ``alpha`` (default: the rank, i.e. scale 1) and store ``up`` divided by
    ``alpha / rank``, which is what a trainer run with that alpha would have written for the same ΔW.
    """
    tensors: dict[str, F32] = {}
    for m, f in a.items():
        for key, module in _names(m, base, fmt):
            tensors |= _emit(key, module, f, fmt=fmt, alpha=alpha)
    path.write_bytes(_serialise(tensors, dtype))
    return path


def _names(m: Module, base: str, fmt: str) -> list[tuple[str, Module]]:
    """File module key(s) of a layer; FLUX in PEFT names splits fused BFL matrices into slices."""
    if fmt == "kohya":
        return [(f"{_KOHYA_PREFIX[base][m.component]}_{m.path.replace('.', '_')}", m)]
    path = _diffusers_path(m, base)
    if fmt == "dotted":
        return [(f"{m.component}.{path}", m)]
    if base == "flux1" and m.component == "transformer":
        return [(f"transformer.{p}", sliced) for p, sliced in _flux_split(m)]
    return [(f"{m.component}.{path}", m)]


_SDXL_PATHS: dict[str, str] = {}


def _diffusers_path(m: Module, base: str) -> str:
    if base == "sdxl" and m.component == "unet":
        if not _SDXL_PATHS:
            sgm = modules("sdxl-kohya", blocks=None, text_encoder=False)
            diff = modules("sdxl-peft", blocks=None, text_encoder=False)
            _SDXL_PATHS.update({s.path: d.path for s, d in zip(sgm, diff, strict=True)})
        return _SDXL_PATHS[m.path]
    return m.path


_FLUX_DOUBLE = {
    "img_attn.qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
    "txt_attn.qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
    "img_attn.proj": ["attn.to_out.0"],
    "txt_attn.proj": ["attn.to_add_out"],
    "img_mlp.0": ["ff.net.0.proj"],
    "img_mlp.2": ["ff.net.2"],
    "txt_mlp.0": ["ff_context.net.0.proj"],
    "txt_mlp.2": ["ff_context.net.2"],
    "img_mod.lin": ["norm1.linear"],
    "txt_mod.lin": ["norm1_context.linear"],
}
_FLUX_SINGLE = {
    "linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"],
    "linear2": ["proj_out"],
    "modulation.lin": ["norm.linear"],
}


def _flux_split(m: Module) -> list[tuple[str, Module]]:
    """diffusers' split of a BFL matrix: (path, Module with row slice) per part, d rows each, MLP the rest."""
    _, i, rest = m.path.split(".", 2)
    double = m.path.startswith("double_blocks")
    parts = (_FLUX_DOUBLE if double else _FLUX_SINGLE)[rest]
    prefix = f"{'transformer_blocks' if double else 'single_transformer_blocks'}.{i}"
    d = m.in_features
    heights = [m.out_features] if len(parts) == 1 else [d, d, d, m.out_features - 3 * d][: len(parts)]
    out, row = [], 0
    for p, height in zip(parts, heights, strict=True):
        sliced = Module(m.component, f"{m.path}#{row}:{row + height}", m.in_features, height, m.kernel)
        out.append((f"{prefix}.{p}", sliced))
        row += height
    return out


def _rows(m: Module) -> slice:
    if "#" not in m.path:
        return slice(None)
    start, stop = m.path.rsplit("#", 1)[1].split(":")
    return slice(int(start), int(stop))


def _emit(key: str, m: Module, f: Factors, *, fmt: str, alpha: float | None) -> dict[str, F32]:
    kernel = m.kernel or ()
    if isinstance(f, LowRank):
        up, down = f.up[_rows(m)], f.down
        r = up.shape[1]
        down = down.reshape(r, m.in_features, *kernel)
        up4 = up.reshape(up.shape[0], r, *((1, 1) if kernel else ()))
        if fmt == "kohya":
            a = float(r if alpha is None else alpha)
            return {
                f"{key}.lora_down.weight": down,
                f"{key}.lora_up.weight": up4 * (r / a),
                f"{key}.alpha": np.array(a, dtype=np.float32),
            }
        if fmt == "diffusers":
            mid = "lora" if m.component == "unet" else "lora_linear_layer"
            return {f"{key}.{mid}.down.weight": down, f"{key}.{mid}.up.weight": up4}
        return {f"{key}.lora_A.weight": down, f"{key}.lora_B.weight": up4}
    if isinstance(f, Hadamard):
        r = f.w1b.shape[0]
        a = float(r if alpha is None else alpha)
        return {
            f"{key}.hada_w1_a": f.w1a * (r / a),
            f"{key}.hada_w1_b": f.w1b,
            f"{key}.hada_w2_a": f.w2a,
            f"{key}.hada_w2_b": f.w2b,
            f"{key}.alpha": np.array(a, dtype=np.float32),
        }
    r = f.w2b.shape[0]
    a = float(r if alpha is None else alpha)
    return {
        f"{key}.lokr_w1": f.w1 * (r / a),
        f"{key}.lokr_w2_a": f.w2a,
        f"{key}.lokr_w2_b": f.w2b,
        f"{key}.alpha": np.array(a, dtype=np.float32),
    }


def _serialise(tensors: dict[str, F32], dtype: str) -> bytes:
    """A safetensors file with every tensor in ``dtype`` (F32, F16, or BF16 rounded to nearest even)."""
    header: dict[str, object] = {}
    chunks, offset = [], 0
    for name in sorted(tensors):
        raw = _encode(np.ascontiguousarray(tensors[name], dtype=np.float32), dtype)
        header[name] = {
            "dtype": dtype,
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    return safetensors_bytes(json.dumps(header).encode(), b"".join(chunks))


def _encode(x: F32, dtype: str) -> bytes:
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()
