"""Adapter facts come from tensor names and shapes of every family and format; metadata claims are flagged."""

from __future__ import annotations

import math

import pytest

from lorareg.adapter.facts import FAMILIES, FORMATS, TYPES, compute_facts
from tests.support.lora_factory import (
    EXPECTED,
    KINDS,
    build_header,
    header_from_shapes,
    kohya_metadata,
    modules,
    peft_metadata,
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rank", [1, 2])
def test_every_factory_kind_reports_its_family_format_type_rank_alpha(kind: str, rank: int) -> None:
    expected = EXPECTED[kind]
    facts = compute_facts(*build_header(kind, rank=rank, alpha=4.0))
    assert (facts.family, facts.format, facts.type) == (expected.family, expected.format, expected.type)
    assert facts.rank == rank and facts.ranks == (rank,)
    assert facts.alpha == (4.0 if expected.has_alpha else None)
    assert facts.text_encoder is expected.text_encoder
    assert facts.family in FAMILIES and facts.format in FORMATS and facts.type in TYPES


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("sd35")])
def test_full_layout_keeps_the_family(kind: str) -> None:
    facts = compute_facts(*build_header(kind, blocks=None))
    assert facts.family == EXPECTED[kind].family
    assert len(facts.targets) == len(modules(kind, blocks=None))


def test_sd1_kohya_full_layout_has_192_unet_and_72_text_encoder_modules() -> None:
    facts = compute_facts(*build_header("sd1-kohya", blocks=None))
    unet = [t for t in facts.targets if t.startswith("unet.")]
    te = [t for t in facts.targets if t.startswith("text_encoder.")]
    assert (len(unet), len(te)) == (192, 72)
    assert facts.tensors == 3 * (192 + 72)  # down, up, alpha
    assert "unet.down_blocks.0.attentions.0.proj_in" in facts.targets


def test_sdxl_kohya_full_layout_has_722_unet_modules_and_both_text_encoders() -> None:
    facts = compute_facts(*build_header("sdxl-kohya", blocks=None))
    counts = {c: sum(t.startswith(c + ".") for t in facts.targets) for c in facts.components}
    assert counts == {"unet": 722, "text_encoder": 72, "text_encoder_2": 192}


def test_sdxl_kohya_sgm_names_map_to_the_diffusers_modules() -> None:
    kohya = compute_facts(*build_header("sdxl-kohya", blocks=None)).targets
    diffusers = compute_facts(*build_header("sdxl-diffusers", blocks=None)).targets
    assert kohya == diffusers
    assert "unet.up_blocks.0.attentions.2.transformer_blocks.9.attn2.to_k" in kohya


def test_kohya_underscore_names_map_back_to_dotted_paths() -> None:
    kohya = compute_facts(*build_header("sd1-kohya", blocks=None)).targets
    assert kohya == compute_facts(*build_header("sd1-peft", blocks=None)).targets
    assert "text_encoder.text_model.encoder.layers.11.self_attn.out_proj" in kohya


def test_sd35_full_layout_has_8_modules_per_block_but_the_context_pre_only_last() -> None:
    assert len(compute_facts(*build_header("sd35-large-peft", blocks=None)).targets) == 8 * 38 - 1
    assert len(compute_facts(*build_header("sd35-medium-peft", blocks=None)).targets) == 8 * 24 - 1


def test_flux1_kohya_full_layout_has_304_transformer_modules() -> None:
    facts = compute_facts(*build_header("flux1-kohya", blocks=None))
    assert len(facts.targets) == 304 and facts.components == ("transformer",)
    assert "transformer.single_blocks.37.linear1" in facts.targets


# --------------------------------------------------------------------------- hand-written layouts

_R = 2


