"""The web UI as an artist meets it (issue 17): pages that tell the truth at a glance.

A revoked version looks revoked (no "verified just now", no usage snippet, no report form; hashes kept);
one card per adapter with its version count, consent, and no green "commercial ok" while rights are not
cleared; a bad filter is shown as an error, not ignored; 404s are HTML for browsers and JSON for the API;
external lineage is labelled, not linked; the usage snippet names this server. And the "check an image"
page reads a generated image's claims (lorareg chunk, A1111 ``Lora hashes``) and answers them from the
registry, within the preview caps, storing nothing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from lorareg.demo.catalogue import seed_demo
from lorareg.errors import AuthError
from lorareg.images.provenance import AdapterUse, record_adapter, save_image
from lorareg.registry import Previews, VersionRecord
from lorareg.server.web.image_check import MAX_CHECK_BYTES
from tests.fixtures.web import WebSite, png_bytes


def _revoke(web: WebSite, ref: str, reason: str = "upheld: likeness without consent") -> None:
    reviewer = web.registry.authenticate(web.registry.create_token(role="reviewer").secret)
    web.registry.revoke(ref, reason=reason, principal=reviewer)


def test_a_revoked_version_says_signature_valid_revoked_and_hides_usage_and_the_report_form(
    web: WebSite,
) -> None:
    web.publisher.publish(version="1.0.0")
    _revoke(web, "acme/pixel-art@1.0.0")
    record = web.registry.get_version("acme/pixel-art", "1.0.0")
    page = web.client.get("/adapters/acme/pixel-art/1.0.0").text
    status = re.search(r'id="signature-status">([^<]*)<', page)
    assert status is not None
    assert status.group(1).startswith(
        "Signature valid — revoked on "
    ) and "likeness without consent" in status.group(1)
    assert "Verified on the server just now" not in page
    assert "lorareg pull" not in page and "load_verified_lora" not in page and 'id="usage"' not in page
    assert 'id="takedown-form"' not in page and "Already taken down" in page
    assert "Download the signature bundle" not in page
    assert record.sha256 in page and record.blob.blake3 in page  # hashes kept, so copies can be found


def test_one_card_per_adapter_with_its_version_count_and_a_result_count(web: WebSite) -> None:
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        web.publisher.publish("ink", version=version)
    web.publisher.publish("solo")
    page = web.client.get("/").text
    cards = re.findall(r'<h2><a href="/adapters/([^"]+)/[^"/]+">', page)
    assert sorted(cards) == ["acme/ink", "acme/solo"]
    assert "1.2.0 · 3 versions" in page
    assert re.search(r'id="result-count">2 adapters<', page)


def test_uncleared_consent_gets_a_warning_badge_never_a_green_commercial_ok(web: WebSite) -> None:
    web.publisher.publish("fan-art", consent={"subject": "character", "status": "unknown"})
    web.publisher.publish("cleared", consent={"subject": "style", "status": "not-required"})
    page = web.client.get("/").text
    fan_card = page[page.index("acme/fan-art") :][:2000]
    assert "rights unclear (consent unknown)" in fan_card and "commercial ok" not in fan_card
    assert "Consent: character · unknown" in fan_card
    cleared_card = page[page.index("acme/cleared") :][:2000]
    assert 'badge ok rights">commercial ok' in cleared_card


def test_no_credit_required_is_shown_as_a_freedom_not_in_red(web: WebSite) -> None:
    free = {"id": "CC0-1.0", "commercial_use": True, "derivatives": True, "attribution_required": False}
    web.publisher.publish("free", license=free)
    page = web.client.get("/adapters/acme/free").text
    assert '<li class="answer-free">No credit required</li>' in page


def test_a_bad_filter_value_is_shown_on_the_page_as_the_api_refuses_it(web: WebSite) -> None:
    web.publisher.publish()
    page = web.client.get("/?family=bogus")
    assert page.status_code == 400
    assert 'id="filter-error"' in page.text and "family &#39;bogus&#39; is not one of" in page.text
    assert "acme/pixel-art" not in page.text
    assert web.client.get("/api/v1/adapters?family=bogus").status_code == 400


def test_404s_are_html_for_browsers_and_json_for_api_clients(web: WebSite) -> None:
    browser = web.client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 404 and browser.headers["content-type"].startswith("text/html")
    assert "<h1>Not found" in browser.text
    api = web.client.get("/api/v1/no-such-route", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    script = web.client.get("/no/such/page", headers={"Accept": "application/json"})
    assert script.status_code == 404 and script.json()["error"]["code"] == "not_found"


def test_usage_snippet_names_this_server_and_the_report_reason_is_not_preset(web: WebSite) -> None:
    web.publisher.publish()
    page = web.client.get("/adapters/acme/pixel-art").text
    assert "registry=&#34;http://testserver&#34;" in page and "REGISTRY_URL" not in page
    assert '<option value="" selected disabled>Choose a reason…</option>' in page
    assert 'id="good-faith-error"' in page  # the visible message for an unticked good-faith box


def test_module_paths_wrap_between_names_not_inside_them(web: WebSite) -> None:
    web.publisher.publish(kind="sdxl-kohya")
    page = web.client.get("/adapters/acme/pixel-art").text
    targets = re.search(r"<dt>Targets</dt><dd>(.*?)</dd>", page)
    assert targets is not None and "<wbr>" in targets.group(1)
    assert all(piece.endswith(".") for piece in targets.group(1).split("<wbr>")[:-1])


def test_external_lineage_is_labelled_and_not_linked(web: WebSite) -> None:
    lineage = [{"name": "civitai/base-style", "version": "3.0.0", "registry": "https://civitai.com"}]
    web.publisher.publish("child", derived_from=lineage)
    page = web.client.get("/adapters/acme/child").text
    assert "civitai/base-style@3.0.0" in page and "external: https://civitai.com" in page
    assert 'href="/adapters/civitai/base-style' not in page


# -- check an image ---------------------------------------------------------------------------------
def _use(record: VersionRecord) -> AdapterUse:
    return AdapterUse(
        adapter_name=record.name.split("/")[1],
        ref=f"{record.name}@{record.version}",
        sha256=record.sha256,
        autov3=record.blob.autov3,
        weight=0.7,
        name=record.name,
        version=record.version,
        license="CreativeML-OpenRAIL-M",
        creators=("Acme Studio",),
    )


class _Pipe:
    """What save_image reads attribution from (the loader records uses on the pipeline)."""


def _generated_png(tmp_path: Path, *records: VersionRecord) -> bytes:
    pipe = _Pipe()
    for record in records:
        record_adapter(pipe, _use(record))
    path = save_image(
        Image.new("RGB", (96, 64), (30, 90, 160)), tmp_path / "made.png", pipe, prompt="a harbour"
    )
    return path.read_bytes()


def _check(web: WebSite, data: bytes, name: str = "made.png", **extra: str) -> tuple[int, str]:
    fields = {"csrf_token": web.csrf("/check"), **extra}
    response = web.client.post("/check", data=fields, files={"image": (name, data, "image/png")})
    return response.status_code, response.text


def test_check_an_image_names_each_adapter_with_credit_licence_and_its_revocation(
    web: WebSite, tmp_path: Path
) -> None:
    kept = web.publisher.publish("kept")
    gone = web.publisher.publish("gone")
    _revoke(web, "acme/gone@1.0.0", reason="upheld: style without consent")
    status, page = _check(web, _generated_png(tmp_path, kept, gone))
    assert status == 200 and "2 adapters named" in page
    assert 'href="/adapters/acme/kept/1.0.0">acme/kept@1.0.0</a>' in page
    assert "LoRA &#34;acme/kept&#34; 1.0.0 by Acme Studio (publisher), licensed CreativeML-OpenRAIL-M" in page
    assert "Revoked on " in page and "because upheld: style without consent" in page
    assert "from the lorareg chunk" in page and "a harbour" in page


def test_check_an_image_reads_a1111_lora_hashes_when_there_is_no_lorareg_chunk(web: WebSite) -> None:
    record = web.publisher.publish("webui-style")
    info = PngInfo()
    info.add_text(
        "parameters", f'a cat <lora:style:0.8>\nSteps: 20, Lora hashes: "style: {record.blob.autov3[:12]}"'
    )
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, "PNG", pnginfo=info)
    status, page = _check(web, out.getvalue())
    assert status == 200 and "1 adapter named" in page and "from the A1111 Lora hashes" in page
    assert 'href="/adapters/acme/webui-style/1.0.0"' in page and "badge status-active" in page


def test_check_an_image_without_claims_says_so(web: WebSite) -> None:
    status, page = _check(web, png_bytes(fmt="JPEG"), name="plain.jpg")
    assert status == 200 and "names no adapter" in page


def test_check_an_image_refuses_non_images_oversize_files_and_a_missing_csrf_token(web: WebSite) -> None:
    assert _check(web, b"not an image at all")[0] == 400
    oversize = png_bytes() + b"\0" * (MAX_CHECK_BYTES + 1)
    assert _check(web, oversize)[0] == 413
    no_csrf = web.client.post("/check", files={"image": ("a.png", png_bytes(), "image/png")})
    assert no_csrf.status_code == 403


def test_check_an_image_refuses_a_chunked_upload_unread(web: WebSite) -> None:
    def endless() -> Iterator[bytes]:  # no Content-Length: the server cannot cap it before parsing
        yield b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        yield b"\0" * 2**20

    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    answer = web.client.post("/check", content=endless(), headers=headers)
    assert answer.status_code == 400 and "Content-Length" in answer.text


def test_check_an_image_stores_nothing(web: WebSite, tmp_path: Path) -> None:
    record = web.publisher.publish()
    image = _generated_png(tmp_path, record)
    data_dir = tmp_path / "data"  # the web fixture's registry home

    def files() -> set[Path]:
        return {p for p in data_dir.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))}

    before = files()
    assert _check(web, image)[0] == 200
    assert files() == before
    assert Previews(web.registry).for_version(record.name, record.version) == []


# -- the demo -----------------------------------------------------------------------------------------
def test_every_demo_version_has_a_generated_preview_and_a_restart_revokes_old_tokens(
    web: WebSite, tmp_path: Path
) -> None:
    data = tmp_path / "demo"
    first = seed_demo(web.registry, data)
    page = web.client.get("/").text
    assert "no preview" not in page
    second = seed_demo(web.registry, data)
    assert first.reviewer_token != second.reviewer_token
    for old in (first.reviewer_token, first.admin_token, *first.publisher_tokens.values()):
        try:
            web.registry.authenticate(old)
        except AuthError:
            continue
        raise AssertionError("a previous demo start's token still works")
    web.registry.authenticate(second.admin_token)
    assert len(Previews(web.registry).for_version("acme/pixel-art", "1.0.0")) == 1  # not re-added
