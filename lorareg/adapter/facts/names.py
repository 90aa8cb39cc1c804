"""Turn a module key of any trainer into ``(component, dotted module path)``.

Trainers name the same layer differently: PEFT ``unet.down_blocks.0....to_k``, kohya
``lora_unet_down_blocks_0_..._to_k`` (dots replaced by ``_``, which is lossy because ``_`` also occurs inside
``to_k`` or ``proj_in``), SDXL kohya with SGM block names (``input_blocks.4.1``), BFL ``diffusion_model.``.
The kohya name is mapped back by greedy longest match against the vocabulary of module names that the base
models really use (diffusers, SGM, BFL, CLIP, T5); a name with any unknown piece is kept as the trainer wrote
it rather than guessed. This module does not decide families; ``component`` may be the placeholder
``DENOISER`` until the family says whether the denoiser is a ``unet`` or a ``transformer``.
"""

from __future__ import annotations

import re

DENOISER = "denoiser"  # placeholder component: unet for SD-family models, transformer for DiTs

_UNDERSCORE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("lora_prior_unet_", "prior"),
    ("lora_prior_te_", "text_encoder"),
    ("lora_transformer_", "transformer"),
    ("lora_unet_", DENOISER),
    ("lora_te1_", "text_encoder"),
    ("lora_te2_", "text_encoder_2"),
    ("lora_te3_", "text_encoder_3"),
    ("lora_te_", "text_encoder"),
    ("lycoris_", DENOISER),
)
_DOTTED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("text_encoders.clip_l.transformer.", "text_encoder"),
    ("text_encoders.clip_g.transformer.", "text_encoder_2"),
    ("text_encoders.t5xxl.transformer.", "text_encoder_3"),
    ("base_model.model.", DENOISER),
    ("diffusion_model.", DENOISER),
    ("text_encoder_2.", "text_encoder_2"),
    ("text_encoder_3.", "text_encoder_3"),
    ("text_encoder.", "text_encoder"),
    ("transformer.", "transformer"),
    ("unet.", "unet"),
    ("prior.", "prior"),
)

# Module-name pieces of the supported base models. Multi-word names must be listed whole.
_VOCAB = frozenset(
    # diffusers UNet and attention
    "down_blocks up_blocks mid_block attentions resnets transformer_blocks attn attn1 attn2 to_q to_k to_v "
    "to_out ff net proj proj_in proj_out norm norm1 norm2 norm3 conv conv1 conv2 conv_shortcut time_emb_proj "
    "downsamplers upsamplers conv_in conv_out time_embedding linear_1 linear_2 add_q_proj add_k_proj "
    "add_v_proj to_add_out processor "
    # SGM (kohya SDXL, SD3)
    "input_blocks output_blocks middle_block in_layers out_layers emb_layers skip_connection op time_embed "
    "label_emb joint_blocks x_block context_block qkv mlp fc1 fc2 adaLN_modulation "
    # CLIP and T5 (transformers)
    "text_model encoder layers self_attn q_proj k_proj v_proj out_proj block layer SelfAttention q k v o "
    "DenseReluDense wi wi_0 wi_1 wo "
    # FLUX / SD3 diffusers and BFL
    "single_transformer_blocks ff_context norm1_context proj_mlp to_qkv_mlp_proj linear linear_in linear_out "
    "norm_out context_embedder x_embedder double_blocks single_blocks img_attn txt_attn img_mlp txt_mlp "
    "img_mod txt_mod lin linear1 linear2 modulation final_layer img_in txt_in time_in vector_in guidance_in "
    "in_layer out_layer double_stream_modulation_img double_stream_modulation_txt "
    "single_stream_modulation".split()
)
# Vocabulary entries as word lists, grouped by first word, longest first (greedy longest match).
_BY_FIRST_WORD: dict[str, list[list[str]]] = {}
for _entry in sorted(_VOCAB, key=lambda v: -v.count("_")):
    _BY_FIRST_WORD.setdefault(_entry.split("_")[0], []).append(_entry.split("_"))
