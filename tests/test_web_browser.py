"""The web UI in a real browser: Playwright drives Debian's Chromium against a live uvicorn server seeded
with the demo catalogue. One story from a visitor browsing to a reviewer upholding a takedown and a
pipeline's ``lorareg pull --verify`` then refusing the adapter; and the screenshots of ``make screenshots``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from lorareg.demo.catalogue import DemoSeed, seed_demo
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
PHONE = {"width": 390, "height": 844}


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
    """The live server with the demo catalogue (which gives every version a generated preview)."""
    return live_server, seed_demo(live_server.registry, live_server.data_dir)


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
    assert page.inner_text("#signature-status").startswith("Signature valid — revoked on ")
    assert page.locator("#usage").count() == 0 and page.locator("#takedown-form").count() == 0
    assert page.locator("table.hashes").inner_text().count(sha256) == 1  # hashes stay, to find copies
    context.close()

    refused = _pull(env, trust_path, "inkworks/watercolor@1.0.0")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "revoked" in refused.stderr


def test_screenshots(demo_site: tuple[LiveServer, DemoSeed], browser: Any, request: pytest.FixtureRequest,
                     tmp_path: Path) -> None:  # fmt: skip
    """Catalogue, adapter page, review queue, a revoked page and an image check as PNGs (``make
    screenshots`` writes docs/screenshots/)."""
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
        _revoke(
            server,
            "inkworks/captain-comet@0.9.0",
            "upheld: character used without the rights holder's consent",
        )
        image = _generated_image(server.url, tmp_path, "inkworks/captain-comet@0.9.0", "acme/pixel-art@1.2.0")
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    page.goto(server.url + "/", wait_until="networkidle")
    page.screenshot(path=str(out / "catalogue.png"), full_page=False)
    page.goto(server.url + "/adapters/inkworks/captain-comet/0.9.0", wait_until="networkidle")
    page.screenshot(path=str(out / "revoked.png"), full_page=False)
    page.goto(server.url + "/check", wait_until="networkidle")
    page.set_input_files("#check-form input[name=image]", str(image))
    page.click("#check-form button[type=submit]")
    page.wait_for_selector("#check-result")
    page.screenshot(path=str(out / "check.png"), full_page=True)
    page.goto(server.url + "/adapters/inkworks/ink-wash", wait_until="networkidle")
    page.screenshot(path=str(out / "adapter.png"), full_page=True)
    page.goto(server.url + "/review/sign-in")
    page.fill("input[name=token]", seed.reviewer_token)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/review")
    page.screenshot(path=str(out / "review.png"), full_page=True)
    for name in ("catalogue", "adapter", "review", "revoked", "check"):
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


def _revoke(server: LiveServer, ref: str, reason: str) -> None:
    reviewer = server.registry.authenticate(server.registry.create_token(role="reviewer").secret)
    server.registry.revoke(ref, reason=reason, principal=reviewer)


def _generated_image(registry_url: str, tmp_path: Path, *refs: str) -> Path:
    """A PNG whose provenance chunks name ``refs``, written as ``lorareg sample --made-with`` writes it."""
    out = tmp_path / "harbour.png"
    command = [
        sys.executable,
        "-m",
        "lorareg",
        "sample",
        "--out",
        str(out),
        "--force",
        "--registry",
        registry_url,
    ]
    for ref in refs:
        command += ["--made-with", ref]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return out


def _overflow_px(page: Any) -> int:
    """How far the page is wider than the viewport (0 when nothing sticks out sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_catalogue_cards_tell_the_truth_at_a_glance(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any
) -> None:
    server, _ = demo_site
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server.url + "/", wait_until="networkidle")
    names = page.locator("li.card h2 a").all_inner_texts()
    listed = httpx.get(f"{server.url}/api/v1/adapters", params={"limit": 100}, timeout=10).json()["items"]
    adapters = {item["name"] for item in listed}  # the API lists versions; the page one card per adapter
    assert len(names) == len(set(names)) == len(adapters) > 1
    assert page.inner_text("#result-count").startswith(f"{len(adapters)} adapters")
    assert page.locator("li.card .no-preview").count() == 0  # every demo adapter has a preview
    pixel = page.locator("li.card", has=page.locator('h2 a:text-is("acme/pixel-art")'))
    assert "3 versions" in pixel.inner_text()
    comet = page.locator("li.card", has=page.locator('h2 a:text-is("inkworks/captain-comet")'))
    assert "rights unclear" in comet.inner_text() and "commercial ok" not in comet.inner_text()
    assert "Consent: character · unknown" in comet.inner_text()
    page.goto(server.url + "/?family=bogus")
    assert "family 'bogus' is not one of" in page.inner_text("#filter-error")


