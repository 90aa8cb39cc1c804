"""``lorareg provenance`` against a live registry: an image made with a verified adapter, and its fate since.

The stories: the adapter is revoked after the image was made (the report says revoked, since when, why);
the same bytes are republished under another name and the image's own version is yanked (the report
follows the image's ``name@version``, not whichever version the digest happens to resolve to).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from lorareg import load_verified_lora, save_image
from lorareg.manifest import ManifestDraft
from lorareg.signing.sign import sign_file
from tests.fixtures.server import draft_manifest
from tests.support import tiny_pipelines as tiny

CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def sd1() -> Any:
    return tiny.sd_pipeline()


@pytest.fixture(scope="module")
def adapter_bytes() -> bytes:
    unet: Any = tiny.sd_unet(cross_attention_dim=768)
    return tiny.diffusers_lora_bytes(unet, component="unet", targets=tiny.SD_TARGETS)


def publish(live_server: Any, data: bytes, name: str, version: str = "1.0.0") -> None:
    """Publish ``data`` as ``name@version`` with the namespace's publisher key."""
    namespace = name.split("/")[0]
    token = live_server.token("publisher", namespace)
    path = live_server.work_dir / f"{name.replace('/', '_')}-{version}.safetensors"
    path.write_bytes(data)
    bundle = sign_file(
        path, ManifestDraft.from_json(draft_manifest(name, version)), live_server.publisher_keys[namespace]
    )
    with live_server.client(token) as client:
        client.publish(path, bundle)


def image_made_with(sd1: Any, live_server: Any, ref: str, out: Path) -> Path:
    """Load ``ref`` verified from the registry, render, and save the PNG with its provenance chunks."""
    trust, _ = live_server.trust()
    with live_server.client() as client:
        use = load_verified_lora(sd1, ref, registry=client, trust=trust)
    try:
        pixels = (tiny.render(sd1).permute(1, 2, 0).clamp(0, 1) * 255).to(torch.uint8).numpy()
        saved: Path = save_image(Image.fromarray(pixels), out, sd1, prompt="a cat", steps=tiny.STEPS, seed=0)
        return saved
    finally:
        sd1.delete_adapters(use.adapter_name)


def provenance_json(image: Path, registry: str, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "LORAREG_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, "-m", "lorareg", "provenance", str(image), "--registry", registry, "--json"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_revoked_since_the_image_was_made_reports_time_and_reason(
    sd1: Any, live_server: Any, adapter_bytes: bytes, tmp_path: Path
) -> None:
    live_server.add_publisher("acme")
    publish(live_server, adapter_bytes, "acme/ink")
    image = image_made_with(sd1, live_server, "acme/ink@1.0.0", tmp_path / "cat.png")
    (before,) = provenance_json(image, live_server.url, tmp_path / "cache")["adapters"]
    assert (before["ref"], before["status"], before["revoked_at"]) == ("acme/ink@1.0.0", "active", None)

    reviewer = live_server.registry.authenticate(live_server.token("admin"))
    start = datetime.now(UTC)
    live_server.registry.revoke("acme/ink@1.0.0", reason="takedown upheld: likeness", principal=reviewer)
    end = datetime.now(UTC)

    (after,) = provenance_json(image, live_server.url, tmp_path / "cache")["adapters"]
    assert (after["status"], after["status_reason"]) == ("revoked", "takedown upheld: likeness")
    assert after["revoked_at"].endswith("Z")
    assert start <= parse_time(after["revoked_at"]) <= end
    assert (after["registry_ref"], after["mismatch"]) == ("acme/ink@1.0.0", None)
    human = subprocess.run(
        [sys.executable, "-m", "lorareg", "provenance", str(image), "--registry", live_server.url],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, "LORAREG_CACHE": str(tmp_path / "cache")},
    )
    assert f"revoked since {after['revoked_at']} (takedown upheld: likeness)" in human.stdout


def test_report_follows_the_images_version_not_a_republished_copy(
    sd1: Any, live_server: Any, adapter_bytes: bytes, tmp_path: Path
) -> None:
    """Same bytes as acme/ink and later as copycat/ink: by digest alone the active copy would answer."""
    live_server.add_publisher("acme")
    live_server.add_publisher("copycat")
    publish(live_server, adapter_bytes, "acme/ink")
    image = image_made_with(sd1, live_server, "acme/ink@1.0.0", tmp_path / "cat.png")
    publish(live_server, adapter_bytes, "copycat/ink", "2.0.0")
    publisher = live_server.registry.authenticate(live_server.token("publisher", "acme"))
    start = datetime.now(UTC)
    live_server.registry.yank("acme/ink", "1.0.0", principal=publisher)

    with live_server.client() as client:
        by_digest = client.resolve(json.loads(Image.open(image).text["lorareg"])["adapters"][0]["sha256"])  # type: ignore[attr-defined]
    assert (by_digest["name"], by_digest["status"]) == ("copycat/ink", "active")  # why a digest is not enough

    (row,) = provenance_json(image, live_server.url, tmp_path / "cache")["adapters"]
    assert (row["status"], row["registry_ref"], row["revoked_at"]) == ("yanked", "acme/ink@1.0.0", None)
    assert start <= parse_time(row["yanked_at"]) <= datetime.now(UTC)
