"""Pipeline family detection and the structural check, against tiny real diffusers pipelines."""

from __future__ import annotations

from typing import Any

import pytest
from safetensors.torch import load, save

from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.loader.family import detect_family
from lorareg.loader.structure import adapter_targets, check_structure
from tests.support import tiny_pipelines as tiny


@pytest.fixture(scope="module")
def sd1() -> Any:
    return tiny.sd_pipeline()


def targets_of(pipe: Any, data: bytes) -> Any:
    header = parse_header(data, file_size=len(data))
    return adapter_targets(pipe, header, read_scalars(data, header))


def reasons_for(pipe: Any, data: bytes) -> list[str]:
    return check_structure(pipe, targets_of(pipe, data))


@pytest.mark.parametrize(
    ("build", "family", "evidence"),
    [
        (tiny.sd_pipeline, "sd1", "UNet cross-attention width 768"),
        (lambda: tiny.sd_pipeline(cross_attention_dim=1024), "sd2", "UNet cross-attention width 1024"),
        (tiny.sdxl_pipeline, "sdxl", "text_time"),
        (tiny.sd3_pipeline, "sd3", "SD3Transformer2DModel"),
        (tiny.flux_pipeline, "flux1", "FluxTransformer2DModel"),
        (lambda: tiny.sd_pipeline(cross_attention_dim=32), "unknown", "width 32"),
    ],
    ids=["sd1", "sd2", "sdxl", "sd3", "flux1", "odd-width-unet"],
)
def test_pipeline_family_comes_from_classes_and_configs(build: Any, family: str, evidence: str) -> None:
    detected = detect_family(build())
    assert detected.family == family
    assert evidence in detected.evidence


@pytest.mark.parametrize(
    ("class_name", "family"),
    [
        ("KandinskyV22Pipeline", "kandinsky"),
        ("WuerstchenCombinedPipeline", "wuerstchen"),
        ("StableCascadePriorPipeline", "wuerstchen"),
        ("SomethingElse", "unknown"),
    ],
)
def test_pipeline_family_by_pipeline_class_name(class_name: str, family: str) -> None:
    pipe = type(class_name, (), {})()
    assert detect_family(pipe).family == family


def test_flux2_transformer_is_told_from_flux1_by_class() -> None:
    transformer = type(
        "Flux2Transformer2DModel", (), {"config": {"num_layers": 5, "num_single_layers": 20}}
    )()
    pipe = type("Flux2KleinPipeline", (), {"transformer": transformer})()
    assert detect_family(pipe).family == "flux2"


@pytest.mark.parametrize("layout", ["diffusers", "peft", "kohya"])
def test_adapter_made_for_the_pipeline_matches_every_module(sd1: Any, layout: str) -> None:
    unet = tiny.sd_unet(cross_attention_dim=768)
    if layout == "kohya":
        data = tiny.kohya_lora_bytes(unet, targets=tiny.SD_TARGETS)
    elif layout == "peft":
        data = tiny.peft_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS)
    else:
        data = tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS)
    targets = targets_of(sd1, data)
    assert len(targets) == 32  # 8 attention layers x (to_q, to_k, to_v, to_out.0)
    assert all(t.component == "unet" for t in targets)
    assert check_structure(sd1, targets) == []


def test_same_family_wider_unet_is_refused_by_shape(sd1: Any) -> None:
    data = tiny.diffusers_lora_bytes(
        tiny.sd_unet(cross_attention_dim=768, channels=(16, 32)), component="unet", targets=tiny.SD_TARGETS
    )
    reasons = reasons_for(sd1, data)
    assert len(reasons) == 1
    assert reasons[0].startswith(
        "shape mismatch: unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"
    )
    assert "adapter has in 16 → out 16, the pipeline's Linear is 8 → 8" in reasons[0]


def test_transformer_adapter_on_a_unet_pipeline_matches_nothing(sd1: Any) -> None:
    data = tiny.diffusers_lora_bytes(
        tiny.flux_transformer(), component="transformer", targets=tiny.SD_TARGETS
    )
    (reason,) = reasons_for(sd1, data)
    assert reason.startswith(
        "none of the adapter's 7 target modules exist in this pipeline; missing: transformer."
    )


def test_partial_match_names_what_is_missing(sd1: Any) -> None:
    state = load(
        tiny.diffusers_lora_bytes(tiny.sd_unet(cross_attention_dim=768), component="unet", targets=["to_q"])
    )
    down = next(k for k in state if k.endswith("attn1.to_q.lora.down.weight"))
    stem = down.removesuffix(".to_q.lora.down.weight")
    state[f"{stem}.to_gate.lora.down.weight"] = state[down].clone()
    state[f"{stem}.to_gate.lora.up.weight"] = state[f"{stem}.to_q.lora.up.weight"].clone()
    (reason,) = reasons_for(sd1, save(state))
    assert reason == f"1 of 9 target modules are missing from this pipeline: {stem}.to_gate"


def test_conv_adapter_needs_the_conv_kernel(sd1: Any) -> None:
    state = {
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": tiny.torch.zeros(2, 8, 1, 1),
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": tiny.torch.zeros(8, 2, 1, 1),
        "lora_unet_down_blocks_0_resnets_0_conv1.alpha": tiny.torch.tensor(2.0),
    }
    (reason,) = reasons_for(sd1, save(state))
    assert "kernel (1, 1), the pipeline's Conv2d is 8 → 8 kernel (3, 3)" in reason


@pytest.mark.parametrize(
    ("build", "component", "targets"),
    [
        (tiny.sd3_transformer, "transformer", ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj"]),
        (tiny.flux_transformer, "transformer", ["to_q", "to_k", "to_v", "proj_mlp", "proj_out"]),
    ],
    ids=["sd3", "flux1"],
)
def test_transformer_adapters_fit_their_own_pipeline_only(
    build: Any, component: str, targets: list[str]
) -> None:
    own = tiny.sd3_pipeline() if build is tiny.sd3_transformer else tiny.flux_pipeline()
    other = tiny.flux_pipeline() if build is tiny.sd3_transformer else tiny.sd3_pipeline()
    data = tiny.peft_lora_bytes(build(), component=component, targets=targets)
    assert reasons_for(own, data) == []
    assert reasons_for(other, data) != []


def test_kohya_sd3_names_are_converted_and_unknown_ones_refused_by_name() -> None:
    from tests.support import tiny_kohya as kohya

    sd3 = tiny.sd3_pipeline()
    data = kohya.kohya_bytes(kohya.sd3_full_modules(sd3), rank=2)
    targets = targets_of(sd3, data)
    assert "transformer.transformer_blocks.0.attn.add_k_proj" in {t.name for t in targets}
    assert check_structure(sd3, targets) == []
    state = load(data)
    state["lora_unet_joint_blocks_0_x_block_attn_gate.lora_down.weight"] = state[
        "lora_unet_joint_blocks_0_x_block_attn_proj.lora_down.weight"
    ].clone()
    state["lora_unet_joint_blocks_0_x_block_attn_gate.lora_up.weight"] = state[
        "lora_unet_joint_blocks_0_x_block_attn_proj.lora_up.weight"
    ].clone()
    with pytest.raises(
        ValueError, match="map to no module of this pipeline: lora_unet_joint_blocks_0_x_block_attn_gate"
    ):
        targets_of(sd3, save(state))
