"""LyCORIS LoHa and LoKr files load (as ComfyUI and A1111 load them), checked first and undone exactly.

On the tiny SD1 pipeline: linear and conv modules, with and without Tucker cores, with ``dora_scale``, in
UNet and text encoder. The merged weights are compared with an independent numpy reference of LyCORIS'
formulas; unload must give back every parameter bit for bit, also when a LyCORIS adapter and a peft LoRA
are stacked and unloaded in another order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from lorareg import attribution, load_verified_lora, unload_lora
from lorareg.adapter.facts import compute_facts
from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.errors import IncompatibleAdapterError
from lorareg.signing.trust import TrustStore
from tests.fixtures.signed_files import Signer
from tests.support import lycoris_files as ly
from tests.support import tiny_pipelines as tiny

ATTN = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
ATTN_UP = "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
MID_ATTN = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
CONV = "down_blocks.0.resnets.0.conv1"
MID_CONV = "mid_block.resnets.0.conv1"
MID_CONV2 = "mid_block.resnets.1.conv1"
TE_Q = "encoder.layers.0.self_attn.q_proj"
# (component, path) -> how that module is adapted, per file kind
PLANS: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {
    "loha": {
        ("unet", ATTN): ("loha",),
        ("unet", CONV): ("loha",),
        ("unet", MID_CONV): ("loha", "tucker"),
        ("unet", ATTN_UP): ("loha", "dora"),
        ("text_encoder", TE_Q): ("loha",),
    },
    "lokr": {
        ("unet", ATTN): ("lokr", "low"),
        ("unet", MID_ATTN): ("lokr", "full"),
        ("unet", CONV): ("lokr", "tucker"),
        ("unet", MID_CONV2): ("lokr", "low", "dora"),
    },
}


@pytest.fixture(scope="module")
def sd1() -> Any:
    pipe = tiny.sd_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def base_image(sd1: Any) -> torch.Tensor:
    return tiny.render(sd1)


@pytest.fixture(autouse=True)
def nothing_left_loaded(sd1: Any) -> Iterator[None]:
    yield
    for name in list(getattr(sd1, "_lorareg_adapters", {})):
        unload_lora(sd1, name)


def build(
    pipe: Any, kind: str, seed: int = 0
) -> tuple[bytes, dict[tuple[str, str], dict[str, torch.Tensor]]]:
    """A LyCORIS file for ``PLANS[kind]`` on ``pipe``'s shapes, and its parts by module."""
    generator = torch.Generator().manual_seed(seed)
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for (component, path), plan in PLANS[kind].items():
        weight = getattr(pipe, component).get_submodule(path).weight
        if plan[0] == "loha":
            module = ly.loha_parts(weight.shape, tucker="tucker" in plan, generator=generator)
        else:
            module = ly.lokr_parts(weight.shape, form=plan[1], generator=generator)
        if "dora" in plan:
            module["dora_scale"] = ly.dora_scale(weight, generator)
        parts[(component, path)] = module
    data = ly.lycoris_bytes({ly.kohya_key(c, p): m for (c, p), m in parts.items()})
    return data, parts


def snapshot(pipe: Any) -> dict[str, torch.Tensor]:
    return {
        f"{c}.{k}": v.detach().clone()
        for c, model in pipe.components.items()
        if isinstance(model, torch.nn.Module)
        for k, v in model.state_dict().items()
    }


def assert_same(pipe: Any, before: dict[str, torch.Tensor]) -> None:
    after = snapshot(pipe)
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == []


@pytest.mark.parametrize("kind", ["loha", "lokr"])
def test_lycoris_file_is_detected_with_its_type(sd1: Any, kind: str) -> None:
    data, _ = build(sd1, kind)
    header = parse_header(data, file_size=len(data))
    facts = compute_facts(header, read_scalars(data, header))
    assert (facts.format, facts.type) == ("lycoris", kind)


@pytest.mark.parametrize("kind", ["loha", "lokr"])
def test_lycoris_merge_equals_the_reference_and_unload_restores_every_bit(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore, kind: str
) -> None:
    before = snapshot(sd1)
    data, parts = build(sd1, kind)
    use = load_verified_lora(sd1, sign_as_acme(data, f"acme/{kind}"), trust=acme_trust, weight=0.7)
    for (component, path), module_parts in parts.items():
        got = getattr(sd1, component).get_submodule(path).weight.detach().double().numpy()
        want = ly.reference_weight(before[f"{component}.{path}.weight"], module_parts, 0.7)
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{component}.{path}")
    assert attribution(sd1) == [use]
    assert not torch.equal(tiny.render(sd1), base_image)
    unload_lora(sd1, use.adapter_name)
    assert attribution(sd1) == []
    assert_same(sd1, before)
    assert torch.equal(tiny.render(sd1), base_image)


