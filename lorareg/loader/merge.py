"""LyCORIS LoHa/LoKr adapters, which diffusers cannot load: checked, merged into the weights, undone exactly.

ComfyUI and A1111 apply LyCORIS files by adding ΔW (``lycoris.py``) to each base weight; so does lorareg,
with the guarantees of the rest of the loader:

1. **check first** (:func:`merge_reasons`): every module key must name a Linear/Conv2d of this pipeline
   (kohya names; SDXL's SGM names mapped by diffusers' own map with this UNet's config), and ΔW — on *meta*
   tensors of the header's shapes, so no data is read — must have that weight's shape;
2. **merge** (:func:`merge_adapter`): the untouched weight of every module is kept once (``pristine``);
   each module's weight is recomputed from it and every merged adapter in load order;
3. **unmerge** (:func:`unmerge_adapter`): the adapter is dropped and its modules recomputed from
   ``pristine``; a module no adapter touches any more gets its pristine tensor back, bit for bit.

Merged adapters are not peft adapters: ``pipe.set_adapters`` and ``disable_lora`` do not reach them; their
weight is fixed at load time. The record lives on the pipeline (:data:`MERGED_ATTRIBUTE`), which
attribution reads. Memory: one copy of each touched base weight, plus the adapters' own tensors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lorareg.adapter.facts.names import flat
from lorareg.adapter.facts.parse import split_tensor_name
from lorareg.images.provenance import MERGED_ATTRIBUTE
from lorareg.loader.lycoris import LycorisError, delta_weight, merged_weight

MERGED_TYPES = ("loha", "lokr")  # adapter types (``AdapterFacts.type``) the loader merges itself
MAX_NAMED = 5  # module keys quoted in one reason before "(+N more)"
_PREFIXES = (  # kohya/LyCORIS key prefix -> pipeline components it may name
    ("lora_prior_unet_", ("prior",)),
    ("lora_unet_", ("unet", "transformer", "prior")),
    ("lora_te1_", ("text_encoder",)),
    ("lora_te2_", ("text_encoder_2",)),
    ("lora_te_", ("text_encoder",)),
)
_SGM_BLOCKS = ("input_blocks", "middle_block", "output_blocks")
_BLOCK_NAMES = {"input_blocks": "down_blocks", "middle_block": "mid_block", "output_blocks": "up_blocks"}
_DIFFUSERS_BLOCKS = re.compile(r"(?<=^lora_unet_)(input_blocks|middle_block|output_blocks)")  # after the map
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


@dataclass(slots=True)
class _Merged:
    """The merged adapters of one pipeline, in load order, and the untouched weights they were merged into."""

    adapters: dict[str, tuple[float, dict[tuple[str, str], dict[str, torch.Tensor]]]] = field(
        default_factory=dict
    )
    pristine: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    modules: dict[tuple[str, str], Any] = field(default_factory=dict)


def merged_names(pipe: Any) -> list[str]:
    """Names of the LyCORIS adapters merged into ``pipe``, in load order."""
    record = getattr(pipe, MERGED_ATTRIBUTE, None)
    return list(record.adapters) if isinstance(record, _Merged) else []


def merge_reasons(pipe: Any, header: Any, scalars: Mapping[str, float]) -> list[str]:
    """Every reason the adapter cannot be merged into ``pipe``; empty when each module fits."""
    groups, stray = _group(_meta_tensors(header, scalars))
    reasons = [f"{len(stray)} tensors are not LyCORIS module parts: {_names(stray)}"] if stray else []
    missing, mismatched = [], []
    renames = _sgm_renames(pipe, groups)
    for key, parts in groups.items():
        module = _resolve(pipe, renames.get(key, key))
        if module is None:
            missing.append(key)
            continue
        try:
            delta_weight(parts, module[2].weight.shape)
        except (LycorisError, RuntimeError) as e:
            mismatched.append(f"{key}: {e}")
    if missing:
        reasons.append(f"{len(missing)} of {len(groups)} modules are not in this pipeline: {_names(missing)}")
    if mismatched:
        reasons.append(f"shape mismatch: {_names(mismatched)}")
    return reasons


def merge_adapter(pipe: Any, name: str, state: Mapping[str, torch.Tensor], *, weight: float) -> None:
    """Merge a checked adapter's ΔW into ``pipe``'s weights (call :func:`merge_reasons` first)."""
    record = _record(pipe)
    groups, _ = _group(dict(state))
    modules: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    renames = _sgm_renames(pipe, groups)
    for key, parts in groups.items():
        found = _resolve(pipe, renames.get(key, key))
        if found is None:
            raise LycorisError(f"{key}: no such module in this pipeline")
        component, path, module = found
        record.modules.setdefault((component, path), module)
        record.pristine.setdefault((component, path), module.weight.detach().clone())
        modules[(component, path)] = parts
    record.adapters[name] = (weight, modules)
    try:
        _recompute(record, modules)
    except Exception:
        unmerge_adapter(pipe, name)
        raise


def unmerge_adapter(pipe: Any, name: str) -> None:
    """Take adapter ``name`` out again; modules no merged adapter touches get their pristine weight back."""
    record = _record(pipe)
    _, modules = record.adapters.pop(name)
    _recompute(record, modules)
    for target in modules:
        if not any(target in mods for _, mods in record.adapters.values()):
            record.pristine.pop(target, None)
            record.modules.pop(target, None)
    if not record.adapters:
        delattr(pipe, MERGED_ATTRIBUTE)


def _recompute(record: _Merged, targets: Mapping[tuple[str, str], object]) -> None:
    """Each target's weight = its pristine weight with every merged adapter applied in load order."""
    with torch.no_grad():
        for target in targets:
            weight = record.pristine[target]
            for strength, modules in record.adapters.values():
                parts = modules.get(target)
                if parts is not None:
                    delta = delta_weight(parts, weight.shape)
                    weight = merged_weight(weight, delta, strength=strength, dora_scale=parts.get("dora"))
            record.modules[target].weight.copy_(weight)


