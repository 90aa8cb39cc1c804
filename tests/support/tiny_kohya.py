"""kohya / sd-scripts adapter files for the tiny test pipelines, with key names as trainers write them.

diffusers' own ``convert_state_dict_to_kohya`` writes SD1-style names only; the files people actually load
use other layouts per family, and those are what exercise diffusers' converters (and lorareg's structural
check, which runs them on shapes alone):

- SD1: diffusers' module paths with ``_`` (``lora_unet_down_blocks_0_…``) and ``lora_te_`` for CLIP;
- SDXL: SGM block names (``lora_unet_input_blocks_1_1_…``, ``middle_block_1``, ``output_blocks_3_1``) and
  both text encoders (``lora_te1_`` CLIP-L, ``lora_te2_`` CLIP-G), as sd-scripts' ``sdxl_train_network``;
- FLUX.1: BFL module names with *fused* projections (``lora_unet_double_blocks_0_img_attn_qkv`` is
  to_q + to_k + to_v in one up-weight), as sd-scripts' ``networks/lora_flux.py``, plus ``lora_te1_`` CLIP-L;
- SD3: ``lora_unet_joint_blocks_0_x_block_attn_qkv`` (``networks/lora_sd3.py``).

Shapes come from the tiny models' own modules, so a file fits the pipeline it was made for. Weights are
seeded random (a trained LoRA's up-weight is not zero), alpha equals the rank unless given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from safetensors.torch import save

SGM_ATTENTION = 1  # in SGM names the attention is the second module of a block: input_blocks_N_1
_SD_ATTENTION_LINEARS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q", "attn2.to_out.0")
_CLIP_LINEARS = (
    "q_proj",
    "k_proj",
    "v_proj",
    "out_proj",
    "fc1",
    "fc2",
)  # sd-scripts: all of CLIP attention + MLP
_FLUX_DOUBLE = {  # BFL name in a double block -> the diffusers modules its up-weight concatenates
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_attn_proj": ("attn.to_out.0",),
    "img_mlp_0": ("ff.net.0.proj",),
    "img_mlp_2": ("ff.net.2",),
    "img_mod_lin": ("norm1.linear",),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_attn_proj": ("attn.to_add_out",),
    "txt_mlp_0": ("ff_context.net.0.proj",),
    "txt_mlp_2": ("ff_context.net.2",),
}
# single_blocks_N_linear1 is left out: diffusers splits it with FLUX.1-dev's widths (3072 x 3 + 12288)
# written into its converter, so no smaller model can have one.
_FLUX_SINGLE = {"linear2": ("proj_out",), "modulation_lin": ("norm.linear",)}
_SD3_JOINT = {
    "x_block_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "x_block_attn_proj": ("attn.to_out.0",),
}
_SD3_JOINT_FULL = {  # sd-scripts' full set; a context_pre_only last block lacks the context proj and mlp
    **_SD3_JOINT,
    "x_block_mlp_fc1": ("ff.net.0.proj",),
    "x_block_mlp_fc2": ("ff.net.2",),
    "x_block_adaLN_modulation_1": ("norm1.linear",),
    "context_block_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "context_block_attn_proj": ("attn.to_add_out",),
    "context_block_mlp_fc1": ("ff_context.net.0.proj",),
    "context_block_mlp_fc2": ("ff_context.net.2",),
    "context_block_adaLN_modulation_1": ("norm1_context.linear",),
}


def kohya_bytes(
    modules: dict[str, Sequence[Any]], *, rank: int, seed: int = 3, alpha: float | None = None
) -> bytes:
    """A kohya file: for each name, ``lora_down`` (rank x in), ``lora_up`` (sum of outs x rank), ``alpha``."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, targets in sorted(modules.items()):
        width = sum(int(m.weight.shape[0]) for m in targets)
        state[f"{name}.lora_down.weight"] = torch.randn(rank, targets[0].weight.shape[1], generator=generator)
        state[f"{name}.lora_up.weight"] = torch.randn(width, rank, generator=generator) * 0.5
        state[f"{name}.alpha"] = torch.tensor(float(alpha if alpha is not None else rank))
    return save(state, metadata={"ss_network_module": "networks.lora"})