def test_lycoris_and_peft_adapters_stack_and_unload_in_any_order(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    before = snapshot(sd1)
    loha, loha_parts = build(sd1, "loha", seed=1)
    lokr, _ = build(sd1, "lokr", seed=2)
    unet: Any = tiny.sd_unet(cross_attention_dim=768)
    plain = tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS)
    first = load_verified_lora(sd1, sign_as_acme(loha, "acme/hada"), trust=acme_trust, weight=0.5)
    second = load_verified_lora(sd1, sign_as_acme(lokr, "acme/kron"), trust=acme_trust, weight=0.5)
    third = load_verified_lora(sd1, sign_as_acme(plain, "acme/plain"), trust=acme_trust, weight=0.5)
    assert [u.adapter_name for u in attribution(sd1)] == ["acme_hada", "acme_kron", "acme_plain"]
    unload_lora(sd1, second.adapter_name)  # the middle one: the first's merge stays exact
    for (component, path), module_parts in loha_parts.items():
        module = getattr(sd1, component).get_submodule(path)
        got = getattr(module, "base_layer", module).weight.detach().double().numpy()
        want = ly.reference_weight(before[f"{component}.{path}.weight"], module_parts, 0.5)
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{component}.{path}")
    unload_lora(sd1, first.adapter_name)
    unload_lora(sd1, third.adapter_name)
    assert torch.equal(tiny.render(sd1), base_image)


def test_lycoris_for_other_shapes_is_refused_and_nothing_changes(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    wide = tiny.sd_pipeline(channels=(16, 32))
    data, _ = build(wide, "loha")
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, sign_as_acme(data), trust=acme_trust)
    assert any(r.startswith("shape mismatch: lora_unet_down_blocks_0") for r in refused.value.reasons)
    assert_same(sd1, before)
    assert getattr(sd1, "_lorareg_merged", None) is None
    assert torch.equal(tiny.render(sd1), base_image)


def test_lycoris_naming_modules_the_pipeline_lacks_is_refused(
    sd1: Any, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    generator = torch.Generator().manual_seed(0)
    parts = ly.loha_parts(torch.Size([8, 8]), tucker=False, generator=generator)
    data = ly.lycoris_bytes(
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_gate": parts}
    )
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, sign_as_acme(data), trust=acme_trust)
    gate = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_gate"
    assert refused.value.reasons == [f"1 of 1 modules are not in this pipeline: {gate}"]
    assert_same(sd1, before)


def test_sdxl_lycoris_with_sgm_block_names_merges_into_the_diffusers_modules(
    sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    """LyCORIS names SDXL UNet modules by SGM blocks (``input_blocks_1_1_…``): mapped, merged, undone."""
    from tests.support.tiny_kohya import _sgm_name

    pipe = tiny.sdxl_pipeline()
    before = snapshot(pipe)
    generator = torch.Generator().manual_seed(7)
    per_block = int(pipe.unet.config.layers_per_block) + 1
    plan = {
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k": "loha",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v": "lokr",
    }
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for path, kind in plan.items():
        shape = pipe.unet.get_submodule(path).weight.shape
        if kind == "loha":
            parts[path] = ly.loha_parts(shape, tucker=False, generator=generator)
        else:
            parts[path] = ly.lokr_parts(shape, form="low", generator=generator)
    data = ly.lycoris_bytes(
        {"lora_unet_" + _sgm_name(p, per_block).replace(".", "_"): m for p, m in parts.items()}
    )
    assert "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.hada_w1_a" in safetensors_keys(data)
    use = load_verified_lora(pipe, sign_as_acme(data, "acme/sgm"), trust=acme_trust, weight=1.0)
    for path, module_parts in parts.items():
        got = pipe.unet.get_submodule(path).weight.detach().double().numpy()
        want = ly.reference_weight(before[f"unet.{path}.weight"], module_parts, 1.0)
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=path)
    unload_lora(pipe, use.adapter_name)
    assert_same(pipe, before)


def safetensors_keys(data: bytes) -> set[str]:
    from safetensors.torch import load

    return set(load(data))
