"""LyCORIS LoHa/LoKr files for the tiny pipelines, and an independent reference of the weights they give.

Files use the names LyCORIS writes for SD models (kohya's ``lora_unet_<path>``/``lora_te_<path>`` with
``.hada_w1_a``..., ``.lokr_w1``..., ``.alpha``, ``.dora_scale``) and the tensor layouts of LyCORIS'
modules: LoHa ``w_a (out, r)``, ``w_b (r, in·k·k)``; with Tucker ``t (r, r, k, k)``, ``w_a (r, out)``,
``w_b (r, in)``; LoKr ``w1 (a, b)`` with ``w2 = w2_a @ w2_b`` or full, conv ``w2`` 4-D or Tucker.

The reference (:func:`reference_weight`) is written with numpy from the published formulas, apart from the
loader's torch code, so the test compares two implementations rather than one with itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from safetensors.torch import save

RANK = 2
ALPHA = 1.0  # != RANK: a loader that dropped alpha/rank would give other weights


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * 0.3


def loha_parts(shape: torch.Size, *, tucker: bool, generator: torch.Generator) -> dict[str, torch.Tensor]:
    out, inp = int(shape[0]), int(shape[1])
    if tucker:
        k = tuple(int(x) for x in shape[2:])
        return {
            "hada_t1": _rand(generator, RANK, RANK, *k),
            "hada_w1_a": _rand(generator, RANK, out),
            "hada_w1_b": _rand(generator, RANK, inp),
            "hada_t2": _rand(generator, RANK, RANK, *k),
            "hada_w2_a": _rand(generator, RANK, out),
            "hada_w2_b": _rand(generator, RANK, inp),
        }
    flat_in = int(np.prod(shape[1:]))
    return {
        "hada_w1_a": _rand(generator, out, RANK),
        "hada_w1_b": _rand(generator, RANK, flat_in),
        "hada_w2_a": _rand(generator, out, RANK),
        "hada_w2_b": _rand(generator, RANK, flat_in),
    }


def lokr_parts(shape: torch.Size, *, form: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``form``: ``full`` (w1, w2 full), ``low`` (w2 = w2_a @ w2_b), ``tucker`` (conv: t2, w2_a, w2_b)."""
    out, inp = int(shape[0]), int(shape[1])
    a, b = 2, 2  # w1 (2, 2); w2 takes the rest
    c, d = out // a, inp // b
    k = tuple(int(x) for x in shape[2:])
    parts = {"lokr_w1": _rand(generator, a, b)}
    if form == "full":
        parts["lokr_w2"] = _rand(generator, c, d, *k)
    elif form == "tucker":
        parts |= {
            "lokr_t2": _rand(generator, RANK, RANK, *k),
            "lokr_w2_a": _rand(generator, RANK, c),
            "lokr_w2_b": _rand(generator, RANK, d),
        }
    else:
        parts |= {
            "lokr_w2_a": _rand(generator, c, RANK),
            "lokr_w2_b": _rand(generator, RANK, d * int(np.prod(k))),
        }
    return parts


def dora_scale(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """LyCORIS' magnitude vector, per input column ``(1, in, 1, 1)``, perturbed from the base's norms."""
    w = weight.detach().float()
    norms = w.transpose(0, 1).reshape(w.shape[1], -1).norm(dim=1)
    shape = (1, w.shape[1], *([1] * (w.dim() - 2)))
    return (norms * (1 + 0.1 * torch.rand(w.shape[1], generator=generator))).reshape(shape)


def lycoris_bytes(modules: dict[str, dict[str, torch.Tensor]]) -> bytes:
    """A LyCORIS safetensors file: ``<key>.<role>`` tensors plus a float ``.alpha`` per module."""
    state: dict[str, torch.Tensor] = {}
    for key, parts in modules.items():
        for role, tensor in parts.items():
            state[f"{key}.{role}"] = tensor.contiguous()
        state[f"{key}.alpha"] = torch.tensor(ALPHA)
    return save(state, metadata={"ss_network_module": "lycoris.kohya"})


def kohya_key(component: str, path: str) -> str:
    prefix = {"unet": "lora_unet_", "text_encoder": "lora_te_"}[component]
    return prefix + (
        "text_model." + path.removeprefix("text_model.") if component != "unet" else path
    ).replace(".", "_")


def reference_weight(base: torch.Tensor, parts: dict[str, torch.Tensor], strength: float) -> np.ndarray:
    """The merged weight from the published LyCORIS formulas, in float64 numpy."""
    p = {k: v.double().numpy() for k, v in parts.items()}
    w = base.double().numpy()
    if "hada_w1_a" in p:
        delta = _factor(p, "1", w.shape) * _factor(p, "2", w.shape) * ALPHA / RANK
    else:
        w2, scale = _lokr_w2(p, w.shape)
        w1 = p["lokr_w1"].reshape(p["lokr_w1"].shape + (1,) * (w.ndim - 2))
        delta = np.kron(w1, w2) * scale
    if "dora_scale" not in p:
        return w + strength * delta
    merged = w + delta
    columns = np.sqrt((merged**2).sum(axis=tuple(i for i in range(merged.ndim) if i != 1), keepdims=True))
    decomposed = merged * p["dora_scale"] / (columns + np.finfo(np.float32).eps)
    return w + strength * (decomposed - w)


def _factor(p: dict[str, np.ndarray], n: str, shape: tuple[int, ...]) -> np.ndarray:
    if f"hada_t{n}" in p:
        t, wa, wb = p[f"hada_t{n}"], p[f"hada_w{n}_a"], p[f"hada_w{n}_b"]
        out = np.zeros(shape)
        for o in range(shape[0]):
            for i in range(shape[1]):
                out[o, i] = np.tensordot(np.outer(wa[:, o], wb[:, i]), t, axes=([0, 1], [0, 1]))
        return out
    return (p[f"hada_w{n}_a"] @ p[f"hada_w{n}_b"]).reshape(shape)


def _lokr_w2(p: dict[str, np.ndarray], shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    c, d = shape[0] // p["lokr_w1"].shape[0], shape[1] // p["lokr_w1"].shape[1]
    if "lokr_w2" in p:
        return p["lokr_w2"], 1.0  # both factors full: LyCORIS has no rank here, scale 1
    wa, wb = p["lokr_w2_a"], p["lokr_w2_b"]
    if "lokr_t2" in p:
        t = p["lokr_t2"]
        w2 = np.zeros((c, d, *shape[2:]))
        for o in range(c):
            for i in range(d):
                w2[o, i] = np.tensordot(np.outer(wa[:, o], wb[:, i]), t, axes=([0, 1], [0, 1]))
        return w2, ALPHA / RANK
    return (wa @ wb).reshape(c, d, *shape[2:]), ALPHA / RANK


def modules_of(model: torch.nn.Module, suffixes: Iterable[str]) -> dict[str, Any]:
    return {path: m for path, m in model.named_modules() if path.endswith(tuple(suffixes))}