_SGM = re.compile(r"^(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)$|^(middle_block)\.(\d+)\.(.+)$")
_SGM_RESNET = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
_SGM_ATTENTION_HEADS = ("transformer_blocks", "proj_in", "proj_out", "norm")
SDXL_LAYERS_PER_BLOCK = (
    2  # SGM input block i >= 1 is down block (i-1)//3, slot (i-1)%3 (slot 2 = downsampler)
)


def locate(key: str) -> tuple[str, str]:
    """``(component, path)`` of a module key; ``path`` is dotted where it could be mapped, else as written."""
    for prefix, component in _DOTTED_PREFIXES:
        if key.startswith(prefix):
            return component, _clean_attn_processor(key[len(prefix) :])
    for prefix, component in _UNDERSCORE_PREFIXES:
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            return component, underscore_to_dotted(rest) or rest
    return DENOISER, _clean_attn_processor(key)


def underscore_to_dotted(name: str) -> str | None:
    """Map a kohya ``_`` name back to a dotted path, or ``None`` when a piece is not a known module name."""
    words = name.split("_")
    pieces: list[str] = []
    i = 0
    while i < len(words):
        for candidate in _BY_FIRST_WORD.get(words[i], ()):
            if words[i : i + len(candidate)] == candidate:
                pieces.append("_".join(candidate))
                i += len(candidate)
                break
        else:
            if not words[i].isdigit():
                return None
            pieces.append(words[i])
            i += 1
    return ".".join(pieces)


def flat(path: str) -> str:
    """The ``_``-joined form every format shares, for pattern matching (``attn2.to_k`` -> ``attn2_to_k``)."""
    return path.replace(".", "_")


def sgm_to_diffusers(path: str) -> str:
    """Rename an SDXL SGM UNet path (``input_blocks.4.1...``) to diffusers (``down_blocks.1.attentions.0``).

    Paths outside the known attention/resnet/sampler slots are returned unchanged."""
    m = _SGM.match(path)
    if m is None:
        return path
    if m.group(5):
        slot, rest = int(m.group(6)), m.group(7)
        return _sgm_mid(slot, rest) or path
    kind, index, slot, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    mapped = _sgm_input(index, slot, rest) if kind == "input_blocks" else _sgm_output(index, slot, rest)
    return mapped or path


def _sgm_input(index: int, slot: int, rest: str) -> str | None:
    if index == 0:
        return None
    block, pos = divmod(index - 1, SDXL_LAYERS_PER_BLOCK + 1)
    if pos == SDXL_LAYERS_PER_BLOCK:
        return f"down_blocks.{block}.downsamplers.0.conv" if rest == "op" else None
    return _sgm_inner(f"down_blocks.{block}", pos, slot, rest)


def _sgm_output(index: int, slot: int, rest: str) -> str | None:
    block, pos = divmod(index, SDXL_LAYERS_PER_BLOCK + 1)
    if rest == "conv" and slot > 0:
        return f"up_blocks.{block}.upsamplers.0.conv"
    return _sgm_inner(f"up_blocks.{block}", pos, slot, rest)


def _sgm_mid(slot: int, rest: str) -> str | None:
    if slot == 1:
        return f"mid_block.attentions.0.{rest}"
    resnet = _SGM_RESNET.get(rest)
    return f"mid_block.resnets.{slot // 2}.{resnet}" if resnet and slot in (0, 2) else None


def _sgm_inner(block: str, pos: int, slot: int, rest: str) -> str | None:
    if slot == 1 and rest.startswith(_SGM_ATTENTION_HEADS):
        return f"{block}.attentions.{pos}.{rest}"
    resnet = _SGM_RESNET.get(rest)
    return f"{block}.resnets.{pos}.{resnet}" if slot == 0 and resnet else None


_PROCESSOR_LAYERS = ("to_q", "to_k", "to_v", "to_out", "add_k_proj", "add_v_proj")  # + added-KV (Kandinsky)


def _clean_attn_processor(path: str) -> str:
    """diffusers "old" attention-processor keys name the processor; point at the layer it adapts."""
    if ".processor." not in path or path.rsplit(".", 1)[-1] not in _PROCESSOR_LAYERS:
        return path
    path = path.replace(".processor.", ".")
    return path + ".0" if path.endswith(".to_out") else path
