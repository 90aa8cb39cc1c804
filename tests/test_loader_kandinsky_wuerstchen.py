"""Kandinsky 2.2 (decoder UNet) and Würstchen (prior): the two other families diffusers trains LoRAs for.

Würstchen's prior pipeline has diffusers' LoRA loader; Kandinsky 2.2's has none, so lorareg injects peft into
its UNet (``lorareg/loader/component.py``). Both get the guarantees of every other family: verified before
anything is touched, refused without a trace, unloaded back to the exact base output, weight applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from lorareg import attribution, load_verified_lora, unload_lora
from lorareg.adapter.facts import compute_facts
from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.errors import IncompatibleAdapterError
from lorareg.signing.trust import TrustStore
from tests.fixtures.signed_files import Signer
from tests.support import tiny_kandinsky_wuerstchen as kw


@dataclass
class Story:
    pipe: Any
    render: Callable[[Any], torch.Tensor]
    adapter: Callable[[], bytes]
    wrong_shapes: Callable[[], bytes]
    denoiser: str
    base: torch.Tensor


def _kandinsky() -> Story:
    pipe = kw.kandinsky_pipeline()
    return Story(
        pipe,
        kw.render_kandinsky,
        lambda: kw.kandinsky_processor_lora(kw.kandinsky_unet()),
        lambda: kw.kandinsky_processor_lora(kw.kandinsky_unet(channels=(16, 32))),
        "unet",
        kw.render_kandinsky(pipe),
    )


def _wuerstchen() -> Story:
    pipe = kw.wuerstchen_pipeline()
    return Story(
        pipe,
        kw.render_wuerstchen,
        lambda: kw.wuerstchen_lora(kw.wuerstchen_prior()),
        lambda: kw.wuerstchen_lora(kw.wuerstchen_prior(c=16)),
        "prior",
        kw.render_wuerstchen(pipe),
    )


@pytest.fixture(scope="module")
def stories() -> dict[str, Story]:
    return {"kandinsky": _kandinsky(), "wuerstchen": _wuerstchen()}


@pytest.fixture(autouse=True)
def nothing_left_loaded(stories: dict[str, Story]) -> Iterator[None]:
    yield
    for story in stories.values():
        for name in list(getattr(story.pipe, "_lorareg_adapters", {})):
            unload_lora(story.pipe, name)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", ["kandinsky", "wuerstchen"])
def test_adapter_files_show_their_family(stories: dict[str, Story], family: str) -> None:
    data = stories[family].adapter()
    header = parse_header(data, file_size=len(data))
    assert compute_facts(header, read_scalars(data, header)).family == family


@pytest.mark.parametrize("family", ["kandinsky", "wuerstchen"])
def test_verified_adapter_changes_the_output_with_its_weight_and_unload_restores_it(
    stories: dict[str, Story], sign_as_acme: Signer, acme_trust: TrustStore, family: str
) -> None:
    story = stories[family]
    path = sign_as_acme(story.adapter())
    use = load_verified_lora(story.pipe, path, trust=acme_trust, weight=1.0)
    assert (use.family, attribution(story.pipe)) == (family, [use])
    full = story.render(story.pipe)
    assert not torch.equal(full, story.base)
    unload_lora(story.pipe, use.adapter_name)
    assert torch.equal(story.render(story.pipe), story.base)
    half = load_verified_lora(story.pipe, path, trust=acme_trust, weight=0.5)
    assert not torch.equal(story.render(story.pipe), full)  # the weight reached the adapter
    unload_lora(story.pipe, half.adapter_name)
    assert attribution(story.pipe) == []
    assert torch.equal(story.render(story.pipe), story.base)


@pytest.mark.parametrize("family", ["kandinsky", "wuerstchen"])
def test_adapter_of_other_shapes_is_refused_and_nothing_changes(
    stories: dict[str, Story], sign_as_acme: Signer, acme_trust: TrustStore, family: str
) -> None:
    story = stories[family]
    model = getattr(story.pipe, story.denoiser)
    before = snapshot(model)
    with pytest.raises(IncompatibleAdapterError) as refused:
        load_verified_lora(story.pipe, sign_as_acme(story.wrong_shapes()), trust=acme_trust)
    assert any(r.startswith("shape mismatch: ") for r in refused.value.reasons), refused.value.reasons
    assert not getattr(model, "peft_config", None)
    after = snapshot(model)
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(story.render(story.pipe), story.base)


def test_kandinsky_adapter_in_an_unknown_layout_is_refused_by_name(
    stories: dict[str, Story], sign_as_acme: Signer, acme_trust: TrustStore
) -> None:
    from safetensors.torch import save

    data = save({"down_blocks.1.attentions.0.processor.mystery.weight": torch.zeros(2, 2)})
    with pytest.raises(IncompatibleAdapterError, match="not a LoRA tensor in a layout the unet accepts"):
        load_verified_lora(stories["kandinsky"].pipe, sign_as_acme(data), trust=acme_trust)
