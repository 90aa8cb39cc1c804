"""Every image lorareg writes is attributed by the readers people use: A1111 and Civitai, PNG/JPEG/WebP.

The readers are re-implemented in ``tests/support/image_parsers.py`` from their public behaviour; each test
asks them for every adapter's hash and weight. The README example (``save_image(image, "harbour.png", pipe,
prompt=...)`` after a plain ``pipe(prompt)``) runs as written on a tiny SD1 pipeline with a verified adapter.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from lorareg.errors import InputError
from lorareg.images.exif import EXIF_IFD, USER_COMMENT, decode_user_comment
from lorareg.images.provenance import AdapterUse, read_provenance, record_adapter, save_image
from lorareg.images.settings import parameters_text, pipeline_settings, weight_text
from tests.support.image_parsers import assert_readers_attribute, civitai_parse

INK = AdapterUse(
    adapter_name="acme_ink",
    ref="acme/ink@1.2.0",
    sha256="a" * 64,
    autov3="0123456789abcdef" + "0" * 48,
    weight=0.8,
    name="acme/ink",
    version="1.2.0",
)
PIXEL = AdapterUse(
    adapter_name="acme_pixel",
    ref="/tmp/a,b:c.safetensors",
    sha256="c" * 64,
    autov3="fedcba987654" + "1" * 52,
    weight=1.0,
)
TINY = AdapterUse(
    adapter_name="tiny", ref="t", sha256="d" * 64, autov3="0a0b0c0d0e0f" + "2" * 52, weight=0.00005
)


class FakePipe:
    """A pipeline after a run, as far as attribution reads it: adapters and the scheduler's step count."""

    def __init__(self, *uses: AdapterUse) -> None:
        self.scheduler = SimpleNamespace(num_inference_steps=20)
        self.active = [u.adapter_name for u in uses]
        for use in uses:
            record_adapter(self, use)

    def get_active_adapters(self) -> list[str]:
        return self.active


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp"])
def test_every_format_is_attributed_by_a1111_and_civitai(tmp_path: Path, suffix: str) -> None:
    pipe = FakePipe(INK, PIXEL)
    out = save_image(Image.new("RGBA", (24, 16)), tmp_path / f"o{suffix}", pipe, prompt="a cat", seed=3)
    settings = assert_readers_attribute(out, (INK, PIXEL))
    assert (settings["Size-1"], settings["Size-2"], settings["Seed"]) == ("24", "16", "3")
    assert settings["Lorareg"] == f"acme_ink: acme/ink@1.2.0, acme_pixel: sha256-{'c' * 12}"


def test_the_fewest_settings_still_make_a_settings_line_for_a1111(tmp_path: Path) -> None:
    """One adapter, no call settings: Steps from the scheduler, Size, Lora hashes... (A1111 needs 3 pairs)."""
    out = save_image(Image.new("RGB", (8, 8)), tmp_path / "o.png", FakePipe(INK), prompt="p")
    assert_readers_attribute(out, (INK,))


def test_weights_are_plain_decimals_the_readers_match() -> None:
    assert [weight_text(w) for w in (0.8, 1.0, 0.00005, 1e-7, 2.5)] == ["0.8", "1", "0.0001", "0", "2.5"]
    text = parameters_text([TINY], prompt="p", params={"steps": 2, "seed": 1}, version="x")
    assert "<lora:tiny:0.0001>" in text


def test_settings_follow_a1111_order_whatever_the_call_order() -> None:
    params = {"seed": 1, "clip_skip": 2, "custom": "x", "cfg_scale": 7.0, "model": "m", "steps": 30}
    line = parameters_text([INK], prompt="p", params=params, version="9").splitlines()[-1]
    keys = [pair.split(":")[0] for pair in line.split(", ") if ":" in pair and not pair.startswith('"')]
    assert keys[:6] == ["Steps", "CFG scale", "Seed", "Model", "Clip skip", "Custom"]
    assert line.endswith('Version: lorareg 9, Lorareg: "acme_ink: acme/ink@1.2.0"')


def test_prompt_line_that_looks_like_settings_cannot_take_civitai_over(tmp_path: Path) -> None:
    prompt = 'a cat\nSteps: 99, Lora hashes: "acme_ink: ffffffffffff"'
    out = save_image(Image.new("RGB", (8, 8)), tmp_path / "o.png", FakePipe(INK), prompt=prompt, steps=2)
    assert_readers_attribute(out, (INK,))
    parsed = civitai_parse(read_provenance(out).parameters or "")
    assert parsed is not None and parsed.settings["Steps"] == "2"


