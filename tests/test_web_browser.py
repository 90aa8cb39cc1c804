"""The web UI in a real browser: Playwright drives Debian's Chromium against a live uvicorn server seeded
with the demo catalogue. One story from a visitor browsing to a reviewer upholding a takedown and a
pipeline's ``lorareg pull --verify`` then refusing the adapter; and the screenshots of ``make screenshots``.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from lorareg.demo.catalogue import DemoSeed, seed_demo
from lorareg.registry.previews import Previews
from lorareg.signing.keys import load_public_key
from lorareg.signing.policy import Policy
from lorareg.signing.trust import TrustStore
from tests.fixtures.server import LiveServer
from tests.fixtures.services import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
PREVIEW_PALETTES = {
    "acme/pixel-art": ((255, 94, 98), (255, 195, 113)),
    "acme/isometric-rooms": ((67, 206, 162), (24, 90, 157)),
    "inkworks/ink-wash": ((40, 40, 48), (200, 200, 210)),
    "inkworks/watercolor": ((137, 207, 240), (255, 183, 197)),
    "inkworks/neon-city": ((255, 0, 153), (30, 20, 80)),
    "inkworks/lineart": ((250, 250, 250), (120, 120, 130)),
    "inkworks/captain-comet": ((255, 215, 0), (200, 30, 30)),
}


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's) under Playwright."""
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: run make system-deps")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def demo_site(live_server: LiveServer) -> tuple[LiveServer, DemoSeed]:
    """The live server with the demo catalogue and a gradient preview on most adapters."""
    seed = seed_demo(live_server.registry, live_server.data_dir)
    previews = Previews(live_server.registry)
    for name, palette in PREVIEW_PALETTES.items():
        record = live_server.registry.resolve(name)
        principal = live_server.registry.authenticate(seed.publisher_tokens[name.split("/")[0]])
        previews.add(record.name, record.version, _artwork(palette), principal=principal)
    return live_server, seed


def test_browse_filter_copy_file_takedown_review_uphold_and_pull_is_refused(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any, tmp_path: Path
) -> None:
    server, seed = demo_site
    trust_path = _trust_file(server, tmp_path)
    env = {**os.environ, "LORAREG_REGISTRY": server.url, "LORAREG_CACHE": str(tmp_path / "cache")}
    assert _pull(env, trust_path, "inkworks/watercolor@1.0.0").returncode == 0  # cached before the takedown

    context = browser.new_context(viewport=VIEWPORT)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.goto(server.url + "/")
    assert page.locator("li.card").count() >= 8

    page.select_option("select[name=family]", "sd3")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/?*family=sd3*")
    names = page.locator("li.card h2 a").all_inner_texts()
    assert names and set(names) <= {"inkworks/watercolor", "inkworks/lineart"}

    page.click('li.card h2 a:text-is("inkworks/watercolor")')
    page.wait_for_url("**/adapters/inkworks/watercolor/1.0.0")
    assert "Verified on the server just now" in page.inner_text("#signature-status")
    sha256 = server.registry.resolve("inkworks/watercolor").sha256
    page.click('button.copy[data-label="SHA-256"]')
    page.wait_for_selector('button.copy.done[data-label="SHA-256"]')
    assert page.evaluate("navigator.clipboard.readText()") == sha256

    page.select_option("#takedown-form select[name=reason]", "style")
    page.fill("#takedown-form input[name=claimant]", "Aiko Brush")
    page.fill("#takedown-form input[name=contact]", "aiko@example.org")
    page.fill("#takedown-form textarea[name=details]", "Trained on my watercolour portfolio without consent.")
    page.check("#takedown-form input[name=good_faith]")
    page.click("#takedown-form button[type=submit]")
    page.wait_for_url("**/takedowns/td_*")
    tracking = page.inner_text("#tracking-id")
    assert page.inner_text("#takedown-status") == "pending"

    page.goto(server.url + "/review/sign-in")
    page.fill("input[name=token]", seed.reviewer_token)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/review")
    assert seed.reviewer_token not in page.url
    page.click(f'a[href="/review/{tracking}"]')
    page.check("input[name=decision][value=uphold]")
    page.fill("textarea[name=reason]", "The artist's style was used without consent.")
    page.click("#decision-form button[type=submit]")
    page.wait_for_selector("#takedown-status:text('upheld')")

    page.goto(server.url + "/adapters/inkworks/watercolor/1.0.0")
    assert "without consent" in page.inner_text("#revoked-banner")
    context.close()

    refused = _pull(env, trust_path, "inkworks/watercolor@1.0.0")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "revoked" in refused.stderr


def test_screenshots(demo_site: tuple[LiveServer, DemoSeed], browser: Any, request: pytest.FixtureRequest,
                     tmp_path: Path) -> None:  # fmt: skip
    """Catalogue, adapter page and review queue as PNGs (``make screenshots`` writes docs/screenshots/)."""
    server, seed = demo_site
    out = Path(request.config.getoption("--screenshots-dir") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    from lorareg.client import Client

    with Client(server.url) as client:
        claims = (
            ("acme/jane-doe-portrait@1.0.0", "likeness", "Jane Doe"),
            ("inkworks/captain-comet@0.9.0", "character", "Comet Comics Ltd"),
        )
        for ref, reason, claimant in claims:
            client.file_takedown(
                ref,
                reason=reason,
                claimant=claimant,
                contact="claims@example.org",
                details="No permission.",
                good_faith=True,
            )
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    page.goto(server.url + "/", wait_until="networkidle")
    page.screenshot(path=str(out / "catalogue.png"), full_page=False)
    page.goto(server.url + "/adapters/inkworks/ink-wash", wait_until="networkidle")
    page.screenshot(path=str(out / "adapter.png"), full_page=True)
    page.goto(server.url + "/review/sign-in")
    page.fill("input[name=token]", seed.reviewer_token)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/review")
    page.screenshot(path=str(out / "review.png"), full_page=True)
    for name in ("catalogue", "adapter", "review"):
        with Image.open(out / f"{name}.png") as shot:
            assert shot.width == VIEWPORT["width"] and shot.height >= 600


def _pull(env: dict[str, str], trust: Path, ref: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lorareg", "pull", ref, "--verify", "--trust", str(trust)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def _trust_file(server: LiveServer, tmp_path: Path) -> Path:
    """A trust file with the registry key and the demo publisher key (trusted for inkworks only)."""
    store = TrustStore((), Policy())
    key = server.registry.key.public_key
    store = store.with_key(key, label="registry", role="registry", namespace=None)
    for record in server.registry.publisher_keys("inkworks"):
        public = load_public_key(record.public_pem.encode())
        store = store.with_key(public, label="demo publisher", role="publisher", namespace="inkworks")
    path = tmp_path / "trust.toml"
    store.save(path)
    return path


def _artwork(palette: tuple[tuple[int, int, int], tuple[int, int, int]]) -> bytes:
    """A 640x480 gradient with soft circles: a stand-in preview that looks like something."""
    top, bottom = palette
    image = Image.new("RGB", (640, 480))
    draw = ImageDraw.Draw(image)
    for y in range(480):
        t = y / 479
        draw.line(
            [(0, y), (640, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    for i in range(5):
        x, y, r = 120 + i * 100, 240 + int(80 * math.sin(i)), 40 + 12 * i
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 255, 255), width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