def test_check_an_image_in_the_browser_shows_credit_licence_and_revocation(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any, tmp_path: Path
) -> None:
    server, _ = demo_site
    image = _generated_image(server.url, tmp_path, "inkworks/ink-wash@2.0.0")
    _revoke(server, "inkworks/ink-wash@2.0.0", "upheld: style used without consent")
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server.url + "/")
    page.click('header.site a:text-is("Check an image")')
    page.set_input_files("#check-form input[name=image]", str(image))
    page.click("#check-form button[type=submit]")
    result = page.locator("#check-result")
    result.wait_for()
    text = result.inner_text()
    assert "inkworks/ink-wash@2.0.0" in text and "revoked" in text and "style used without consent" in text
    assert 'LoRA "inkworks/ink-wash" 2.0.0 by Hana Sato (trainer), licensed CC-BY-4.0' in text


def test_unticked_good_faith_box_shows_a_message_and_the_reason_must_be_chosen(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any
) -> None:
    server, _ = demo_site
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server.url + "/adapters/inkworks/lineart")
    assert page.eval_on_selector("#takedown-form select[name=reason]", "s => s.value") == ""
    page.select_option("#takedown-form select[name=reason]", "style")
    page.fill("#takedown-form input[name=claimant]", "Aiko Brush")
    page.fill("#takedown-form input[name=contact]", "aiko@example.org")
    page.fill("#takedown-form textarea[name=details]", "My line art.")
    assert not page.is_visible("#good-faith-error")
    page.click("#takedown-form button[type=submit]")
    page.wait_for_selector("#good-faith-error", state="visible")
    assert "/takedowns/" not in page.url


def test_the_credit_lines_copy_button_does_not_cover_its_text(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any
) -> None:
    server, _ = demo_site
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server.url + "/adapters/acme/pixel-art", wait_until="networkidle")
    overlap = page.evaluate(
        """() => {
        const code = document.getElementById("credit-line");
        const button = code.closest(".copyable").querySelector("button.copy").getBoundingClientRect();
        const range = document.createRange(); range.selectNodeContents(code);
        return [...range.getClientRects()].some(r => r.right > button.left && r.left < button.right
            && r.bottom > button.top && r.top < button.bottom);
    }"""
    )
    assert overlap is False


def test_pages_fit_a_phone_screen(demo_site: tuple[LiveServer, DemoSeed], browser: Any) -> None:
    server, _ = demo_site
    _revoke(
        server, "inkworks/ink-wash@2.0.0", "upheld: td_0123456789abcdef0123456789abcdef style without consent"
    )
    page = browser.new_page(viewport=PHONE)
    for path in (
        "/",
        "/adapters/acme/pixel-art",
        "/adapters/inkworks/ink-wash/2.0.0",
        "/check",
        "/review/sign-in",
    ):
        page.goto(server.url + path, wait_until="networkidle")
        assert _overflow_px(page) <= 0, f"{path} is wider than a 390 px phone"


def test_licence_filter_audit_log_and_decision_page_details(
    demo_site: tuple[LiveServer, DemoSeed], browser: Any
) -> None:
    server, seed = demo_site
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server.url + "/")
    page.fill("form.filters input[name=license]", "CreativeML-OpenRAIL-M")
    field = page.locator("form.filters input[name=license]")
    assert field.evaluate("e => e.scrollWidth <= e.clientWidth")  # the longest licence id is not cut off
    from lorareg.client import Client

    with Client(server.url) as client:
        filed = client.file_takedown(
            "inkworks/lineart@1.0.0",
            reason="style",
            claimant="Aiko Brush",
            contact="aiko@example.org",
            details="My line art portfolio, used without consent.",
            good_faith=True,
        )
    page.goto(server.url + "/review/sign-in")
    page.fill("input[name=token]", seed.reviewer_token)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/review")
    page.goto(server.url + f"/review/{filed['id']}")
    same_panel = page.evaluate(
        "() => document.querySelector('.details').closest('.panel') === "
        "document.getElementById('takedown-status').closest('.panel')"
    )
    assert same_panel is False  # the claimant's details have their own panel, not crammed under the status
    page.check("input[name=decision][value=uphold]")
    page.fill("textarea[name=reason]", "Style used without consent.")
    page.click("#decision-form button[type=submit]")
    page.wait_for_selector("#takedown-status:text('upheld')")
    colours = page.evaluate(
        "() => ['filed', 'uphold'].map(a => getComputedStyle("
        "document.querySelector('table.audit .status-' + a)).backgroundColor)"
    )
    assert all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in colours), colours  # decisions styled too