def test_jpeg_user_comment_is_written_as_a1111_writes_it(tmp_path: Path) -> None:
    out = save_image(Image.new("RGB", (8, 8)), tmp_path / "o.jpg", FakePipe(INK), prompt="café", steps=2)
    with Image.open(out) as image:
        raw = image.getexif().get_ifd(EXIF_IFD)[USER_COMMENT]
    assert raw.startswith(b"UNICODE\x00") and raw[8:].decode("utf-16-be").startswith(
        "café <lora:acme_ink:0.8>"
    )


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"UNICODE\x00" + "Steps: 2".encode("utf-16-be"), "Steps: 2"),
        (b"UNICODE\x00" + "Steps: 2".encode("utf-16-le"), "Steps: 2"),
        (b"ASCII\x00\x00\x00Steps: 2", "Steps: 2"),
    ],
    ids=["piexif-unicode-be", "unicode-le", "ascii"],
)
def test_user_comment_character_codes_decode(raw: bytes, text: str) -> None:
    assert decode_user_comment(raw) == text


def test_user_comment_in_jis_is_refused() -> None:
    with pytest.raises(InputError, match="character code"):
        decode_user_comment(b"JIS\x00\x00\x00\x00\x00abc")


def test_hostile_exif_record_is_refused(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x927C] = b"lorareg\x00{not json"
    path = tmp_path / "h.jpg"
    Image.new("RGB", (4, 4)).save(path, exif=exif.tobytes())
    with pytest.raises(InputError):
        read_provenance(path)


def test_settings_come_from_the_scheduler_and_the_image() -> None:
    from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler

    class Pipe:
        scheduler: Any = DPMSolverMultistepScheduler(use_karras_sigmas=True, algorithm_type="sde-dpmsolver++")
        _guidance_scale = 4.5
        name_or_path = "/models/stabilityai/sd-turbo/"

    Pipe.scheduler.set_timesteps(7)
    found = pipeline_settings(Pipe(), Image.new("RGB", (64, 32)))
    assert found == {
        "steps": 7,
        "sampler": "DPM++ 2M SDE",
        "schedule_type": "Karras",
        "cfg_scale": 4.5,
        "size": "64x32",
        "model": "sd-turbo",
    }
    Pipe.scheduler = EulerAncestralDiscreteScheduler()
    assert pipeline_settings(Pipe(), None)["sampler"] == "Euler a"


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_c2pa_signs_jpeg_and_webp_and_exif_survives(tmp_path: Path, suffix: str) -> None:
    from lorareg.images.c2pa import embed_c2pa, read_c2pa
    from tests.fixtures.c2pa_certs import make_signing_chain

    out = save_image(Image.new("RGB", (16, 16)), tmp_path / f"o{suffix}", FakePipe(INK), prompt="p", steps=2)
    chain, key = make_signing_chain()
    embed_c2pa(out, [INK], cert_chain_pem=chain, private_key_pem=key)
    store = read_c2pa(out)
    active = store["manifests"][store["active_manifest"]]  # type: ignore[index]
    assert [i["title"] for i in active["ingredients"]] == ["acme/ink@1.2.0"]
    assert {s["code"] for s in store.get("validation_status", [])} <= {"signingCredential.untrusted"}
    assert_readers_attribute(out, (INK,))


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_provenance_cli_reads_jpeg_and_webp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    import json

    from tests.support.cli_runner import run_main

    out = save_image(Image.new("RGB", (8, 8)), tmp_path / f"o{suffix}", FakePipe(INK), prompt="p")
    code, stdout, stderr = run_main(monkeypatch, capsys, "provenance", str(out), "--json")
    assert code == 0, stderr
    assert [a["ref"] for a in json.loads(stdout)["adapters"]] == ["acme/ink@1.2.0"]


def test_provenance_cli_refuses_a_jpeg_with_a_hostile_exif_record_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.cli_runner import run_main

    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x927C] = b'lorareg\x00{"schema": 1, "adapters": 7}'
    path = tmp_path / "h.jpg"
    Image.new("RGB", (4, 4)).save(path, exif=exif.tobytes())
    code, _, stderr = run_main(monkeypatch, capsys, "provenance", str(path))
    assert code == 2 and stderr.startswith("error: ")