def sd1_modules(pipe: Any) -> dict[str, Sequence[Any]]:
    """SD1 names are diffusers' module paths (``lora_unet_down_blocks_0_…``) plus ``lora_te_`` for CLIP."""
    out: dict[str, Sequence[Any]] = {
        "lora_unet_" + path.replace(".", "_"): (module,)
        for path, module in pipe.unet.named_modules()
        if path.endswith(_SD_ATTENTION_LINEARS)
    }
    out.update(_clip_modules("lora_te_", pipe.text_encoder))
    return out


def sdxl_modules(pipe: Any) -> dict[str, Sequence[Any]]:
    """SGM-named UNet attention modules and both text encoders' attention, as sd-scripts names them."""
    per_block = int(pipe.unet.config.layers_per_block) + 1
    out: dict[str, Sequence[Any]] = {}
    for path, module in pipe.unet.named_modules():
        if path.endswith(_SD_ATTENTION_LINEARS):
            out["lora_unet_" + _sgm_name(path, per_block).replace(".", "_")] = (module,)
    for prefix, encoder in (("lora_te1_", pipe.text_encoder), ("lora_te2_", pipe.text_encoder_2)):
        out.update(_clip_modules(prefix, encoder))
    return out


def flux_modules(pipe: Any) -> dict[str, Sequence[Any]]:
    """BFL-named FLUX.1 modules (fused qkv) and CLIP-L attention (``lora_te1_``)."""
    t = pipe.transformer
    out: dict[str, Sequence[Any]] = {}
    for i, block in enumerate(t.transformer_blocks):
        for bfl, paths in _FLUX_DOUBLE.items():
            out[f"lora_unet_double_blocks_{i}_{bfl}"] = [block.get_submodule(p) for p in paths]
    for i, block in enumerate(t.single_transformer_blocks):
        for bfl, paths in _FLUX_SINGLE.items():
            out[f"lora_unet_single_blocks_{i}_{bfl}"] = [block.get_submodule(p) for p in paths]
    out.update(_clip_modules("lora_te1_", pipe.text_encoder))
    return out


def sd3_modules(pipe: Any) -> dict[str, Sequence[Any]]:
    """sd-scripts SD3 names of the joint blocks' image attention (fused qkv)."""
    out: dict[str, Sequence[Any]] = {}
    for i, block in enumerate(pipe.transformer.transformer_blocks):
        for name, paths in _SD3_JOINT.items():
            out[f"lora_unet_joint_blocks_{i}_{name}"] = [block.get_submodule(p) for p in paths]
    return out


def sd3_full_modules(pipe: Any) -> dict[str, Sequence[Any]]:
    """Every module sd-scripts adapts in the joint blocks, plus ``lora_te1_``/``lora_te2_`` CLIP attention."""
    out: dict[str, Sequence[Any]] = {}
    for i, block in enumerate(pipe.transformer.transformer_blocks):
        for name, paths in _SD3_JOINT_FULL.items():
            if all(_has(block, p) for p in paths):
                out[f"lora_unet_joint_blocks_{i}_{name}"] = [block.get_submodule(p) for p in paths]
    for prefix, encoder in (("lora_te1_", pipe.text_encoder), ("lora_te2_", pipe.text_encoder_2)):
        out.update(_clip_modules(prefix, encoder))
    return out


def _has(block: torch.nn.Module, path: str) -> bool:
    try:
        module = block.get_submodule(path)
        return isinstance(getattr(module, "base_layer", module), torch.nn.Linear)
    except AttributeError:
        return False


def _clip_modules(prefix: str, encoder: torch.nn.Module) -> dict[str, Sequence[Any]]:
    """Trainers name CLIP modules ``text_model.encoder…`` (transformers 4), whatever the runtime nests."""
    return {
        prefix + ("text_model." + path.removeprefix("text_model.")).replace(".", "_"): (module,)
        for path, module in encoder.named_modules()
        if path.endswith(_CLIP_LINEARS)
    }


def _sgm_name(path: str, per_block: int) -> str:
    """``down_blocks.0.attentions.0.x`` -> ``input_blocks.1.1.x`` (the inverse of diffusers' SGM mapping)."""
    parts = path.split(".")
    if parts[0] == "mid_block":
        return ".".join(["middle_block", str(SGM_ATTENTION), *parts[3:]])
    block, layer = int(parts[1]), int(parts[3])
    if parts[0] == "down_blocks":
        return ".".join(["input_blocks", str(block * per_block + layer + 1), str(SGM_ATTENTION), *parts[4:]])
    return ".".join(["output_blocks", str(block * per_block + layer), str(SGM_ATTENTION), *parts[4:]])
