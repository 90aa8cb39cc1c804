"""The verified loader, story by story, on tiny real diffusers pipelines (CPU, 32x32 px, 2 steps).

Each refusal test also proves the pipeline was not touched: no adapter registered, every parameter equal.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from lorareg import attribution, load_verified_lora, save_image, unload_lora
from lorareg.errors import IncompatibleAdapterError, NotFoundError, VerificationError
from lorareg.image_provenance import read_provenance
from lorareg.loader import StackingWarning
from lorareg.manifest import ManifestDraft
from lorareg.signing.keys import PrivateKey, generate
from lorareg.signing.policy import Policy
from lorareg.signing.sign import sign_file
from lorareg.signing.trust import TrustedKey, TrustStore
from tests import tiny_pipelines as tiny

Signer = Callable[..., Path]


@pytest.fixture(scope="module")
def sd1() -> Any:
    return tiny.sd_pipeline()


@pytest.fixture(scope="module")
def base_image(sd1: Any) -> torch.Tensor:
    return tiny.render(sd1)


@pytest.fixture(scope="module")
def acme_key() -> PrivateKey:
    return generate()


@pytest.fixture(scope="module")
def trust(acme_key: PrivateKey) -> TrustStore:
    public = acme_key.public_key
    entry = TrustedKey(
        keyid=public.key_id, label="acme", role="publisher", namespace="acme", public_key=public
    )
    return TrustStore((entry,), Policy())


@pytest.fixture
def signed(tmp_path: Path, acme_key: PrivateKey) -> Signer:
    """Factory: write adapter bytes under ``tmp_path`` and sign them as acme; return the path."""

    def _sign(data: bytes, name: str = "acme/ink", **manifest: Any) -> Path:
        path = tmp_path / f"{name.split('/')[1]}.safetensors"
        path.write_bytes(data)
        draft = {
            "name": name,
            "version": "1.2.0",
            "license": {
                "id": "CreativeML-OpenRAIL-M",
                "commercial_use": True,
                "derivatives": True,
                "attribution_required": True,
            },
            "consent": {"subject": "style", "status": "not-required"},
            "creators": [{"name": "Ada Ink", "role": "trainer"}],
            **manifest,
        }
        Path(f"{path}.sig").write_bytes(sign_file(path, ManifestDraft.from_dict(draft), acme_key))
        return path

    return _sign


@pytest.fixture(autouse=True)
def clean_pipeline(sd1: Any) -> Any:
    """Every test starts and ends with no adapter on the shared pipeline."""
    yield
    for name in sorted({n for names in sd1.get_list_adapters().values() for n in names}):
        unload_lora(sd1, name)


def sd1_lora(rank: int = 4) -> bytes:
    return tiny.diffusers_lora_bytes(
        tiny.sd_unet(cross_attention_dim=768), component="unet", targets=tiny.SD_TARGETS, rank=rank
    )


def snapshot(pipe: Any) -> dict[str, torch.Tensor]:
    return {
        f"{c}.{k}": v.detach().clone()
        for c in ("unet", "text_encoder")
        for k, v in getattr(pipe, c).state_dict().items()
    }


def assert_untouched(pipe: Any, before: dict[str, torch.Tensor], base_image: torch.Tensor) -> None:
    assert pipe.get_list_adapters() == {}
    after = snapshot(pipe)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(tiny.render(pipe), base_image)


def test_verified_adapter_changes_the_image_and_unload_restores_it(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    use = load_verified_lora(sd1, signed(sd1_lora()), trust=trust, weight=0.8)
    assert (use.ref, use.adapter_name, use.family, use.weight) == ("acme/ink@1.2.0", "acme_ink", "sd1", 0.8)
    assert not torch.equal(tiny.render(sd1), base_image)
    assert attribution(sd1) == [use]
    unload_lora(sd1, "acme_ink")
    assert attribution(sd1) == []
    assert torch.equal(tiny.render(sd1), base_image)


def test_kohya_file_loads_and_changes_the_image(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    path = signed(tiny.kohya_lora_bytes(tiny.sd_unet(cross_attention_dim=768), targets=tiny.SD_TARGETS))
    load_verified_lora(sd1, path, trust=trust)
    assert not torch.equal(tiny.render(sd1), base_image)


def test_flipped_tensor_byte_is_refused_and_image_equals_base(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    path = signed(sd1_lora())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    before = snapshot(sd1)
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(sd1, path, trust=trust)
    assert any("blake3" in r and "mismatch" in r for r in refused.value.reasons), refused.value.reasons
    assert_untouched(sd1, before, base_image)


def test_untrusted_signer_is_refused(sd1: Any, base_image: torch.Tensor, signed: Signer) -> None:
    stranger = TrustStore((), Policy())
    before = snapshot(sd1)
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        load_verified_lora(sd1, signed(sd1_lora()), trust=stranger)
    assert_untouched(sd1, before, base_image)


def test_sdxl_adapter_is_refused_by_family(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    path = signed(tiny.diffusers_lora_bytes(tiny.sdxl_unet(), component="unet", targets=tiny.SD_TARGETS))
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, path, trust=trust)
    assert refused.value.reasons[0] == (
        "acme/ink@1.2.0 targets sdxl; this pipeline is sd1 (UNet cross-attention width 768)"
    )
    assert any(r.startswith("shape mismatch: unet.") for r in refused.value.reasons)
    assert_untouched(sd1, before, base_image)


def test_same_family_mismatched_shapes_are_refused_by_structure(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    wide = tiny.sd_unet(cross_attention_dim=768, channels=(16, 32))
    path = signed(tiny.diffusers_lora_bytes(wide, component="unet", targets=tiny.SD_TARGETS))
    before = snapshot(sd1)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(sd1, path, trust=trust)
    (reason,) = refused.value.reasons
    assert reason.startswith(
        "shape mismatch: unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"
    )
    assert_untouched(sd1, before, base_image)


def test_likeness_without_consent_is_refused_by_default_policy(
    sd1: Any, base_image: torch.Tensor, signed: Signer, trust: TrustStore
) -> None:
    path = signed(sd1_lora(), consent={"subject": "likeness", "status": "unknown"})
    before = snapshot(sd1)
    with pytest.raises(VerificationError, match="likeness adapter without obtained consent"):
        load_verified_lora(sd1, path, trust=trust)
    assert_untouched(sd1, before, base_image)


def test_every_reason_is_reported_together(sd1: Any, signed: Signer, trust: TrustStore) -> None:
    wide = tiny.sd_unet(cross_attention_dim=768, channels=(16, 32))
    path = signed(
        tiny.diffusers_lora_bytes(wide, component="unet", targets=tiny.SD_TARGETS),
        consent={"subject": "likeness", "status": "unknown"},
    )
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(sd1, path, trust=trust)
    assert len(refused.value.reasons) == 2  # the policy refusal and the shape mismatch


def test_missing_signature_file_is_not_found(sd1: Any, tmp_path: Path, trust: TrustStore) -> None:
    path = tmp_path / "lone.safetensors"
    path.write_bytes(sd1_lora())
    with pytest.raises(NotFoundError, match="signature file not found"):
        load_verified_lora(sd1, path, trust=trust)


def test_stacking_warns_by_default_and_refuses_by_policy(
    sd1: Any, tmp_path: Path, signed: Signer, trust: TrustStore
) -> None:
    with pytest.warns(StackingWarning, match="weight 1.5"):
        load_verified_lora(sd1, signed(sd1_lora(), name="acme/one"), trust=trust, weight=1.5)
    load_verified_lora(sd1, signed(sd1_lora(2), name="acme/two"), trust=trust, weight=0.5)
    with pytest.warns(StackingWarning, match="3 adapters stacked"):
        load_verified_lora(sd1, signed(sd1_lora(3), name="acme/three"), trust=trust, weight=0.5)
    strict = Policy(max_adapters=3, max_weight=2.0)
    with pytest.raises(VerificationError) as refused:
        load_verified_lora(sd1, signed(sd1_lora(5), name="acme/four"), trust=trust, policy=strict, weight=2.5)
    assert len(refused.value.reasons) == 2
    assert sorted(sd1.get_list_adapters()["unet"]) == ["acme_one", "acme_three", "acme_two"]


def test_saved_png_reads_back_with_the_verified_adapter(
    sd1: Any, tmp_path: Path, signed: Signer, trust: TrustStore
) -> None:
    use = load_verified_lora(sd1, signed(sd1_lora()), trust=trust, weight=0.7)
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
    assert claimed.parameters.startswith("a cat <lora:acme_ink:0.7>\nSteps: 2, Seed: 0, ")
    assert f'Lora hashes: "acme_ink: {use.autov3[:12]}"' in claimed.parameters
