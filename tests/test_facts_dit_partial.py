"""Attention-only and partial DiT adapters: told apart by hidden width and block count, never called SDXL.

The layouts are the ones outside trainers write: diffusers' SD3/FLUX dreambooth scripts with
``--lora_layers attn.to_k,attn.to_q,attn.to_v,attn.to_out.0`` (peft names under ``transformer.``), the same
through kohya-style underscores and raw peft ``base_model.model.`` names. Widths and block counts are the
real models' (SD3.5-large 2432 x 38, SD3-medium 1536 x 24, FLUX.1 3072 x 19, FLUX.2 klein-9B 4096 x 8,
FLUX.2-dev 6144 x 8).
"""

from __future__ import annotations

import pytest

from lorareg.adapter.facts import compute_facts
from tests.support.lora_factory import header_from_shapes

_R = 4
_ATTN = ("to_q", "to_k", "to_v", "to_out.0")


def attention_only(width: int, blocks: int, *, prefix: str = "transformer.", attn: str = "attn") -> list:
    """``{prefix}transformer_blocks.{i}.{attn}.{to_q,to_k,to_v,to_out.0}`` as peft A/B pairs."""
    shapes = []
    for i in range(blocks):
        for name in _ATTN:
            key = f"{prefix}transformer_blocks.{i}.{attn}.{name}"
            shapes += [(f"{key}.lora_A.weight", (_R, width)), (f"{key}.lora_B.weight", (width, _R))]
    return shapes


def kohya_attention_only(width: int, blocks: int) -> list:
    shapes = []
    for i in range(blocks):
        for name in ("to_q", "to_k", "to_v", "to_out_0"):
            key = f"lora_unet_transformer_blocks_{i}_attn_{name}"
            shapes += [(f"{key}.lora_down.weight", (_R, width)), (f"{key}.lora_up.weight", (width, _R))]
    return shapes


@pytest.mark.parametrize(
    ("shapes", "family", "evidence"),
    [
        (attention_only(2432, 38), "sd3", "hidden 2432 = SD3.5-large"),
        (attention_only(1536, 24), "sd3", "hidden 1536 = SD3-medium / SD3.5-medium"),
        (attention_only(1536, 13, attn="attn2") + attention_only(1536, 24), "sd3", "SD3.5-medium"),
        (kohya_attention_only(2432, 38), "sd3", "SD3.5-large"),
        (attention_only(2432, 38, prefix="base_model.model."), "sd3", "SD3.5-large"),
        (attention_only(3072, 19), "flux1", "past FLUX.2 klein-4B"),
        (attention_only(4096, 8), "flux2", "FLUX.2 klein-9B"),
        (attention_only(6144, 8), "flux2", "FLUX.2-dev"),
    ],
    ids=[
        "sd35-large-diffusers-readme",
        "sd3-medium",
        "sd35-medium-dual-attention",
        "sd35-large-kohya-names",
        "sd35-large-raw-peft",
        "flux1-double-attention-19-blocks",
        "flux2-klein-9b",
        "flux2-dev",
    ],
)
def test_attention_only_dit_adapter_is_told_by_width_and_blocks(
    shapes: list, family: str, evidence: str
) -> None:
    facts = compute_facts(header_from_shapes(shapes), {})
    assert facts.family == family, facts.notes
    assert any(n.startswith(f"family {family}") and evidence in n for n in facts.notes), facts.notes
    assert facts.alternatives == ()


def test_sd35_attention_only_targets_the_transformer_not_a_unet() -> None:
    facts = compute_facts(header_from_shapes(attention_only(2432, 38)), {})
    assert facts.components == ("transformer",)
    assert "transformer.transformer_blocks.37.attn.to_out.0" in facts.targets


def test_flux_attention_in_the_first_blocks_leaves_klein_4b_to_the_pipeline() -> None:
    facts = compute_facts(header_from_shapes(attention_only(3072, 4)), {})
    assert (facts.family, facts.alternatives) == ("flux1", ("flux2",))
    assert any("klein-4B" in n and "pipeline's structure decides" in n for n in facts.notes)


def test_full_flux_double_attention_at_3072_also_leaves_klein_4b_open() -> None:
    key = "transformer.transformer_blocks.0.attn.add_q_proj"
    shapes = [(f"{key}.lora_A.weight", (_R, 3072)), (f"{key}.lora_B.weight", (3072, _R))]
    facts = compute_facts(header_from_shapes(shapes), {})
    assert (facts.family, facts.alternatives) == ("flux1", ("flux2",))


@pytest.mark.parametrize(
    ("shapes", "evidence"),
    [
        (attention_only(1152, 28), "hidden 1152"),  # PixArt-alpha / Sana-like width
        (attention_only(2560, 8), "hidden 2560"),  # Lumina-like width
        (attention_only(2432, 41), "block 40 is past its 38"),
        (
            [
                ("transformer.joint_transformer_blocks.0.attn.to_q.lora_A.weight", (_R, 3072)),
                ("transformer.joint_transformer_blocks.0.attn.to_q.lora_B.weight", (3072, _R)),
            ],
            "AuraFlow",
        ),
    ],
    ids=["pixart-width", "lumina-width", "too-many-blocks-for-sd35", "auraflow-names"],
)
def test_dit_widths_no_supported_model_has_are_unknown_not_guessed(shapes: list, evidence: str) -> None:
    facts = compute_facts(header_from_shapes(shapes), {})
    assert facts.family == "unknown"
    assert any(n.startswith("family unknown") and evidence in n for n in facts.notes), facts.notes


def test_pixart_style_attn2_under_transformer_is_not_sdxl() -> None:
    """Cross-attention names alone used to mean a UNet; under ``transformer.`` they cannot."""
    shapes = attention_only(1152, 28, attn="attn1") + [
        ("transformer.transformer_blocks.3.attn2.to_k.lora_A.weight", (_R, 4096)),
        ("transformer.transformer_blocks.3.attn2.to_k.lora_B.weight", (1152, _R)),
    ]
    assert compute_facts(header_from_shapes(shapes), {}).family == "unknown"
