"""The README's attribution example, run as written on a tiny SD1 pipeline with a verified adapter.

``pipe("a harbour at dawn")`` with the pipeline's defaults, then ``save_image(image, "harbour.png", pipe,
prompt="a harbour at dawn")``: no settings passed, so steps, sampler, CFG scale, size come from the
pipeline, and both outside readers must still attribute the image to the adapter with its hash and weight.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from lorareg import load_verified_lora, save_image
from lorareg.manifest import ManifestDraft
from lorareg.signing.keys import generate
from lorareg.signing.policy import Policy
from lorareg.signing.sign import sign_file
from lorareg.signing.trust import TrustedKey, TrustStore
from tests.support import tiny_pipelines as tiny
from tests.support.image_parsers import assert_readers_attribute

DRAFT = {
    "name": "inkworks/ink-wash",
    "version": "2.0.0",
    "license": {
        "id": "CreativeML-OpenRAIL-M",
        "commercial_use": True,
        "derivatives": True,
        "attribution_required": True,
    },
    "consent": {"subject": "style", "status": "not-required"},
    "creators": [{"name": "Ada Ink", "role": "trainer"}],
}


def signed_sd1_adapter(tmp_path: Path) -> tuple[Path, TrustStore]:
    key = generate()
    path = tmp_path / "ink-wash.safetensors"
    unet: Any = tiny.sd_unet(cross_attention_dim=768)
    path.write_bytes(tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS))
    Path(f"{path}.sig").write_bytes(sign_file(path, ManifestDraft.from_json(DRAFT), key))
    entry = TrustedKey(
        keyid=key.public_key.key_id,
        label="ink",
        role="publisher",
        namespace="inkworks",
        public_key=key.public_key,
    )
    return path, TrustStore((entry,), Policy())


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    """The README's first two lines: a verified adapter on the pipeline, then ``pipe(prompt)`` as is."""
    pipe = tiny.sd_pipeline()
    pipe.set_progress_bar_config(disable=True)
    adapter, trust = signed_sd1_adapter(tmp_path_factory.mktemp("adapter"))
    use = load_verified_lora(pipe, adapter, weight=0.8, trust=trust)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        image = pipe("a harbour at dawn").images[0]
    return pipe, use, image


@pytest.mark.parametrize("name", ["harbour.png", "harbour.jpg", "harbour.webp"])
def test_readme_example_is_attributed_by_a1111_and_civitai(
    harbour: tuple[Any, Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    pipe, use, image = harbour
    monkeypatch.chdir(tmp_path)
    save_image(image, name, pipe, prompt="a harbour at dawn")  # as the README writes it
    settings = assert_readers_attribute(tmp_path / name, (use,))
    assert (settings["Steps"], settings["Sampler"], settings["CFG scale"]) == ("50", "DDIM", "7.5")
    assert (settings["Size-1"], settings["Size-2"]) == (str(tiny.IMAGE_PX), str(tiny.IMAGE_PX))
    assert settings["Lorareg"] == "inkworks_ink-wash: inkworks/ink-wash@2.0.0"


def test_generate_records_the_seed_the_pipeline_cannot_know(
    harbour: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from lorareg.loader.generate import generate

    pipe, use, _ = harbour
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        image, settings = generate(
            pipe, "a harbour at dawn", seed=3, num_inference_steps=2, guidance_scale=5.0
        )
    save_image(image, tmp_path / "seeded.png", pipe, prompt="a harbour at dawn", **settings)
    found = assert_readers_attribute(tmp_path / "seeded.png", (use,))
    assert (found["Seed"], found["Steps"], found["CFG scale"]) == ("3", "2", "5")
