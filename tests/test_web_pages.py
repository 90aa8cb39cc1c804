"""The pages people read: catalogue filters and pagination, the adapter page's facts, signature status,
attribution and lineage, the takedown form and status page, and the reviewer's queue and decisions."""

from __future__ import annotations

import re

from tests.fixtures.web import WebSite, png_bytes


def _cards(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/adapters/([^"]+)/[^"/]+">', html)


def test_catalogue_filters_by_family_commercial_use_and_creator(web: WebSite) -> None:
    pub = web.publisher
    pub.publish("sd-ink", kind="sd1-kohya")
    pub.publish("xl-ink", kind="sdxl-kohya")
    closed = {
        "id": "proprietary",
        "commercial_use": False,
        "derivatives": False,
        "attribution_required": True,
    }
    pub.publish("closed-ink", license=closed, creators=[{"name": "Mina Okafor", "role": "trainer"}])
    assert sorted(_cards(web.client.get("/").text)) == ["acme/closed-ink", "acme/sd-ink", "acme/xl-ink"]
    assert _cards(web.client.get("/?family=sdxl").text) == ["acme/xl-ink"]
    assert _cards(web.client.get("/?commercial_use=false").text) == ["acme/closed-ink"]
    assert _cards(web.client.get("/?creator=mina+okafor").text) == ["acme/closed-ink"]
    assert _cards(web.client.get("/?q=xl").text) == ["acme/xl-ink"]
    page = web.client.get("/?family=sdxl&sort=name").text
    assert 'href="/api/v1/adapters?family=sdxl&amp;sort=name"' in page  # the JSON twin


def test_catalogue_paginates_with_a_next_link(web: WebSite) -> None:
    for i in range(22):
        web.publisher.publish(f"ink-{i:02d}")
    first = web.client.get("/?sort=name").text
    assert len(_cards(first)) == 20
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url is not None
    second = web.client.get(next_url.group(1).replace("&amp;", "&")).text
    assert sorted(_cards(second)) == ["acme/ink-20", "acme/ink-21"]
    assert 'rel="next"' not in second


def test_adapter_page_shows_signature_hashes_attribution_usage_and_lineage(web: WebSite) -> None:
    parent = web.publisher.publish("base-ink", trigger_words=["inkstyle"])
    lineage = [{"name": "acme/base-ink", "version": "1.0.0", "sha256": parent.sha256}]
    web.publisher.publish(
        "child-ink",
        derived_from=lineage,
        dataset={"sha256": "ab" * 32, "images": 120, "source": "studio archive"},
    )
    page = web.client.get("/adapters/acme/base-ink").text
    assert "Verified on the server just now" in page
    assert web.registry.key.key_id in page and web.publisher.key.key_id in page
    assert parent.sha256 in page and parent.blob.autov2 in page and parent.blob.blake3 in page
    assert f'data-copy="{parent.sha256}"' in page and 'data-copy="inkstyle"' in page
    assert "lorareg pull acme/base-ink@1.0.0 --verify" in page and "load_verified_lora" in page
    assert "Commercial use allowed" in page and "Credit required" in page
    assert (
        "LoRA &#34;acme/base-ink&#34; 1.0.0 by Acme Studio (publisher), licensed CreativeML-OpenRAIL-M"
        in page
    )
    assert 'href="/adapters/acme/child-ink/1.0.0"' in page  # derived by
    child = web.client.get("/adapters/acme/child-ink/1.0.0").text
    assert 'href="/adapters/acme/base-ink/1.0.0"' in child and "studio archive" in child and "120" in child
    assert 'href="/api/v1/adapters/acme/child-ink/versions/1.0.0"' in child


def test_a_new_version_derived_from_the_previous_one_does_not_list_itself_as_derived_by(web: WebSite) -> None:
    first = web.publisher.publish("ink-wash")
    lineage = [{"name": "acme/ink-wash", "version": "1.0.0", "sha256": first.sha256}]
    web.publisher.publish("ink-wash", version="2.0.0", derived_from=lineage)
    old = web.client.get("/adapters/acme/ink-wash/1.0.0").text
    new = web.client.get("/adapters/acme/ink-wash/2.0.0").text
    assert "acme/ink-wash@2.0.0" in _derived_by(old)
    assert "acme/ink-wash@2.0.0" not in _derived_by(new)


def _derived_by(page: str) -> str:
    return page.split("<h3>Derived by</h3>", 1)[1].split("</section>", 1)[0]


def test_tampered_stored_bundle_shows_a_failed_signature(web: WebSite) -> None:
    from sqlmodel import col, update

    from lorareg.registry.db import Version

    record = web.publisher.publish()
    other = web.publisher.build("pixel-art", "9.9.9")
    with web.registry.db.write() as session:
        session.execute(update(Version).where(col(Version.id).is_not(None)).values(bundle=other.bundle))
    page = web.client.get(f"/adapters/{record.name}/{record.version}").text
    assert "did not verify" in page and "Verified on the server" not in page


def test_yanked_and_revoked_versions_are_marked(web: WebSite) -> None:
    web.publisher.publish(version="1.0.0")
    web.publisher.publish(version="1.1.0")
    web.registry.yank("acme/pixel-art", "1.1.0", principal=web.publisher.principal)
    page = web.client.get("/adapters/acme/pixel-art/1.1.0").text
    assert "Yanked" in page and 'badge status-yanked">yanked' in page
    reviewer = web.registry.authenticate(web.registry.create_token(role="reviewer").secret)
    web.registry.revoke("acme/pixel-art@1.0.0", reason="upheld: likeness", principal=reviewer)
    page = web.client.get("/adapters/acme/pixel-art/1.0.0").text
    assert 'id="revoked-banner"' in page and "upheld: likeness" in page


def test_previews_appear_on_cards_and_in_the_gallery(web: WebSite) -> None:
    record = web.publisher.publish()
    url = f"/api/v1/adapters/{record.name}/versions/{record.version}/previews"
    headers = {"Authorization": f"Bearer {web.publisher.secret}", "Content-Type": "image/png"}
    added = web.client.post(url, content=png_bytes((640, 480)), headers=headers)
    assert added.status_code == 201, added.text
    thumb = added.json()["thumb_url"]
    assert f'src="{thumb}"' in web.client.get("/").text
    assert f'src="{thumb}"' in web.client.get("/adapters/acme/pixel-art").text
    image = web.client.get(thumb)
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"


def test_takedown_form_to_status_page_to_review_and_uphold(web: WebSite) -> None:
    web.publisher.publish()
    tracking = web.file_takedown()
    status = web.client.get(f"/takedowns/{tracking}").text
    assert 'id="takedown-status">pending' in status and "jo@example.org" not in status
    web.sign_in()
    queue = web.client.get("/review").text
    assert f'href="/review/{tracking}"' in queue and "Jo Model" in queue
    detail = web.client.get(f"/review/{tracking}").text
    assert "jo@example.org" in detail and "reproduces my face" in detail
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', detail)
    assert csrf is not None
    decided = web.client.post(
        f"/review/{tracking}",
        data={"csrf_token": csrf.group(1), "decision": "uphold", "reason": "no consent"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    assert 'id="takedown-status">upheld' in web.client.get(f"/takedowns/{tracking}").text
    assert "Decisions are final" in web.client.get(f"/review/{tracking}").text
    audit = web.client.get("/review?status=all").text
    assert "uphold" in audit and "filed" in audit
    assert 'id="revoked-banner"' in web.client.get("/adapters/acme/pixel-art/1.0.0").text


def test_unknown_pages_render_the_error_page(web: WebSite) -> None:
    missing = web.client.get("/adapters/acme/nothing")
    assert missing.status_code == 404 and "<h1>Not found" in missing.text and "(404)" in missing.text
    assert "something stopped here" not in missing.text
    assert web.client.get("/takedowns/td_nope").status_code == 404
