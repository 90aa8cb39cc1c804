"""LoRA on pipelines without diffusers' LoRA loader (Kandinsky 2.2): peft on the UNet itself.

diffusers 0.42 gives ``KandinskyV22Pipeline`` no ``load_lora_weights``; its decoder training script saves
attention-processor weights (``down_blocks.1.attentions.0.processor.to_q_lora.down.weight``, also
``add_k_proj_lora``/``add_v_proj_lora`` for the added-KV attention). The UNet is a ``PeftAdapterMixin``
model, so the loader injects a peft LoRA there, by exact module paths, and manages it through the UNet's own
``set_adapters``/``delete_adapters``. Accepted key layouts: that attention-processor form, and peft or
diffusers keys under ``unet.``. The conversion runs on meta tensors for the structural check and on the
real tensors for the load, so both see the same modules. Alphas: these layouts carry none (scale 1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

COMPONENT = "unet"
_PROCESSOR = re.compile(
    r"^(.+)\.processor\.(to_q|to_k|to_v|to_out|add_k_proj|add_v_proj)_lora\.(down|up)\.weight$"
)
_DIFFUSERS = re.compile(r"^(.+)\.lora(?:_linear_layer)?\.(down|up)\.weight$")
_PEFT = re.compile(r"^(.+)\.lora_(A|B)\.weight$")
_ROLE = {"down": "A", "up": "B", "A": "A", "B": "B"}


def handles(pipe: Any) -> bool:
    """A pipeline with a peft-capable UNet but no diffusers LoRA loader (Kandinsky 2.2 decoder)."""
    unet = getattr(pipe, COMPONENT, None)
    return not hasattr(pipe, "load_lora_weights") and hasattr(unet, "add_adapter")


def to_peft(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``<path>.lora_A.weight``/``lora_B`` keys of the UNet for every layout this module accepts.

    Raises:
        ValueError: a key in none of the accepted layouts (named).
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        path, role = _split(name.removeprefix(f"{COMPONENT}."))
        out[f"{path}.lora_{role}.weight"] = tensor
    return out


def load(pipe: Any, state: Mapping[str, torch.Tensor], *, name: str) -> None:
    """Inject a peft LoRA named ``name`` into the UNet at the state's module paths and set its tensors."""
    from peft import LoraConfig, set_peft_model_state_dict

    unet = getattr(pipe, COMPONENT)
    peft_state = to_peft(state)
    ranks = {k[: -len(".lora_A.weight")]: int(v.shape[0]) for k, v in peft_state.items() if ".lora_A." in k}
    rank = max(set(ranks.values()), key=list(ranks.values()).count)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=sorted(ranks),
        rank_pattern={p: r for p, r in ranks.items() if r != rank},
        alpha_pattern={p: r for p, r in ranks.items() if r != rank},
    )
    unet.add_adapter(config, adapter_name=name)
    result = set_peft_model_state_dict(unet, peft_state, adapter_name=name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unexpected:
        raise ValueError(f"peft did not take {len(unexpected)} tensors, e.g. {unexpected[0]}")


def names(pipe: Any) -> set[str]:
    return set(getattr(getattr(pipe, COMPONENT, None), "peft_config", {}) or {})


def delete(pipe: Any, name: str) -> None:
    getattr(pipe, COMPONENT).delete_adapters(name)


def set_weights(pipe: Any, adapters: list[str], weights: list[float]) -> None:
    getattr(pipe, COMPONENT).set_adapters(adapters, weights=weights)


def _split(name: str) -> tuple[str, str]:
    processor = _PROCESSOR.match(name)
    if processor:
        path, module, role = processor.groups()
        return f"{path}.{'to_out.0' if module == 'to_out' else module}", _ROLE[role]
    for pattern in (_DIFFUSERS, _PEFT):
        found = pattern.match(name)
        if found:
            return found.group(1), _ROLE[found.group(2)]
    raise ValueError(f"{name}: not a LoRA tensor in a layout the {COMPONENT} accepts")