def _record(pipe: Any) -> _Merged:
    record = getattr(pipe, MERGED_ATTRIBUTE, None)
    if not isinstance(record, _Merged):
        record = _Merged()
        setattr(pipe, MERGED_ATTRIBUTE, record)
    return record


def _group(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    groups: dict[str, dict[str, torch.Tensor]] = {}
    stray: list[str] = []
    for name, tensor in state.items():
        split = split_tensor_name(name)
        if split is None:
            stray.append(name)
        else:
            groups.setdefault(split[0], {})[split[1]] = tensor
    return groups, stray


def _resolve(pipe: Any, key: str) -> tuple[str, str, Any] | None:
    """``(component, path, module)`` a kohya/LyCORIS module key names in ``pipe``, if a Linear/Conv2d."""
    for prefix, components in _PREFIXES:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        for component in components:
            table = _module_table(getattr(pipe, component, None))
            if rest in table:
                path, module = table[rest]
                return component, path, module
        return None
    return None


def _sgm_renames(pipe: Any, keys: Mapping[str, object]) -> dict[str, str]:
    """SGM block names (SDXL kohya/LyCORIS) renamed by diffusers' own map, with *this* UNet's config.

    The block arithmetic depends on ``layers_per_block``, so the pipeline's config decides, as it does when
    diffusers loads an SGM-named LoRA (``_maybe_map_sgm_blocks_to_diffusers``).
    """
    unet = getattr(pipe, "unet", None)
    sgm = [k for k in keys if k.startswith("lora_unet_") and any(p in k for p in _SGM_BLOCKS)]
    if unet is None or not sgm:
        return {}
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    sentinels = {k: torch.empty(0) for k in sgm}
    try:
        mapped = _maybe_map_sgm_blocks_to_diffusers(dict(sentinels), unet.config)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError, IndexError):
        return {}  # unmappable names then show up as missing modules
    by_id = {id(v): _DIFFUSERS_BLOCKS.sub(lambda m: _BLOCK_NAMES[m.group(1)], k) for k, v in mapped.items()}
    return {k: by_id[id(t)] for k, t in sentinels.items() if id(t) in by_id}


def _module_table(component: Any) -> dict[str, tuple[str, Any]]:
    """``flat name -> (path, module)`` of every Linear/Conv2d (base layers under peft wrappers)."""
    if not isinstance(component, torch.nn.Module):
        return {}
    table: dict[str, tuple[str, Any]] = {}
    for path, module in component.named_modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d) and not path.endswith(".base_layer"):
            clean = path.replace(".base_layer", "")
            table[flat(clean)] = (clean, module)
            table.setdefault(flat("text_model." + clean.removeprefix("text_model.")), (clean, module))
    for path, module in component.named_modules():  # peft-wrapped layers: merge into the base layer
        base = getattr(module, "base_layer", None)
        if isinstance(base, torch.nn.Linear | torch.nn.Conv2d):
            table[flat(path)] = (path, base)
            table.setdefault(flat("text_model." + path.removeprefix("text_model.")), (path, base))
    return table


def _meta_tensors(header: Any, scalars: Mapping[str, float]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, info in header.tensors.items():
        if not info.shape and name in scalars:
            out[name] = torch.tensor(scalars[name])
        else:
            out[name] = torch.empty(info.shape, dtype=_DTYPES.get(info.dtype, torch.float32), device="meta")
    return out


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" (+{len(items) - MAX_NAMED} more)" if len(items) > MAX_NAMED else "")
