"""Attribution in images: A1111 ``parameters`` + ``lorareg`` PNG chunks, read back; ``lorareg provenance``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import lorareg
from lorareg.errors import InputError, NotFoundError
from lorareg.images.provenance import (
    AdapterUse,
    ImageProvenance,
    attribution,
    current_status,
    forget_adapter,
    read_provenance,
    record_adapter,
    save_image,
)
from tests.support.image_parsers import assert_readers_attribute

INK = AdapterUse(
    adapter_name="acme_ink",
    ref="acme/ink@1.2.0",
    sha256="a" * 64,
    autov3="0123456789abcdef" + "0" * 48,
    weight=0.8,
    name="acme/ink",
    version="1.2.0",
    family="sd1",
    license="CreativeML-OpenRAIL-M",
    creators=("Ada Ink",),
    digests={"sha256": "a" * 64, "blake3": "b" * 64},
)
PIXEL = AdapterUse(
    adapter_name="acme_pixel",
    ref="acme/pixel@2.0.0",
    sha256="c" * 64,
    autov3="fedcba987654" + "1" * 52,
    weight=1.0,
)


ENTRY = json.dumps(
    {"schema": 1, "adapters": [{"adapter_name": "x", "ref": "r", "sha256": "s", "autov3": "a", "weight": 1}]}
)


class FakePipe:
    """Stands in for a diffusers pipeline: only the adapter bookkeeping attribution reads."""

    def __init__(self, active: list[str]) -> None:
        self.active = active

    def get_active_adapters(self) -> list[str]:
        return self.active


def png(tmp_path: Path, **chunks: str) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path = tmp_path / "in.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


def test_attribution_lists_only_adapters_still_active() -> None:
    pipe = FakePipe(["acme_ink"])
    record_adapter(pipe, INK)
    record_adapter(pipe, PIXEL)
    assert attribution(pipe) == [INK]
    pipe.active = ["acme_ink", "acme_pixel"]
    forget_adapter(pipe, "acme_ink")
    assert attribution(pipe) == [PIXEL]


def test_saved_png_carries_a1111_parameters_and_lorareg_chunk(tmp_path: Path) -> None:
    pipe = FakePipe(["acme_ink", "acme_pixel"])
    record_adapter(pipe, INK)
    record_adapter(pipe, PIXEL)
    out = save_image(
        Image.new("RGB", (8, 8), "red"),
        tmp_path / "out.png",
        pipe,
        prompt="a cat, ink style",
        negative_prompt="blurry",
        steps=2,
        cfg_scale=7.5,
        seed=42,
        sampler="DPM++ 2M, Karras",
    )
    with Image.open(out) as image:
        text = dict(image.text)  # type: ignore[attr-defined]
    assert text["parameters"].splitlines() == [
        "a cat, ink style <lora:acme_ink:0.8> <lora:acme_pixel:1>",
        "Negative prompt: blurry",
        'Steps: 2, Sampler: "DPM++ 2M, Karras", CFG scale: 7.5, Seed: 42, Size: 8x8, '
        'Lora hashes: "acme_ink: 0123456789ab, acme_pixel: fedcba987654", Version: lorareg '
        + lorareg.__version__
        + ', Lorareg: "acme_ink: acme/ink@1.2.0, acme_pixel: acme/pixel@2.0.0"',
    ]
    chunk = json.loads(text["lorareg"])
    assert [a["ref"] for a in chunk["adapters"]] == ["acme/ink@1.2.0", "acme/pixel@2.0.0"]
    assert chunk["adapters"][0]["digests"]["blake3"] == "b" * 64
    back = read_provenance(out)
    assert back.adapters == (INK, PIXEL)
    assert back.prompt == "a cat, ink style"
    assert_readers_attribute(out, (INK, PIXEL))


def test_prompt_line_breaks_cannot_forge_the_settings_line(tmp_path: Path) -> None:
    out = save_image(
        Image.new("RGB", (4, 4)),
        tmp_path / "o.png",
        FakePipe([]),
        prompt="x",
        sampler="Euler\nLora hashes: forged",
    )
    params = read_provenance(out).parameters or ""
    assert params.splitlines()[-1].startswith('Sampler: "Euler Lora hashes: forged"')


def test_image_without_lorareg_chunk_reports_no_adapters(tmp_path: Path) -> None:
    found = read_provenance(png(tmp_path, parameters="a cat\nSteps: 20"))
    assert found == ImageProvenance("a cat\nSteps: 20", ())


@pytest.mark.parametrize(
    "chunk",
    [
        "not json",
        '{"schema": 1, "adapters": {}}',
        '{"schema": 2, "adapters": []}',
        '{"schema": 1, "schema": 1, "adapters": []}',
        '{"schema": 1, "adapters": [{"adapter_name": "x"}]}',
        ENTRY.replace('"sha256": "s"', '"sha256": 5'),
        ENTRY.replace('"weight": 1', '"weight": true'),
        '{"schema": 1, "adapters": [' + "[" * 100 + "]" * 100 + "]}",
    ],
    ids=[
        "not-json",
        "adapters-not-list",
        "future-schema",
        "duplicate-key",
        "missing-fields",
        "digest-not-string",
        "weight-bool",
        "deep-nesting",
    ],
)
def test_hostile_lorareg_chunk_is_refused(tmp_path: Path, chunk: str) -> None:
    with pytest.raises(InputError):
        read_provenance(png(tmp_path, lorareg=chunk))


def test_not_an_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError):
        read_provenance(path)


def registry_answers(answers: dict[str, dict[str, Any]]) -> Any:
    """A resolve callable over fixed answers; unknown refs raise ``NotFoundError`` as the client does."""
    asked: list[str] = []

    def resolve(ref: str) -> dict[str, Any]:
        asked.append(ref)
        if ref not in answers:
            raise NotFoundError(f"{ref[:24]} is not published")
        return answers[ref]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


REVOKED_INK = {
    "name": "acme/ink",
    "version": "1.2.0",
    "sha256": INK.sha256,
    "status": "revoked",
    "revocation_reason": "takedown: likeness",
    "revoked_at": "2025-03-04T05:06:07Z",
    "yanked_at": None,
}


def test_current_status_asks_by_recorded_ref_and_reports_revoked_since() -> None:
    resolve = registry_answers({"acme/ink@1.2.0": REVOKED_INK})
    (row,) = current_status(ImageProvenance(None, (INK,)), resolve)
    assert (row.status, row.reason, row.revoked_at) == (
        "revoked",
        "takedown: likeness",
        "2025-03-04T05:06:07Z",
    )
    assert (row.registry_ref, row.mismatch, resolve.asked) == ("acme/ink@1.2.0", None, ["acme/ink@1.2.0"])


def test_same_ref_with_other_bytes_is_reported_as_mismatch_then_digest_decides() -> None:
    other = {**REVOKED_INK, "sha256": "d" * 64, "status": "active", "revocation_reason": None}
    copy = {**REVOKED_INK, "name": "mirror/ink", "version": "9.0.0"}
    resolve = registry_answers({"acme/ink@1.2.0": other, INK.sha256: copy})
    (row,) = current_status(ImageProvenance(None, (INK,)), resolve)
    assert row.status == "mismatch"
    assert row.mismatch == f"registry's acme/ink@1.2.0 has sha256 {'d' * 16}…, the image records {'a' * 16}…"
    assert (row.reason, row.registry_ref, row.revoked_at) == (
        "takedown: likeness",
        "mirror/ink@9.0.0",
        "2025-03-04T05:06:07Z",
    )


@pytest.mark.parametrize(
    ("use", "answers", "expected"),
    [
        (INK, {INK.sha256: {**REVOKED_INK, "status": "active", "revocation_reason": None}}, ("active", None)),
        (PIXEL, {}, ("unknown", f"{'c' * 24} is not published")),
        (
            INK,
            {"acme/ink@1.2.0": {**REVOKED_INK, "sha256": "e" * 64}},
            ("mismatch", f"{'a' * 24} is not published"),
        ),
    ],
    ids=["ref-unknown-digest-known", "nothing-known", "mismatch-digest-unknown"],
)
def test_digest_is_the_fallback(use: AdapterUse, answers: dict[str, Any], expected: tuple[str, Any]) -> None:
    (row,) = current_status(ImageProvenance(None, (use,)), registry_answers(answers))
    assert (row.status, row.reason) == expected


def test_provenance_cli_offline_reports_what_the_image_claims(tmp_path: Path) -> None:
    pipe = FakePipe(["acme_ink"])
    record_adapter(pipe, INK)
    out = save_image(Image.new("RGB", (4, 4)), tmp_path / "o.png", pipe, prompt="p")
    result = subprocess.run(
        [sys.executable, "-m", "lorareg", "provenance", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(a["ref"], a["status"]) for a in report["adapters"]] == [("acme/ink@1.2.0", "unchecked")]
    human = subprocess.run(
        [sys.executable, "-m", "lorareg", "provenance", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert "acme/ink@1.2.0  weight 0.8  unchecked" in human.stdout
    assert "offline" in human.stdout


def test_provenance_cli_refuses_a_non_image_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_text("hello")
    result = subprocess.run(
        [sys.executable, "-m", "lorareg", "provenance", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def test_c2pa_manifest_marks_image_ai_generated_with_adapters_as_ingredients(tmp_path: Path) -> None:
    from lorareg.images.c2pa import AI_GENERATED, embed_c2pa, read_c2pa
    from tests.fixtures.c2pa_certs import make_signing_chain

    pipe = FakePipe(["acme_ink"])
    record_adapter(pipe, INK)
    out = save_image(Image.new("RGB", (8, 8)), tmp_path / "o.png", pipe, prompt="p")
    chain, key = make_signing_chain()
    embed_c2pa(out, attribution(pipe), cert_chain_pem=chain, private_key_pem=key)
    store = read_c2pa(out)
    active = store["manifests"][store["active_manifest"]]  # type: ignore[index]
    assert [i["title"] for i in active["ingredients"]] == ["acme/ink@1.2.0"]
    actions = next(a for a in active["assertions"] if a["label"].startswith("c2pa.actions"))
    assert actions["data"]["actions"][0]["digitalSourceType"] == AI_GENERATED
    codes = {s["code"] for s in store.get("validation_status", [])}
    assert codes <= {"signingCredential.untrusted"}  # only: the test CA is not on the C2PA trust list
    assert read_provenance(out).adapters == (INK,)  # the text chunks survive signing
