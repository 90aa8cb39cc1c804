"""Attacks on the web UI: markup smuggled in through manifests and file metadata, cross-site form posts,
tokens in URLs, other roles on reviewer pages, and the session cookie's flags and rotation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lorareg.adapter.facts import compute_facts
from lorareg.adapter.hashing import StreamHasher
from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.manifest import ManifestDraft, complete_manifest
from lorareg.registry.service import open_registry
from lorareg.server.app import create_app
from lorareg.server.config import Settings
from lorareg.signing.sign import sign_manifest
from tests.fixtures.registry import draft_manifest
from tests.fixtures.web import WebSite
from tests.support.lora_factory import adapter_bytes

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = "\"'><img src=x onerror=alert(2)>"
TEMPLATES = Path(__file__).resolve().parent.parent / "lorareg" / "templates"


def _publish_hostile(web: WebSite, **manifest: Any) -> None:
    """Publish acme/hostile with ``manifest`` fields and safetensors metadata that carry markup."""
    data = adapter_bytes(
        "sd1-kohya", rank=1, blocks=1, seed=7, metadata={"ss_note": SCRIPT, BREAKOUT: BREAKOUT}
    )
    header = parse_header(data, file_size=len(data))
    hasher = StreamHasher()
    hasher.update(data)
    hashes = hasher.finish()
    draft = ManifestDraft.from_json(draft_manifest("acme/hostile", "1.0.0", **manifest))
    done = complete_manifest(
        draft, facts=compute_facts(header, read_scalars(data, header)), hashes=hashes, size=len(data)
    )
    bundle = sign_manifest(
        subject_name="hostile.safetensors",
        sha256=hashes.sha256,
        manifest=done.to_json(),
        key=web.publisher.key,
    )
    web.registry.upload_blob(hashes.sha256, iter([data]), principal=web.publisher.principal)
    web.registry.publish("acme/hostile", bundle, principal=web.publisher.principal)


@pytest.mark.parametrize(
    "manifest",
    [
        {"description": SCRIPT + BREAKOUT},
        {"creators": [{"name": SCRIPT, "role": BREAKOUT}]},
        {"trigger_words": [SCRIPT, BREAKOUT]},
        {"dataset": {"sha256": "cd" * 32, "images": 3, "source": SCRIPT + BREAKOUT}},
    ],
    ids=["description", "creators", "trigger-words", "dataset-source"],
)
def test_markup_in_manifests_and_file_metadata_is_escaped_everywhere(
    web: WebSite, manifest: dict[str, Any]
) -> None:
    _publish_hostile(web, **manifest)
    for path in ("/", "/adapters/acme/hostile", "/adapters/acme/hostile/1.0.0", "/?q=hostile"):
        html = web.client.get(path).text
        assert "<script>alert" not in html, path
        assert (
            "<img src=x" not in html
            and "onerror=alert(2)>" not in html.replace("&gt;", ">")
            or ("<img src=x" not in html)
        ), path
    page = web.client.get("/adapters/acme/hostile").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text (the file metadata at least)


def test_takedown_fields_with_markup_are_escaped_for_reviewers(web: WebSite) -> None:
    web.publisher.publish()
    tracking = web.file_takedown(claimant=SCRIPT, details=BREAKOUT + SCRIPT)
    web.sign_in()
    for path in ("/review", f"/review/{tracking}", "/review?status=all"):
        html = web.client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path


def test_pages_send_a_csp_without_inline_script(web: WebSite) -> None:
    web.publisher.publish()
    for path in ("/", "/adapters/acme/pixel-art", "/review/sign-in"):
        response = web.client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None, path  # only external scripts
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert re.search(r"\son[a-z]+\s*=", text) is None, template.name  # no inline event handlers
        assert "|safe" not in text and "autoescape false" not in text, template.name


@pytest.mark.parametrize("name", ["token", "access_token", "api_key"])
def test_a_token_in_a_page_url_is_refused(web: WebSite, name: str) -> None:
    secret = web.registry.create_token(role="reviewer").secret
    assert web.client.get(f"/review?{name}={secret}").status_code == 400
    assert web.client.get(f"/?{name}={secret}").status_code == 400


def test_sign_in_form_posts_the_token_in_the_body(web: WebSite) -> None:
    html = web.client.get("/review/sign-in").text
    assert re.search(r'<form method="post" action="/review/sign-in"', html)
    assert 'type="password" name="token"' in html


def _post_targets(web: WebSite) -> list[tuple[str, dict[str, str]]]:
    web.publisher.publish()
    tracking = web.file_takedown()
    return [
        ("/takedowns", {"ref": "acme/pixel-art@1.0.0", "reason": "other", "claimant": "x",
                        "contact": "x@example.org", "details": "x", "good_faith": "yes"}),
        ("/review/sign-in", {"token": web.registry.create_token(role="reviewer").secret}),
        ("/review/sign-out", {}),
        (f"/review/{tracking}", {"decision": "uphold", "reason": "x"}),
    ]  # fmt: skip


@pytest.mark.parametrize("attack", ["no-token", "wrong-token", "foreign-origin"])
def test_every_form_post_is_csrf_checked(web: WebSite, attack: str) -> None:
    targets = _post_targets(web)
    web.sign_in()
    good = web.csrf("/review")
    for path, data in targets:
        headers = {"Origin": "https://evil.example"} if attack == "foreign-origin" else {}
        token = {"no-token": None, "wrong-token": "forged" + good[6:], "foreign-origin": good}[attack]
        body = {**data, **({"csrf_token": token} if token else {})}
        response = web.client.post(path, data=body, headers=headers, follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
    assert web.registry.is_revoked(web.publisher.published[0].sha256) is None


@pytest.mark.parametrize("role", ["publisher"])
def test_other_roles_cannot_sign_in_or_reach_reviewer_pages(web: WebSite, role: str) -> None:
    web.publisher.publish()
    tracking = web.file_takedown()
    refused = web.client.post(
        "/review/sign-in",
        data={"csrf_token": web.csrf(), "token": web.publisher.secret},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and "lorareg_session" not in refused.headers.get("set-cookie", "")
    assert web.client.get(f"/review/{tracking}").status_code == 403
    decided = web.client.post(
        f"/review/{tracking}", data={"csrf_token": web.csrf(), "decision": "uphold", "reason": "x"}
    )
    assert decided.status_code == 403
    web.client.cookies.set("lorareg_session", "forged-session-value")
    assert web.client.get(f"/review/{tracking}").status_code == 403
    assert web.client.get("/review", follow_redirects=False).status_code == 303  # sent to sign-in


def test_session_cookie_is_httponly_lax_secure_under_https_and_rotated(tmp_path: Path) -> None:
    registry = open_registry(tmp_path / "data")
    app = create_app(Settings(home=tmp_path / "data"), registry=registry)
    client = TestClient(app, base_url="https://testserver")
    cookies = []
    for _ in range(2):
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/review/sign-in").text)
        assert csrf is not None
        secret = registry.create_token(role="reviewer").secret
        answer = client.post("/review/sign-in", data={"csrf_token": csrf.group(1), "token": secret},
                             follow_redirects=False)  # fmt: skip
        header = answer.headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=lax" in header and "Secure" in header
        cookies.append(client.cookies["lorareg_session"])
    assert cookies[0] != cookies[1]
    client.cookies.clear()
    client.cookies.set("lorareg_session", cookies[0])  # the rotated-out session no longer works
    assert client.get("/review", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set("lorareg_session", cookies[1])
    assert client.get("/review").status_code == 200


def test_revoking_the_token_ends_its_session(web: WebSite) -> None:
    secret = web.sign_in()
    assert web.client.get("/review").status_code == 200
    web.registry.revoke_token(secret.split("_")[1])
    assert web.client.get("/review", follow_redirects=False).status_code == 303
