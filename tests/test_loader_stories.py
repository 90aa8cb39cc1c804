"""The verified loader, story by story, on tiny real diffusers pipelines (CPU, 32x32 px, 2 steps).

The stories that matter on every family (a verified adapter changes the image, unload restores it, kohya
files load as diffusers loads them) run on SD1, SDXL, SD3 and FLUX.1; each tiny pipeline is built once per
module. Each refusal test also proves the pipeline was not touched: no adapter registered, every parameter
equal, the image equal to the base image.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as safetensors_load

from lorareg import attribution, load_verified_lora, save_image, unload_lora
from lorareg.errors import IncompatibleAdapterError, NotFoundError, VerificationError
from lorareg.images.provenance import read_provenance
from lorareg.loader import StackingWarning
from lorareg.signing.policy import Policy
from lorareg.signing.trust import TrustStore
from tests.fixtures.signed_files import Signer
from tests.support import tiny_kohya as kohya
from tests.support import tiny_pipelines as tiny
from tests.support.image_parsers import assert_readers_attribute

SD3_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "to_add_out", "ff.net.0.proj"]
FLUX_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "proj_mlp", "proj_out", "norm1.linear"]
KOHYA_RANK = 3  # divisible by 3: diffusers' FLUX converter then asks whether the fused qkv is block-sparse
KOHYA_ALPHA = 1.5  # alpha != rank, so a loader that lost the scale would give another image


@dataclass(frozen=True)
class Family:
    """One tiny pipeline with its base image and makers of adapters that fit it."""

    name: str
    pipe: Any
    base_image: torch.Tensor
    make_lora: Callable[[], bytes]  # diffusers/peft layout, made with peft on a twin of the denoiser
    kohya_modules: Callable[[Any], dict[str, Any]]


def _sdxl_lora() -> bytes:
    unet: Any = tiny.sdxl_unet()
    return tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS)


def _sd3_lora() -> bytes:
    model: Any = tiny.sd3_transformer()
    return tiny.peft_lora_bytes(model, component="transformer", targets=SD3_TARGETS)


def _flux_lora() -> bytes:
    model: Any = tiny.flux_transformer()
    return tiny.peft_lora_bytes(model, component="transformer", targets=FLUX_TARGETS)


_MAKERS: dict[str, tuple[Callable[[], Any], Callable[[], bytes], Callable[[Any], dict[str, Any]]]] = {
    "sd1": (tiny.sd_pipeline, lambda: sd1_lora(), kohya.sd1_modules),
    "sdxl": (tiny.sdxl_pipeline, _sdxl_lora, kohya.sdxl_modules),
    "sd3": (tiny.sd3_pipeline, _sd3_lora, kohya.sd3_modules),
    "flux1": (tiny.flux_pipeline, _flux_lora, kohya.flux_modules),
}


def _build(name: str) -> Family:
    build, make_lora, kohya_modules = _MAKERS[name]
    pipe = build()
    return Family(name, pipe, tiny.render(pipe), make_lora, kohya_modules)


@pytest.fixture(scope="module")
def families() -> Iterator[dict[str, Family]]:
    """Tiny pipelines by family, each built (and its base image rendered) on first use, once per module."""
    built: dict[str, Family] = {}

    class _Lazy(dict[str, Family]):
        def __missing__(self, key: str) -> Family:
            built[key] = self[key] = _build(key)
            return built[key]

    yield _Lazy()


@pytest.fixture(scope="module")
def sd1(families: dict[str, Family]) -> Any:
    return families["sd1"].pipe


@pytest.fixture(scope="module")
def base_image(families: dict[str, Family]) -> torch.Tensor:
    return families["sd1"].base_image


@pytest.fixture(autouse=True)
def clean_pipelines(families: dict[str, Family]) -> Iterator[None]:
    """Every test starts and ends with no adapter on any shared pipeline."""
    yield
    for family in list(families.values()):
        for name in sorted({n for names in family.pipe.get_list_adapters().values() for n in names}):
            unload_lora(family.pipe, name)


def sd1_lora(rank: int = 4) -> bytes:
    unet: Any = tiny.sd_unet(cross_attention_dim=768)
    return tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS, rank=rank)


def snapshot(pipe: Any) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of every model component (denoiser, text encoders, VAE)."""
    return {
        f"{c}.{k}": v.detach().clone()
        for c, model in pipe.components.items()
        if isinstance(model, torch.nn.Module)
        for k, v in model.state_dict().items()
    }