def _lora(key: str, in_f: int, out_f: int, *, kohya: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    if kohya:
        return [(f"{key}.lora_down.weight", (_R, in_f)), (f"{key}.lora_up.weight", (out_f, _R))]
    return [(f"{key}.lora_A.weight", (_R, in_f)), (f"{key}.lora_B.weight", (out_f, _R))]


HAND_LAYOUTS = [
    pytest.param(
        _lora("unet.down_blocks.1.attentions.0.add_k_proj", 768, 768, kohya=False)
        + _lora("unet.down_blocks.1.attentions.0.to_q", 768, 768, kohya=False),
        "kandinsky",
        id="kandinsky22-added-kv-attention",
    ),
    pytest.param(
        _lora("lora_prior_unet_down_blocks_0_2_attention_attn_out_proj", 2048, 2048),
        "wuerstchen",
        id="stable-cascade-prior-prefix",
    ),
    pytest.param(
        _lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 1024, 1024), "sd2", id="sd2-te-only"
    ),
    pytest.param(
        _lora("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280), "sdxl", id="sdxl-te2-only"
    ),
    pytest.param(
        _lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320)
        + [("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", (_R, 320, 1, 1))],
        "sd1",
        id="sd1-self-attention-and-conv-proj-without-ctx",
    ),
    pytest.param(
        _lora("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640),
        "sdxl",
        id="sdxl-sgm-names-without-ctx",
    ),
    pytest.param(
        _lora("transformer.transformer_blocks.0.attn.to_q", 3072, 3072, kohya=False)
        + _lora("transformer.transformer_blocks.0.attn.add_q_proj", 3072, 3072, kohya=False),
        "flux1",
        id="flux-double-attention-only-defaults-to-flux1",
    ),
    pytest.param(
        _lora("transformer.transformer_blocks.0.attn.add_q_proj", 6144, 6144, kohya=False),
        "flux2",
        id="flux2-dev-width-6144",
    ),
    pytest.param(
        _lora("lora_unet_joint_blocks_0_x_block_attn_qkv", 1536, 4608), "sd3", id="sd3-kohya-joint-blocks"
    ),
    pytest.param(_lora("model.layers.0.mlp.gate_proj", 4096, 11008), "unknown", id="llm-lora-is-unknown"),
]


@pytest.mark.parametrize(("shapes", "family"), HAND_LAYOUTS)
def test_hand_written_layouts_get_the_family_their_evidence_supports(shapes: list, family: str) -> None:
    facts = compute_facts(header_from_shapes(shapes), {})
    assert facts.family == family
    assert any(n.startswith(f"family {family}") for n in facts.notes)


def test_flux_double_attention_only_says_klein_4b_is_possible() -> None:
    shapes = _lora("transformer.transformer_blocks.0.attn.add_q_proj", 3072, 3072, kohya=False)
    facts = compute_facts(header_from_shapes(shapes), {})
    assert any("klein-4B" in n for n in facts.notes)


def test_missing_alpha_is_none_with_a_note() -> None:
    facts = compute_facts(*build_header("sd1-peft"))
    assert facts.alpha is None
    assert any("alpha = rank" in n for n in facts.notes)


def test_mixed_ranks_report_the_most_common_and_every_distinct_rank() -> None:
    shapes = _lora("lora_unet_a_to_q", 320, 320) + _lora("lora_unet_b_to_q", 320, 320)
    shapes += [("lora_unet_c_to_q.lora_down.weight", (8, 320)), ("lora_unet_c_to_q.lora_up.weight", (320, 8))]
    facts = compute_facts(header_from_shapes(shapes), {})
    assert (facts.rank, facts.ranks) == (2, (2, 8))


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_non_finite_alpha_scalar_is_not_reported_as_alpha(value: float) -> None:
    header, scalars = build_header("sd1-kohya", blocks=1, text_encoder=False)
    facts = compute_facts(header, dict.fromkeys(scalars, value))
    assert facts.alpha is None
    assert any("not finite" in n for n in facts.notes)


def test_lokr_with_full_factors_has_no_rank() -> None:
    shapes = [("lora_unet_x_to_q.lokr_w1", (20, 20)), ("lora_unet_x_to_q.lokr_w2", (32, 32))]
    facts = compute_facts(header_from_shapes(shapes), {})
    assert (facts.type, facts.format, facts.rank) == ("lokr", "lycoris", None)


def test_unrecognised_tensors_are_counted_in_a_note_and_parameters_count_every_tensor() -> None:
    shapes = _lora("lora_unet_x_to_q", 320, 320) + [("some.norm.weight", (320,))]
    facts = compute_facts(header_from_shapes(shapes), {})
    assert facts.parameters == 2 * 320 * _R + 320
    assert any("1 tensors are not adapter weights" in n for n in facts.notes)


# --------------------------------------------------------------------------- metadata claims

LYING_METADATA = [
    pytest.param(
        "sd1-kohya", {"ss_base_model_version": "sdxl_base_v1-0"}, "ss_base_model_version", id="sdxl-on-sd1"
    ),
    pytest.param("sdxl-kohya", {"ss_v2": "True"}, "ss_v2", id="v2-flag-on-sdxl"),
    pytest.param(
        "sdxl-kohya",
        {"modelspec.architecture": "stable-diffusion-v1/lora"},
        "modelspec.architecture",
        id="ms-arch",
    ),
    pytest.param(
        "flux1-kohya", {"modelspec.architecture": "flux-2-klein/lora"}, "modelspec.architecture", id="flux2"
    ),
    pytest.param("sd1-kohya", {"ss_network_dim": "32"}, "ss_network_dim", id="network-dim"),
    pytest.param("sd1-kohya", {"ss_network_alpha": "16"}, "ss_network_alpha", id="network-alpha"),
    pytest.param(
        "flux1-peft",
        peft_metadata(component="transformer", rank=64, alpha=64),
        "lora_adapter_metadata[transformer.r]",
        id="peft-rank",
    ),
]


@pytest.mark.parametrize(("kind", "metadata", "key"), LYING_METADATA)
def test_lying_metadata_is_flagged_not_believed(kind: str, metadata: dict[str, str], key: str) -> None:
    honest = compute_facts(*build_header(kind))
    facts = compute_facts(*build_header(kind, metadata=metadata))
    assert (facts.family, facts.rank, facts.alpha) == (honest.family, honest.rank, honest.alpha)
    assert [c.key for c in facts.claims] == [key]
    assert "but tensors say" in facts.claims[0].message


def test_sdxl_claim_on_sd1_names_both_families() -> None:
    facts = compute_facts(*build_header("sd1-kohya", metadata={"ss_base_model_version": "sdxl_base_v1-0"}))
    assert facts.claims[0].message == "ss_base_model_version=sdxl_base_v1-0 but tensors say sd1"


@pytest.mark.parametrize(
    ("kind", "base"),
    [
        ("sd1-kohya", "sd_v1"),
        ("sd2-kohya", "sd_v2"),
        ("sdxl-kohya", "sdxl_base_v1-0"),
        ("flux1-kohya", "flux1"),
    ],
)
def test_honest_kohya_metadata_raises_no_claim_and_is_kept_as_hints(kind: str, base: str) -> None:
    metadata = kohya_metadata(base=base, rank=2, alpha=1.0)
    facts = compute_facts(*build_header(kind, metadata=metadata))
    assert facts.claims == ()
    assert facts.hints["ss_base_model_version"] == base


def test_peft_metadata_alpha_is_a_hint_not_the_alpha() -> None:
    facts = compute_facts(
        *build_header("flux1-peft", metadata=peft_metadata(component="transformer", rank=2, alpha=8))
    )
    assert facts.alpha is None and facts.claims == ()
    assert any("lora_alpha" in n and "untrusted" in n for n in facts.notes)


@pytest.mark.parametrize(
    "raw", ["{not json", "[" * 100_000, '"a string"'], ids=["broken", "deep", "not-object"]
)
def test_malformed_lora_adapter_metadata_is_ignored(raw: str) -> None:
    facts = compute_facts(*build_header("flux1-peft", metadata={"lora_adapter_metadata": raw}))
    assert facts.family == "flux1" and facts.claims == ()
