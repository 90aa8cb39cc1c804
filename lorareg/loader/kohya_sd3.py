"""sd-scripts (kohya) SD3/SD3.5 adapters, which diffusers 0.42 cannot convert, turned into peft keys.

sd-scripts' ``networks/lora_sd3.py`` names MMDiT modules as the SGM checkpoint does
(``lora_unet_joint_blocks_3_x_block_attn_qkv``) with *fused* q/k/v projections, and the text encoders
``lora_te1_`` (CLIP-L), ``lora_te2_`` (CLIP-G), ``lora_te3_`` (T5). diffusers' SD3 loader drops such keys
with a log line, so lorareg converts them first; the conversion is exact:

- a fused ``qkv`` module (down ``(r, d)``, up ``(3d, r)``) becomes three modules sharing the down
  projection, each with its third of the up rows (``ΔW_q = up_q @ down``, and so on);
- ``alpha / rank`` is folded into the up projection, so the result loads at peft scale 1;
- ``adaLN_modulation_1`` of a ``context_pre_only`` last block (output ``2d``: shift, scale) is
  ``AdaLayerNormContinuous`` in diffusers, whose output is (scale, shift): the two halves are swapped;
- text-encoder names are matched against the pipeline's own module names.

A key that maps to nothing raises ``ValueError`` (the structural check reports it); nothing is dropped
silently. Works on meta tensors too, so the shape check runs it without reading data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

_JOINT = re.compile(r"^lora_unet_joint_blocks_(\d+)_(x_block|context_block)_(.+)$")
_TARGETS = {  # (stream, sgm module) -> diffusers modules of transformer_blocks.N its output rows feed
    ("x_block", "attn_qkv"): ("attn.to_q", "attn.to_k", "attn.to_v"),
    ("x_block", "attn_proj"): ("attn.to_out.0",),
    ("x_block", "attn2_qkv"): ("attn2.to_q", "attn2.to_k", "attn2.to_v"),
    ("x_block", "attn2_proj"): ("attn2.to_out.0",),
    ("x_block", "mlp_fc1"): ("ff.net.0.proj",),
    ("x_block", "mlp_fc2"): ("ff.net.2",),
    ("x_block", "adaLN_modulation_1"): ("norm1.linear",),
    ("context_block", "attn_qkv"): ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    ("context_block", "attn_proj"): ("attn.to_add_out",),
    ("context_block", "mlp_fc1"): ("ff_context.net.0.proj",),
    ("context_block", "mlp_fc2"): ("ff_context.net.2",),
    ("context_block", "adaLN_modulation_1"): ("norm1_context.linear",),
}
_TEXT = (("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te3_", "text_encoder_3"))
_SUFFIXES = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha"}
_MAX_NAMED = 3


def is_kohya_sd3(pipe: Any, keys: Mapping[str, object]) -> bool:
    """An SD3 pipeline and sd-scripts' ``joint_blocks`` names: the one layout this module converts."""
    transformer = getattr(pipe, "transformer", None)
    sd3 = type(getattr(transformer, "_orig_mod", transformer)).__name__ == "SD3Transformer2DModel"
    return sd3 and any(k.startswith("lora_unet_joint_blocks_") for k in keys)


def convert_kohya_sd3(pipe: Any, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers peft keys (``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``) for ``state``.

    Raises:
        ValueError: a module without both projections, or a name that maps to no module of ``pipe``.
    """
    modules, unknown = _modules(state)
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, parts in modules.items():
        if "down" not in parts or "up" not in parts:
            raise ValueError(f"{key}: needs lora_down and lora_up, has {sorted(parts)}")
        targets = _targets(pipe, key)
        if targets is None:
            unmapped.append(key)
            continue
        down, up = parts["down"], parts["up"] * _scale(parts)
        if key.endswith("adaLN_modulation_1") and up.shape[0] == 2 * down.shape[1]:
            shift, scale = up.chunk(2, dim=0)
            up = torch.cat([scale, shift], dim=0)  # AdaLayerNormContinuous: (scale, shift)
        for target, rows in zip(targets, up.chunk(len(targets), dim=0), strict=True):
            out[f"{target}.lora_A.weight"] = down
            out[f"{target}.lora_B.weight"] = rows.contiguous()
    if unknown or unmapped:
        names = (unknown + unmapped)[:_MAX_NAMED]
        more = len(unknown) + len(unmapped) - len(names)
        raise ValueError(
            f"kohya SD3 names that map to no module of this pipeline: {', '.join(names)}"
            + (f" (+{more} more)" if more > 0 else "")
        )
    return out


def _modules(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    modules: dict[str, dict[str, torch.Tensor]] = {}
    unknown: list[str] = []
    for name, tensor in state.items():
        suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
        if suffix is None:
            unknown.append(name)
        else:
            modules.setdefault(name[: -len(suffix)], {})[_SUFFIXES[suffix]] = tensor
    return modules, unknown


def _targets(pipe: Any, key: str) -> tuple[str, ...] | None:
    joint = _JOINT.match(key)
    if joint:
        block, stream, module = joint.groups()
        names = _TARGETS.get((stream, module))
        return tuple(f"transformer.transformer_blocks.{block}.{n}" for n in names) if names else None
    for prefix, component in _TEXT:
        if key.startswith(prefix):
            path = _text_path(getattr(pipe, component, None), key[len(prefix) :])
            return (f"{component}.{path}",) if path else None
    return None


def _text_path(encoder: Any, flat_name: str) -> str | None:
    """The text encoder's module whose path, ``.`` -> ``_``, is ``flat_name`` (with or without text_model)."""
    if not isinstance(encoder, torch.nn.Module):
        return None
    for path, module in encoder.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        spellings = {
            path.replace(".", "_"),
            ("text_model." + path.removeprefix("text_model.")).replace(".", "_"),
        }
        if flat_name in spellings:
            return str(path)
    return None


def _scale(parts: Mapping[str, torch.Tensor]) -> float:
    alpha = parts.get("alpha")
    rank = int(parts["down"].shape[0])
    if alpha is None or alpha.is_meta:
        return 1.0
    value = float(alpha)
    return value / rank if value else 1.0
