"""Base-model layouts for the test adapter factory: every trainable layer's dotted path and real shape.

Derived from the model configs summarised in ``LORA_FORMATS.md`` §3: SD1.x/SD2.x UNet (channels
320/640/1280, ctx 768/1024, depth 1), SDXL (ctx 2048, depths 2/10, SGM or diffusers names), CLIP-L /
OpenCLIP-H / bigG text encoders, SD3/SD3.5 MMDiT (hidden 64 x depth), FLUX.1 (3072 wide, 19 double + 38 single
blocks, diffusers and BFL names), FLUX.2 klein 4B/9B, XLabs processors. Each layout is a list of groups (one
attention site, transformer block or encoder layer) so ``tests/support/lora_factory.py`` can keep the first N.
Naming formats (kohya, PEFT, ...) live in the factory, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

Groups = list[list["Module"]]


@dataclass(frozen=True)
class Module:
    """One trainable layer of the base model: its dotted path inside a component, and its shape."""

    component: str  # unet, transformer, text_encoder, text_encoder_2, ...
    path: str
    in_features: int
    out_features: int
    kernel: tuple[int, int] | None = None  # Conv2d kernel; None for Linear


_SD_ATTN_SITES = [  # (diffusers Transformer2DModel prefix, channels) for SD1.x / SD2.x, depth 1
    *[(f"down_blocks.{b}.attentions.{i}", c) for b, c in ((0, 320), (1, 640), (2, 1280)) for i in (0, 1)],
    ("mid_block.attentions.0", 1280),
    *[(f"up_blocks.{b}.attentions.{i}", c) for b, c in ((1, 1280), (2, 640), (3, 320)) for i in (0, 1, 2)],
]
_SDXL_ATTN_SITES = [  # (diffusers prefix, SGM prefix, channels, transformer depth)
    ("down_blocks.1.attentions.0", "input_blocks.4.1", 640, 2),
    ("down_blocks.1.attentions.1", "input_blocks.5.1", 640, 2),
    ("down_blocks.2.attentions.0", "input_blocks.7.1", 1280, 10),
    ("down_blocks.2.attentions.1", "input_blocks.8.1", 1280, 10),
    ("mid_block.attentions.0", "middle_block.1", 1280, 10),
    *[(f"up_blocks.0.attentions.{i}", f"output_blocks.{i}.1", 1280, 10) for i in range(3)],
    *[(f"up_blocks.1.attentions.{i}", f"output_blocks.{3 + i}.1", 640, 2) for i in range(3)],
]
_CONV_1X1 = (1, 1)
_CONV_3X3 = (3, 3)


def _transformer_block(comp: str, prefix: str, c: int, ctx: int) -> list[Module]:
    """The 10 Linear layers of a BasicTransformerBlock (self-attn, cross-attn, GEGLU feed-forward)."""
    mods = [Module(comp, f"{prefix}.attn1.{n}", c, c) for n in ("to_q", "to_k", "to_v", "to_out.0")]
    mods.append(Module(comp, f"{prefix}.attn2.to_q", c, c))
    mods += [Module(comp, f"{prefix}.attn2.{n}", ctx, c) for n in ("to_k", "to_v")]
    mods.append(Module(comp, f"{prefix}.attn2.to_out.0", c, c))
    mods.append(Module(comp, f"{prefix}.ff.net.0.proj", c, 8 * c))  # GEGLU: value and gate
    mods.append(Module(comp, f"{prefix}.ff.net.2", 4 * c, c))
    return mods


def sd_unet(*, ctx: int, conv_proj: bool) -> Groups:
    """SD1.x (ctx 768, 1x1-conv projections) or SD2.x (ctx 1024, Linear projections): one group per site."""
    kernel = _CONV_1X1 if conv_proj else None
    groups = []
    for prefix, c in _SD_ATTN_SITES:
        block = _transformer_block("unet", f"{prefix}.transformer_blocks.0", c, ctx)
        proj = [Module("unet", f"{prefix}.{n}", c, c, kernel) for n in ("proj_in", "proj_out")]
        groups.append(proj[:1] + block + proj[1:])
    return groups


def sdxl_unet(*, sgm_names: bool) -> Groups:
    """SDXL base UNet (ctx 2048, depths 2/10, Linear projections); kohya uses the SGM block names."""
    groups = []
    for diffusers_prefix, sgm_prefix, c, depth in _SDXL_ATTN_SITES:
        prefix = sgm_prefix if sgm_names else diffusers_prefix
        mods = [Module("unet", f"{prefix}.proj_in", c, c)]
        for d in range(depth):
            mods += _transformer_block("unet", f"{prefix}.transformer_blocks.{d}", c, 2048)
        mods.append(Module("unet", f"{prefix}.proj_out", c, c))
        groups.append(mods)
    return groups


def sd_resnets() -> Groups:
    """ResnetBlock2D convs of the SD1.x down path (what kohya ``conv_dim`` / LoCon adds), one group each."""
    groups = []
    prev = 320
    for b, c in enumerate((320, 640, 1280, 1280)):
        for r in (0, 1):
            p = f"down_blocks.{b}.resnets.{r}"
            cin = prev if r == 0 else c
            mods = [
                Module("unet", f"{p}.conv1", cin, c, _CONV_3X3),
                Module("unet", f"{p}.conv2", c, c, _CONV_3X3),
            ]
            mods.append(Module("unet", f"{p}.time_emb_proj", 1280, c))
            if cin != c:
                mods.append(Module("unet", f"{p}.conv_shortcut", cin, c, _CONV_1X1))
            groups.append(mods)
        prev = c
    return groups


def clip(comp: str, *, hidden: int, layers: int, mlp: int) -> Groups:
    """CLIP / OpenCLIP text encoder in transformers naming: 6 Linear layers per encoder layer."""
    groups = []
    for i in range(layers):
        p = f"text_model.encoder.layers.{i}"
        mods = [
            Module(comp, f"{p}.self_attn.{n}", hidden, hidden)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj")
        ]
        mods += [Module(comp, f"{p}.mlp.fc1", hidden, mlp), Module(comp, f"{p}.mlp.fc2", mlp, hidden)]
        groups.append(mods)
    return groups


def clip_l(comp: str = "text_encoder") -> Groups:
    return clip(comp, hidden=768, layers=12, mlp=3072)


def sd3(*, layers: int) -> Groups:
    """SD3/SD3.5 MMDiT, diffusers names, default dreambooth targets; hidden = 64 x depth, last block has no
    ``to_add_out`` (context_pre_only)."""
    d = 64 * layers
    names = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
    groups = []
    for i in range(layers):
        last = i == layers - 1
        groups.append(
            [
                Module("transformer", f"transformer_blocks.{i}.attn.{n}", d, d)
                for n in names
                if not (last and n == "to_add_out")
            ]
        )
    return groups


def flux1_diffusers(d: int = 3072, double: int = 19, single: int = 38) -> tuple[Groups, Groups]:
    """FLUX.1 transformer in diffusers names (attention, feed-forward, single-block projections)."""
    att = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
    doubles = []
    for i in range(double):
        p = f"transformer_blocks.{i}"
        mods = [Module("transformer", f"{p}.attn.{n}", d, d) for n in att]
        for ff in ("ff", "ff_context"):
            mods += [
                Module("transformer", f"{p}.{ff}.net.0.proj", d, 4 * d),
                Module("transformer", f"{p}.{ff}.net.2", 4 * d, d),
            ]
        doubles.append(mods)
    singles = []
    for i in range(single):
        p = f"single_transformer_blocks.{i}"
        mods = [Module("transformer", f"{p}.attn.{n}", d, d) for n in ("to_q", "to_k", "to_v")]
        mods += [
            Module("transformer", f"{p}.proj_mlp", d, 4 * d),
            Module("transformer", f"{p}.proj_out", 5 * d, d),
        ]
        singles.append(mods)
    return doubles, singles


def flux1_bfl(d: int = 3072, double: int = 19, single: int = 38) -> tuple[Groups, Groups]:
    """FLUX.1 in BFL names: every Linear of Double/SingleStreamBlock (kohya's default: 19x10 + 38x3)."""
    doubles = []
    for i in range(double):
        mods = []
        for s in ("img", "txt"):
            p = f"double_blocks.{i}.{s}"
            mods += [
                Module("transformer", f"{p}_attn.qkv", d, 3 * d),
                Module("transformer", f"{p}_attn.proj", d, d),
                Module("transformer", f"{p}_mlp.0", d, 4 * d),
                Module("transformer", f"{p}_mlp.2", 4 * d, d),
                Module("transformer", f"{p}_mod.lin", d, 6 * d),
            ]
        doubles.append(mods)
    singles = [
        [
            Module("transformer", f"single_blocks.{i}.linear1", d, 3 * d + 4 * d),
            Module("transformer", f"single_blocks.{i}.linear2", d + 4 * d, d),
            Module("transformer", f"single_blocks.{i}.modulation.lin", d, 3 * d),
        ]
        for i in range(single)
    ]
    return doubles, singles


_KLEIN = {"4b": (3072, 5, 20), "9b": (4096, 8, 24)}  # hidden, double blocks, single blocks


def flux2_diffusers(variant: str) -> tuple[Groups, Groups]:
    """FLUX.2 klein in diffusers names: SwiGLU ff (D->6D, 3D->D), fused single-block projections."""
    d, double, single = _KLEIN[variant]
    att = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
    doubles = []
    for i in range(double):
        p = f"transformer_blocks.{i}"
        mods = [Module("transformer", f"{p}.attn.{n}", d, d) for n in att]
        for ff in ("ff", "ff_context"):
            mods += [
                Module("transformer", f"{p}.{ff}.linear_in", d, 6 * d),
                Module("transformer", f"{p}.{ff}.linear_out", 3 * d, d),
            ]
        doubles.append(mods)
    singles = [
        [
            Module("transformer", f"single_transformer_blocks.{i}.attn.to_qkv_mlp_proj", d, 9 * d),
            Module("transformer", f"single_transformer_blocks.{i}.attn.to_out", 4 * d, d),
        ]
        for i in range(single)
    ]
    return doubles, singles


def flux2_bfl(variant: str) -> tuple[Groups, Groups]:
    """FLUX.2 klein in BFL names (no per-block modulation; linear1 D->9D, linear2 4D->D)."""
    d, double, single = _KLEIN[variant]
    doubles = []
    for i in range(double):
        mods = []
        for s in ("img", "txt"):
            p = f"double_blocks.{i}.{s}"
            mods += [
                Module("transformer", f"{p}_attn.qkv", d, 3 * d),
                Module("transformer", f"{p}_attn.proj", d, d),
                Module("transformer", f"{p}_mlp.0", d, 6 * d),
                Module("transformer", f"{p}_mlp.2", 3 * d, d),
            ]
        doubles.append(mods)
    singles = [
        [
            Module("transformer", f"single_blocks.{i}.linear1", d, 9 * d),
            Module("transformer", f"single_blocks.{i}.linear2", 4 * d, d),
        ]
        for i in range(single)
    ]
    return doubles, singles


def xlabs(d: int = 3072, double: int = 19) -> Groups:
    """XLabs FLUX.1 processors: image (``*_lora1``) and text (``*_lora2``) qkv and proj of double blocks."""
    groups = []
    for i in range(double):
        p = f"double_blocks.{i}.processor"
        groups.append(
            [
                Module("transformer", f"{p}.qkv_lora1", d, 3 * d),
                Module("transformer", f"{p}.proj_lora1", d, d),
                Module("transformer", f"{p}.qkv_lora2", d, 3 * d),
                Module("transformer", f"{p}.proj_lora2", d, d),
            ]
        )
    return groups
