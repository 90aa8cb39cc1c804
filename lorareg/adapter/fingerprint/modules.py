"""Map every trainer's module names onto the base model's own layers: one canonical name per weight matrix.

``lorareg.adapter.facts`` already turns kohya, PEFT, diffusers, old attention-processor, LyCORIS, OneTrainer
and BFL
keys into ``component.dotted.path`` targets (SDXL SGM block names renamed to diffusers). What it leaves
apart is FLUX: diffusers splits BFL's fused matrices (``img_attn.qkv`` into ``attn.to_q/k/v``; single blocks'
``linear1`` into ``to_q/k/v`` + ``proj_mlp``), and XLabs names processors. Two adapters can only be compared
on the same matrix, so FLUX names are mapped to the BFL layout with the **row offset** of the slice a split
module covers (q at 0, k at d, v at 2d, the MLP at 3d, with d the layer's input width).

Deliberately not here: reading tensors (``tensors.py``) or deciding the family (``lorareg.adapter.facts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lorareg.adapter.facts.names import DENOISER, locate, sgm_to_diffusers

_DIT_FAMILIES = ("sd3", "flux1", "flux2")
_FLUX_FAMILIES = ("flux1", "flux2")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one file module's ΔW lands: the canonical matrix and the first row it covers."""

    canonical: str
    row_offset_blocks: int = 0  # offset in units of the module's input width d (q=0, k=1, v=2, mlp=3)


# diffusers FLUX path (after ``transformer.``) -> (BFL path template, row offset in units of d)
_FLUX_RULES: tuple[tuple[re.Pattern[str], str, int], ...] = tuple(
    (re.compile(pattern + "$"), target, offset)
    for pattern, target, offset in (
        (r"transformer_blocks\.(\d+)\.attn\.to_q", "double_blocks.{}.img_attn.qkv", 0),
        (r"transformer_blocks\.(\d+)\.attn\.to_k", "double_blocks.{}.img_attn.qkv", 1),
        (r"transformer_blocks\.(\d+)\.attn\.to_v", "double_blocks.{}.img_attn.qkv", 2),
        (r"transformer_blocks\.(\d+)\.attn\.add_q_proj", "double_blocks.{}.txt_attn.qkv", 0),
        (r"transformer_blocks\.(\d+)\.attn\.add_k_proj", "double_blocks.{}.txt_attn.qkv", 1),
        (r"transformer_blocks\.(\d+)\.attn\.add_v_proj", "double_blocks.{}.txt_attn.qkv", 2),
        (r"transformer_blocks\.(\d+)\.attn\.to_out\.0", "double_blocks.{}.img_attn.proj", 0),
        (r"transformer_blocks\.(\d+)\.attn\.to_add_out", "double_blocks.{}.txt_attn.proj", 0),
        (r"transformer_blocks\.(\d+)\.ff\.(?:net\.0\.proj|linear_in)", "double_blocks.{}.img_mlp.0", 0),
        (r"transformer_blocks\.(\d+)\.ff\.(?:net\.2|linear_out)", "double_blocks.{}.img_mlp.2", 0),
        (
            r"transformer_blocks\.(\d+)\.ff_context\.(?:net\.0\.proj|linear_in)",
            "double_blocks.{}.txt_mlp.0",
            0,
        ),
        (r"transformer_blocks\.(\d+)\.ff_context\.(?:net\.2|linear_out)", "double_blocks.{}.txt_mlp.2", 0),
        (r"transformer_blocks\.(\d+)\.norm1\.linear", "double_blocks.{}.img_mod.lin", 0),
        (r"transformer_blocks\.(\d+)\.norm1_context\.linear", "double_blocks.{}.txt_mod.lin", 0),
        (r"single_transformer_blocks\.(\d+)\.attn\.to_q", "single_blocks.{}.linear1", 0),
        (r"single_transformer_blocks\.(\d+)\.attn\.to_k", "single_blocks.{}.linear1", 1),
        (r"single_transformer_blocks\.(\d+)\.attn\.to_v", "single_blocks.{}.linear1", 2),
        (r"single_transformer_blocks\.(\d+)\.proj_mlp", "single_blocks.{}.linear1", 3),
        (r"single_transformer_blocks\.(\d+)\.attn\.to_qkv_mlp_proj", "single_blocks.{}.linear1", 0),
        (r"single_transformer_blocks\.(\d+)\.(?:proj_out|attn\.to_out)", "single_blocks.{}.linear2", 0),
        (r"single_transformer_blocks\.(\d+)\.norm\.linear", "single_blocks.{}.modulation.lin", 0),
        (r"double_blocks\.(\d+)\.processor\.qkv_lora1", "double_blocks.{}.img_attn.qkv", 0),
        (r"double_blocks\.(\d+)\.processor\.proj_lora1", "double_blocks.{}.img_attn.proj", 0),
        (r"double_blocks\.(\d+)\.processor\.qkv_lora2", "double_blocks.{}.txt_attn.qkv", 0),
        (r"double_blocks\.(\d+)\.processor\.proj_lora2", "double_blocks.{}.txt_attn.proj", 0),
    )
)


def place(key: str, family: str) -> Placement:
    """The canonical matrix (``component.path``) a file's module key adapts, for an adapter of ``family``."""
    component, path = locate(key)
    if component == DENOISER:
        component = (
            "transformer" if family in _DIT_FAMILIES else "prior" if family == "wuerstchen" else "unet"
        )
    if family == "sdxl" and component == "unet":
        path = sgm_to_diffusers(path)
    if family in _FLUX_FAMILIES and component == "transformer":
        for pattern, target, offset in _FLUX_RULES:
            m = pattern.match(path)
            if m:
                return Placement(f"transformer.{target.format(m.group(1))}", offset)
    return Placement(f"{component}.{path}")
