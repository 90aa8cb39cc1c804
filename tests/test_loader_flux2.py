"""FLUX.2 [klein] has a loader story like SD1/SDXL/SD3/FLUX.1: verify first, load, unload, refuse others.

Also the one pair of families the tensors cannot always tell apart: an attention-only FLUX adapter at hidden
3072 in the first five double blocks fits FLUX.1 and FLUX.2 klein-4B alike, so the family check leaves it
to the pipeline's structure instead of refusing it by name.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lorareg import attribution, load_verified_lora, unload_lora
from lorareg.errors import IncompatibleAdapterError
from lorareg.images.provenance import AdapterUse
from lorareg.loader.family import PipelineFamily, detect_family
from lorareg.loader.load import _family_reasons
from lorareg.signing.trust import TrustStore
from tests.fixtures.signed_files import Signer
from tests.support import tiny_flux2 as flux2
from tests.support import tiny_pipelines as tiny


@pytest.fixture(scope="module")
def pipe() -> Any:
    return flux2.flux2_pipeline()


@pytest.fixture(scope="module")
def base_image(pipe: Any) -> torch.Tensor:
    return flux2.render_flux2(pipe)


def snapshot(pipe: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in pipe.transformer.state_dict().items()}


def test_flux2_pipeline_is_detected_by_its_transformer_class(pipe: Any) -> None:
    found = detect_family(pipe)
    assert found.family == "flux2"
    assert "Flux2Transformer2DModel, 1 double + 1 single blocks" in found.evidence


def test_verified_flux2_adapter_changes_the_image_and_unload_restores_it(
    pipe: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    model: Any = flux2.flux2_transformer()
    data = tiny.peft_lora_bytes(model, component="transformer", targets=flux2.FLUX2_TARGETS)
    use = load_verified_lora(pipe, sign_as_acme(data), trust=acme_trust, weight=0.9)
    assert (use.family, attribution(pipe)) == ("flux2", [use])
    assert not torch.equal(flux2.render_flux2(pipe), base_image)
    unload_lora(pipe, use.adapter_name)
    assert not any(pipe.get_list_adapters().values())
    assert torch.equal(flux2.render_flux2(pipe), base_image)


def test_flux1_adapter_is_refused_on_flux2_and_nothing_changes(
    pipe: Any, base_image: torch.Tensor, sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    flux1: Any = tiny.flux_transformer()
    data = tiny.peft_lora_bytes(flux1, component="transformer", targets=["to_q", "proj_mlp", "proj_out"])
    before = snapshot(pipe)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(pipe, sign_as_acme(data), trust=acme_trust)
    assert "targets flux1; this pipeline is flux2 (Flux2Transformer2DModel" in refused.value.reasons[0]
    assert not any(pipe.get_list_adapters().values())
    assert all(torch.equal(v, snapshot(pipe)[k]) for k, v in before.items())
    assert torch.equal(flux2.render_flux2(pipe), base_image)


def _use(family: str) -> AdapterUse:
    return AdapterUse(
        adapter_name="a", ref="acme/a@1.0.0", sha256="0" * 64, autov3="0" * 64, weight=1.0, family=family
    )


@pytest.mark.parametrize(
    ("alternatives", "refused"),
    [(("flux2",), False), ((), True)],
    ids=["klein-4b-possible-structure-decides", "clearly-flux1-refused"],
)
def test_family_check_leaves_indistinguishable_families_to_the_structure(
    alternatives: tuple[str, ...], refused: bool
) -> None:
    klein = PipelineFamily("flux2", "Flux2Transformer2DModel, 5 double + 20 single blocks, width 3072")
    reasons = _family_reasons(_use("flux1"), "flux1", klein, alternatives)
    assert bool(reasons) is refused
