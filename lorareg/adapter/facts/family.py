"""Decide an adapter's base-model family from layer names and shapes (``LORA_FORMATS.md`` §3).

Evidence, strongest first: Stable Cascade prefixes; DiT block names and the hidden width (SD3: hidden = 64 x
depth; FLUX.1 vs FLUX.2 by fused single-block projections, MLP ratios, per-block modulation and block
counts); the UNet cross-attention context (768 SD1, 1024 SD2, 2048 SDXL), SGM block names, transformer depth
and 1x1-conv projections; finally the text encoders' widths. Every decision comes with a reason sentence. The
file's metadata is never consulted here: it is what the result is checked against.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lorareg.adapter.facts.dit_partial import KLEIN4B_SAME, partial_dit_family
from lorareg.adapter.facts.names import DENOISER

FLUX1_WIDTH = 3072  # FLUX.1 dev/schnell hidden size (24 heads x 128)
FLUX2_WIDTHS = (4096, 6144)  # FLUX.2 klein-9B, FLUX.2-dev; klein-4B shares 3072 with FLUX.1
KLEIN4B_BLOCKS = (5, 20)  # double, single blocks of FLUX.2 klein-4B: FLUX.1 has 19 and 38
SD3_HEAD_DIM = 64  # SD3 hidden = 64 x depth
SD3_DEPTHS = {24: "SD3-medium / SD3.5-medium", 38: "SD3.5-large"}
_CTX_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl"}  # 1280: the SDXL refiner (bigG only)
_DIT_NAMES = re.compile(
    r"(^|_)(double_blocks|single_blocks|single_transformer_blocks)_\d+_"
    r"|transformer_blocks_\d+_(attn_(add_[qkv]_proj|to_add_out|to_qkv_mlp_proj)|ff_context_)"
)
_FLUX_NAMES = re.compile(r"(^|_)(double_blocks|single_blocks|single_transformer_blocks)_\d+_|to_qkv_mlp_proj")
_FLUX1_ONLY = ("proj_mlp", "norm1_linear", "norm1_context_linear", "img_mod_lin", "txt_mod_lin")
_BLOCK_INDEX = re.compile(
    r"(?:^|_)(double_blocks|transformer_blocks|single_blocks|single_transformer_blocks)_(\d+)_"
)


@dataclass(frozen=True, slots=True)
class Layer:
    """What family detection sees of one adapted layer."""

    component: str
    flat: str  # path with dots as underscores, the spelling all formats share
    in_features: int | None
    out_features: int | None
    kernel: tuple[int, ...] | None


def family_alternatives(family: str, reasons: Sequence[str]) -> tuple[str, ...]:
    """Families the tensors cannot rule out besides ``family`` (FLUX.1 vs FLUX.2 klein-4B at hidden 3072)."""
    return ("flux2",) if family == "flux1" and any(KLEIN4B_SAME in r for r in reasons) else ()


def detect_family(layers: Sequence[Layer], keys: Iterable[str]) -> tuple[str, list[str]]:
    """Return ``(family, reasons)``; ``unknown`` when no layer identifies a base model."""
    if any(k.startswith(("lora_prior_unet_", "lora_prior_te_")) for k in keys):
        return "wuerstchen", ["family wuerstchen: Stable Cascade prior prefix lora_prior_"]
    if any(x.component == "prior" for x in layers):
        return "wuerstchen", [
            "family wuerstchen: prior component (diffusers' Würstchen prior, unet_name prior)"
        ]
    denoiser = [x for x in layers if x.component in (DENOISER, "unet", "transformer")]
    found = _dit_family(denoiser) or _unet_family(denoiser) or _text_encoder_family(layers)
    return found or ("unknown", ["family unknown: no layer name and shape identifies a base model"])


def _dit_family(layers: Sequence[Layer]) -> tuple[str, list[str]] | None:
    flats = [x.flat for x in layers]
    width = _most_common(x.in_features for x in layers)
    if any("joint_blocks_" in f for f in flats):
        return "sd3", [f"family sd3: MMDiT joint_blocks names{_sd3_depth(width)}"]
    if not any(_DIT_NAMES.search(f) for f in flats) or width is None:
        partial = partial_dit_family(layers)  # attention-only: names every DiT shares, told by width
        return (partial.family, [partial.reason]) if partial else None
    if not any(_FLUX_NAMES.search(f) for f in flats) and width % SD3_HEAD_DIM == 0:
        if width != FLUX1_WIDTH and width not in FLUX2_WIDTHS:
            return "sd3", [f"family sd3: joint attention (add_q_proj) with hidden {width}{_sd3_depth(width)}"]
    return _flux_family(layers, width)


def _flux_family(layers: Sequence[Layer], width: int) -> tuple[str, list[str]]:
    one, two = _flux1_tells(layers, width), _flux2_tells(layers, width)
    if one and not two:
        return "flux1", [f"family flux1 (hidden {width}): " + "; ".join(sorted(set(one))[:3])]
    if two and not one:
        return "flux2", [f"family flux2 (hidden {width}): " + "; ".join(sorted(set(two))[:3])]
    if one and two:
        winner = "flux1" if len(one) > len(two) else "flux2"
        return winner, [f"family {winner}: conflicting FLUX.1 tells ({one[0]}) and FLUX.2 tells ({two[0]})"]
    if width in FLUX2_WIDTHS:
        return "flux2", [f"family flux2: hidden {width}"]
    if width == FLUX1_WIDTH:
        return "flux1", [
            f"family flux1: hidden 3072 joint attention; {KLEIN4B_SAME} (the pipeline's structure decides)"
        ]
    return "unknown", [f"family unknown: DiT block names with hidden {width}, which no known model has"]


def _flux1_tells(layers: Sequence[Layer], width: int) -> list[str]:
    tells = []
    for x in layers:
        f = x.flat
        only = next((n for n in _FLUX1_ONLY if f.endswith(n)), None)
        if only:
            tells.append(f"{only} exists only in FLUX.1")
        elif re.search(r"single_blocks_\d+_modulation_lin$", f):
            tells.append("per-block modulation")
        elif re.search(r"single_transformer_blocks_\d+_attn_to_[qkv]$", f):
            tells.append("unfused single-block attention")
        elif re.search(r"ff(_context)?_net_0_proj$", f) and x.out_features == 4 * width:
            tells.append("feed-forward ratio 4")
        elif f.endswith("linear1") and x.out_features == 7 * width:
            tells.append(f"linear1 out {x.out_features} = 7 x hidden")
        elif f.endswith("linear2") and x.in_features == 5 * width:
            tells.append(f"linear2 in {x.in_features} = 5 x hidden")
        elif f.endswith("mlp_0") and x.out_features == 4 * width:
            tells.append("img_mlp ratio 4")
        elif re.search(r"processor_(qkv|proj)_lora", f):
            tells.append("XLabs processors (FLUX.1 only)")
    double, single = (
        _max_index(layers, ("double_blocks", "transformer_blocks")),
        _max_index(layers, ("single_blocks", "single_transformer_blocks")),
    )
    if width == FLUX1_WIDTH and (double >= KLEIN4B_BLOCKS[0] or single >= KLEIN4B_BLOCKS[1]):
        tells.append(f"block index past FLUX.2 klein-4B's {KLEIN4B_BLOCKS[0]}/{KLEIN4B_BLOCKS[1]} blocks")
    return tells


def _flux2_tells(layers: Sequence[Layer], width: int) -> list[str]:
    tells = []
    if width in FLUX2_WIDTHS:
        tells.append(f"hidden {width}")
    for x in layers:
        f = x.flat
        if "to_qkv_mlp_proj" in f or "stream_modulation" in f:
            tells.append("fused single-block projection / shared modulation")
        elif re.search(r"ff(_context)?_linear_(in|out)$", f):
            tells.append("SwiGLU feed-forward names")
        elif f.endswith("linear1") and x.out_features == 9 * width:
            tells.append(f"linear1 out {x.out_features} = 9 x hidden")
        elif f.endswith("linear2") and x.in_features == 4 * width:
            tells.append(f"linear2 in {x.in_features} = 4 x hidden")
        elif f.endswith("mlp_0") and x.out_features == 6 * width:
            tells.append("img_mlp ratio 6 (SwiGLU)")
    return tells


def _unet_family(layers: Sequence[Layer]) -> tuple[str, list[str]] | None:
    flats = [x.flat for x in layers]
    if any(re.search(r"attentions_\d+_add_[kv]_proj$", f) for f in flats):
        return "kandinsky", [
            "family kandinsky: added-KV attention (add_k_proj) directly under UNet attentions"
        ]
    ctx = _most_common(x.in_features for x in layers if re.search(r"attn2_to_[kv]$", x.flat))
    if ctx in _CTX_FAMILY:
        fam = _CTX_FAMILY[ctx]
        return fam, [f"family {fam}: cross-attention context {ctx} (attn2.to_k in-features)"]
    if any(f.startswith(("input_blocks_", "output_blocks_", "middle_block_")) for f in flats):
        return "sdxl", ["family sdxl: SGM UNet block names (kohya writes them for SDXL only)"]
    if any(re.search(r"transformer_blocks_[1-9]", f) for f in flats):
        return "sdxl", ["family sdxl: transformer depth > 1 (SD1/SD2 have depth 1)"]
    proj = [x for x in layers if x.flat.endswith(("proj_in", "proj_out"))]
    if any(x.kernel is not None for x in proj):
        return "sd1", ["family sd1: proj_in/proj_out are 1x1 convs"]
    if proj and any(f.startswith("down_blocks_0_attentions") for f in flats):
        return "sd2", ["family sd2: Linear proj_in with attention at 320 channels (SDXL has none there)"]
    return None


def _text_encoder_family(layers: Sequence[Layer]) -> tuple[str, list[str]] | None:
    width = {
        comp: _most_common(x.in_features for x in layers if x.component == comp and x.flat.endswith("q_proj"))
        for comp in ("text_encoder", "text_encoder_2")
    }
    if width["text_encoder_2"] == 1280:
        return "sdxl", ["family sdxl: second text encoder is OpenCLIP bigG (1280 wide)"]
    if width["text_encoder"] == 1024:
        return "sd2", ["family sd2: text encoder is OpenCLIP-H (1024 wide)"]
    if width["text_encoder"] == 768 and width["text_encoder_2"] is None:
        return "sd1", ["family sd1: only a CLIP-L text encoder (weak evidence: other families share CLIP-L)"]
    return None


def _sd3_depth(width: int | None) -> str:
    if width is None or width % SD3_HEAD_DIM:
        return ""
    depth = width // SD3_HEAD_DIM
    return f"; hidden {width} = 64 x {depth} layers ({SD3_DEPTHS.get(depth, 'no released model')})"


def _max_index(layers: Sequence[Layer], blocks: tuple[str, ...]) -> int:
    found = [
        int(m.group(2)) for x in layers for m in [_BLOCK_INDEX.search(x.flat)] if m and m.group(1) in blocks
    ]
    return max(found, default=-1)


def _most_common(values: Iterable[int | None]) -> int | None:
    counts = Counter(v for v in values if v is not None)
    return max(counts, key=lambda v: (counts[v], v)) if counts else None