def assert_untouched(pipe: Any, before: dict[str, torch.Tensor], base_image: torch.Tensor) -> None:
    assert pipe.get_list_adapters() == {}
    after = snapshot(pipe)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(tiny.render(pipe), base_image)


def test_verified_adapter_changes_the_image_and_unload_restores_it(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    use = load_verified_lora(sd1, sign_as_acme(sd1_lora()), trust=acme_trust, weight=0.8)
    assert (use.ref, use.adapter_name, use.family, use.weight) == ("acme/ink@1.0.0", "acme_ink", "sd1", 0.8)
    assert not torch.equal(tiny.render(sd1), base_image)
    assert attribution(sd1) == [use]
    unload_lora(sd1, "acme_ink")
    assert attribution(sd1) == []
    assert torch.equal(tiny.render(sd1), base_image)


def test_kohya_file_loads_and_changes_the_image(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    path = sign_as_acme(tiny.kohya_lora_bytes(tiny.sd_unet(cross_attention_dim=768), targets=tiny.SD_TARGETS))
    load_verified_lora(sd1, path, trust=acme_trust)
    assert not torch.equal(tiny.render(sd1), base_image)


def test_flipped_tensor_byte_is_refused_and_image_equals_base(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    path = sign_as_acme(sd1_lora())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    before = snapshot(sd1)
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(sd1, path, trust=acme_trust)
    assert any("blake3" in r and "mismatch" in r for r in refused.value.reasons), refused.value.reasons
    assert_untouched(sd1, before, base_image)


def test_untrusted_signer_is_refused(sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer) -> None:
    stranger = TrustStore((), Policy())
    before = snapshot(sd1)
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        load_verified_lora(sd1, sign_as_acme(sd1_lora()), trust=stranger)
    assert_untouched(sd1, before, base_image)


def test_sdxl_adapter_is_refused_by_family(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    path = sign_as_acme(
        tiny.diffusers_lora_bytes(tiny.sdxl_unet(), component="unet", targets=tiny.SD_TARGETS)
    )
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, path, trust=acme_trust)
    assert refused.value.reasons[0] == (
        "acme/ink@1.0.0 targets sdxl; this pipeline is sd1 (UNet cross-attention width 768)"
    )
    assert any(r.startswith("shape mismatch: unet.") for r in refused.value.reasons)
    assert_untouched(sd1, before, base_image)


def test_same_family_mismatched_shapes_are_refused_by_structure(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    wide = tiny.sd_unet(cross_attention_dim=768, channels=(16, 32))
    path = sign_as_acme(tiny.diffusers_lora_bytes(wide, component="unet", targets=tiny.SD_TARGETS))
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, path, trust=acme_trust)
    (reason,) = refused.value.reasons
    assert reason.startswith(
        "shape mismatch: unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"
    )
    assert_untouched(sd1, before, base_image)


def test_likeness_without_consent_is_refused_by_default_policy(
    sd1: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    path = sign_as_acme(sd1_lora(), consent={"subject": "likeness", "status": "unknown"})
    before = snapshot(sd1)
    with pytest.raises(VerificationError, match="likeness adapter without obtained consent"):
        load_verified_lora(sd1, path, trust=acme_trust)
    assert_untouched(sd1, before, base_image)


def test_every_reason_is_reported_together(sd1: Any, sign_as_acme: Signer, acme_trust: TrustStore) -> None:
    wide = tiny.sd_unet(cross_attention_dim=768, channels=(16, 32))
    path = sign_as_acme(
        tiny.diffusers_lora_bytes(wide, component="unet", targets=tiny.SD_TARGETS),
        consent={"subject": "likeness", "status": "unknown"},
    )
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(sd1, path, trust=acme_trust)
    assert len(refused.value.reasons) == 2  # the policy refusal and the shape mismatch


def test_missing_signature_file_is_not_found(sd1: Any, tmp_path: Path, acme_trust: TrustStore) -> None:
    path = tmp_path / "lone.safetensors"
    path.write_bytes(sd1_lora())
    with pytest.raises(NotFoundError, match="signature file not found"):
        load_verified_lora(sd1, path, trust=acme_trust)


def test_stacking_warns_by_default_and_refuses_by_policy(
    sd1: Any, tmp_path: Path, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    with pytest.warns(StackingWarning, match="weight 1.5"):
        load_verified_lora(sd1, sign_as_acme(sd1_lora(), name="acme/one"), trust=acme_trust, weight=1.5)
    load_verified_lora(sd1, sign_as_acme(sd1_lora(2), name="acme/two"), trust=acme_trust, weight=0.5)
    with pytest.warns(StackingWarning, match="3 adapters stacked"):
        load_verified_lora(sd1, sign_as_acme(sd1_lora(3), name="acme/three"), trust=acme_trust, weight=0.5)
    strict = Policy(max_adapters=3, max_weight=2.0)
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(
            sd1, sign_as_acme(sd1_lora(5), name="acme/four"), trust=acme_trust, policy=strict, weight=2.5
        )
    assert len(refused.value.reasons) == 2
    assert sorted(sd1.get_list_adapters()["unet"]) == ["acme_one", "acme_three", "acme_two"]


def test_saved_png_reads_back_with_the_verified_adapter(
    sd1: Any, tmp_path: Path, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    use = load_verified_lora(sd1, sign_as_acme(sd1_lora()), trust=acme_trust, weight=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        image = sd1(
            "a cat",
            num_inference_steps=tiny.STEPS,
            height=tiny.IMAGE_PX,
            width=tiny.IMAGE_PX,
            generator=torch.Generator().manual_seed(0),
        ).images[0]
    out = save_image(image, tmp_path / "cat.png", sd1, prompt="a cat", steps=tiny.STEPS, seed=0)
    claimed = read_provenance(out)
    assert claimed.adapters == (use,)
    assert claimed.parameters is not None
    assert claimed.parameters.startswith(
        "a cat <lora:acme_ink:0.7>\nSteps: 2, Sampler: DDIM, CFG scale: 7.5, "
    )
    assert f'Lora hashes: "acme_ink: {use.autov3[:12]}"' in claimed.parameters
    assert_readers_attribute(out, (use,))


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux1"])
def test_verified_adapter_changes_the_image_and_unload_restores_it_on_every_family(
    families: dict[str, Family], family: str, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    tiny_family = families[family]
    pipe = tiny_family.pipe
    use = load_verified_lora(pipe, sign_as_acme(tiny_family.make_lora()), trust=acme_trust, weight=0.9)
    assert (use.family, use.weight, attribution(pipe)) == (family, 0.9, [use])
    assert not torch.equal(tiny.render(pipe), tiny_family.base_image)
    unload_lora(pipe, use.adapter_name)
    assert pipe.get_list_adapters() == {} or not any(pipe.get_list_adapters().values())
    assert torch.equal(tiny.render(pipe), tiny_family.base_image)


@pytest.mark.parametrize("family", ["sd1", "sdxl", "flux1"])
def test_kohya_file_loads_exactly_as_diffusers_loads_the_path(
    families: dict[str, Family], family: str, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    """SD1 names, SDXL SGM names + two text encoders, FLUX fused qkv + CLIP: same image as a plain load."""
    tiny_family = families[family]
    pipe, modules = tiny_family.pipe, tiny_family.kohya_modules
    path = sign_as_acme(kohya.kohya_bytes(modules(pipe), rank=KOHYA_RANK, alpha=KOHYA_ALPHA))
    use = load_verified_lora(pipe, path, trust=acme_trust)
    verified = tiny.render(pipe)
    components = {c for c, names in pipe.get_list_adapters().items() if use.adapter_name in names}
    assert components >= {"text_encoder", "unet" if family != "flux1" else "transformer"}
    unload_lora(pipe, use.adapter_name)
    pipe.load_lora_weights(str(path), adapter_name="plain")  # diffusers alone, from the file
    plain = tiny.render(pipe)
    assert not torch.equal(verified, tiny_family.base_image)
    assert torch.allclose(verified, plain, atol=1e-6), (verified - plain).abs().max()


def test_kohya_sd3_file_loads_and_equals_merging_its_delta_into_the_weights(
    families: dict[str, Family], sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    """diffusers has no converter for sd-scripts SD3 keys (a plain load registers nothing); lorareg's does.

    The reference is a second, identical pipeline whose weights get ``ΔW = up_part @ down · alpha/rank``
    added directly, fused qkv split by rows; both must render the same image.
    """
    sd3 = families["sd3"]
    data = kohya.kohya_bytes(kohya.sd3_full_modules(sd3.pipe), rank=KOHYA_RANK, alpha=KOHYA_ALPHA)
    path = sign_as_acme(data)
    use = load_verified_lora(sd3.pipe, path, trust=acme_trust)
    holding = {c for c, names in sd3.pipe.get_list_adapters().items() if use.adapter_name in names}
    assert holding == {"transformer", "text_encoder", "text_encoder_2"}
    loaded = tiny.render(sd3.pipe)
    assert not torch.equal(loaded, sd3.base_image)
    unload_lora(sd3.pipe, use.adapter_name)
    assert torch.equal(tiny.render(sd3.pipe), sd3.base_image)
    reference = tiny.sd3_pipeline()
    state = safetensors_load(data)
    with torch.no_grad():
        for name, targets in kohya.sd3_full_modules(reference).items():
            down, up = state[f"{name}.lora_down.weight"], state[f"{name}.lora_up.weight"]
            delta = up @ down * (KOHYA_ALPHA / KOHYA_RANK)
            if name.endswith("context_block_adaLN_modulation_1") and delta.shape[0] == 2 * delta.shape[1]:
                delta = torch.cat(delta.chunk(2)[::-1])  # SGM (shift, scale) -> diffusers (scale, shift)
            for module, rows in zip(
                targets, delta.split([int(m.weight.shape[0]) for m in targets]), strict=True
            ):
                module.weight += rows
    assert torch.allclose(loaded, tiny.render(reference), atol=1e-4)  # merged vs peft's side path
    sd3.pipe.load_lora_weights(str(path), adapter_name="plain")
    assert not any(sd3.pipe.get_list_adapters().values())  # diffusers alone: the silent no-op


@pytest.mark.parametrize(
    ("adapter_family", "pipe_family", "expected"),
    [
        ("flux1", "sd3", "targets flux1; this pipeline is sd3 (SD3Transformer2DModel"),
        ("sd3", "flux1", "targets sd3; this pipeline is flux1 (FluxTransformer2DModel"),
        ("sdxl", "flux1", "targets sdxl; this pipeline is flux1 (FluxTransformer2DModel"),
    ],
    ids=["flux-on-sd3", "sd3-on-flux", "sdxl-on-flux"],
)
def test_adapter_for_another_transformer_family_is_refused(
    families: dict[str, Family],
    adapter_family: str,
    pipe_family: str,
    expected: str,
    sign_as_acme: Signer,
    acme_trust: TrustStore,
) -> None:
    target = families[pipe_family]
    path = sign_as_acme(families[adapter_family].make_lora())
    before = snapshot(target.pipe)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(target.pipe, path, trust=acme_trust)
    assert expected in refused.value.reasons[0], refused.value.reasons
    assert_untouched(target.pipe, before, target.base_image)
