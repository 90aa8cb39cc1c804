"""Single sign-on against a real OpenID Connect provider (``oidc-provider-mock``, started over loopback):
the whole authorization-code flow into a private registry — by an HTTP client and by Chromium — and the
attacks it must refuse: a replayed ``state``, a forged ``nonce``, a token for another audience, an expired
token, a browser that did not start the sign-in, and a user whose groups map to no role."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from lorareg.errors import AuthError, InputError
from lorareg.registry import RoleGrant, RoleMap
from lorareg.server.web.sso import validate_id_token
from tests.fixtures.server import LiveServer

ROLES = "studio=viewer;vfx-team=publisher:vfx;trust=reviewer"
CLIENT_ID = "lorareg-test"


@pytest.fixture
def idp() -> Iterator[str]:
    """A real OIDC provider on loopback; its issuer URL."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=0, require_nonce=True) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def sso_server(live_server_factory: Callable[..., LiveServer], idp: str) -> LiveServer:
    server = live_server_factory(
        read="signed-in",
        oidc_issuer=idp,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret="s3cret",
        oidc_roles=ROLES,
    )
    server.add_publisher("vfx")
    return server


def _user(idp: str, sub: str, groups: list[str]) -> None:
    answer = httpx.put(f"{idp}/users/{sub}", json={"groups": groups, "preferred_username": sub})
    assert answer.status_code == 204


def _sign_in(browser: httpx.Client, idp: str, sub: str, next_path: str = "/") -> httpx.Response:
    """Start at lorareg, authorize at the IdP as ``sub``, follow the redirect back; the callback's answer."""
    start = browser.get("/auth/oidc/login", params={"next": next_path})
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    approved = httpx.post(authorize, data={"sub": sub})
    assert approved.status_code == 302, approved.text
    return browser.get(approved.headers["location"])


def test_sign_in_through_the_identity_provider_opens_the_private_catalogue(
    sso_server: LiveServer, idp: str
) -> None:
    _user(idp, "alice", ["studio"])
    with httpx.Client(base_url=sso_server.url) as browser:
        assert browser.get("/").status_code == 303
        back = _sign_in(browser, idp, "alice", next_path="/?q=x")
        assert back.status_code == 303 and back.headers["location"] == "/?q=x"
        cookie = back.headers["set-cookie"].lower()
        assert "lorareg_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert browser.get("/").status_code == 200
        assert browser.get("/api/v1/adapters").status_code == 200
    assert any(u.name == "sso:alice" and u.role == "viewer" for u in sso_server.registry.list_users())


def test_group_maps_to_publisher_of_its_namespace(sso_server: LiveServer, idp: str) -> None:
    _user(idp, "bob", ["studio", "vfx-team"])
    with httpx.Client(base_url=sso_server.url) as browser:
        assert _sign_in(browser, idp, "bob").status_code == 303
    (token,) = [t for t in sso_server.registry.list_tokens() if t.user == "sso:bob"]
    assert token.role == "publisher" and token.namespace == "vfx" and token.expires is not None


def test_unmapped_group_is_forbidden(sso_server: LiveServer, idp: str) -> None:
    _user(idp, "mallory", ["contractors"])
    with httpx.Client(base_url=sso_server.url) as browser:
        back = _sign_in(browser, idp, "mallory")
        assert back.status_code == 403 and "mapped" in back.json()["error"]["message"]
        assert browser.get("/").status_code == 303


def test_replayed_state_is_refused(sso_server: LiveServer, idp: str) -> None:
    _user(idp, "alice", ["studio"])
    with httpx.Client(base_url=sso_server.url) as browser:
        start = browser.get("/auth/oidc/login")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        callback = httpx.post(start.headers["location"], data={"sub": "alice"}).headers["location"]
        assert browser.get(callback).status_code == 303
        browser.cookies.set("lorareg_oidc_state", state, path="/auth/oidc")  # the attacker has the cookie too
        replay = browser.get(callback)
        assert replay.status_code == 401 and "already used" in replay.json()["error"]["message"]


def test_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(
    sso_server: LiveServer, idp: str
) -> None:
    _user(idp, "alice", ["studio"])
    with httpx.Client(base_url=sso_server.url) as attacker, httpx.Client(base_url=sso_server.url) as victim:
        start = attacker.get("/auth/oidc/login")
        callback = httpx.post(start.headers["location"], data={"sub": "alice"}).headers["location"]
        forced = victim.get(callback)  # login CSRF: the attacker's code, the victim's browser
        assert (
            forced.status_code == 401 and "does not match this browser" in forced.json()["error"]["message"]
        )


# -- the ID-token checks, on tokens the provider really issued ---------------------------------------------
def _id_token(idp: str, *, nonce: str, client_id: str = CLIENT_ID) -> tuple[str, dict[str, Any]]:
    """Run the code flow by hand (with PKCE) and return the provider's ID token and its JWKS."""
    _user(idp, "carol", ["studio"])
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/cb"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid",
        "state": "s",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    approved = httpx.post(f"{idp}/oauth2/authorize?{urlencode(params)}", data={"sub": "carol"})
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{idp}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        auth=(client_id, "s3cret"),
    ).json()
    meta = httpx.get(f"{idp}/.well-known/openid-configuration").json()
    return token["id_token"], httpx.get(meta["jwks_uri"]).json()


def test_id_token_checks_accept_the_real_token(idp: str) -> None:
    token, jwks = _id_token(idp, nonce="n-1")
    claims = validate_id_token(
        token, jwks, issuer=idp, client_id=CLIENT_ID, nonce="n-1", now=int(time.time())
    )
    assert claims["sub"] == "carol" and claims["groups"] == ["studio"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_id": "someone-else"}, "aud"),
        ({"nonce": "forged"}, "nonce"),
        ({"now": int(time.time()) + 3 * 3600}, "exp"),
        ({"issuer": "https://evil.example"}, "iss"),
    ],
    ids=["wrong-audience", "forged-nonce", "expired", "wrong-issuer"],
)
def test_id_token_checks_refuse(idp: str, change: dict[str, Any], message: str) -> None:
    token, jwks = _id_token(idp, nonce="n-2")
    options: dict[str, Any] = {"issuer": idp, "client_id": CLIENT_ID, "nonce": "n-2", "now": int(time.time())}
    options.update(change)
    with pytest.raises(AuthError, match=message):
        validate_id_token(token, jwks, **options)


def test_token_signed_by_another_key_is_refused(idp: str) -> None:
    token, _ = _id_token(idp, nonce="n-3")
    from joserfc.jwk import RSAKey

    other = {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}
    with pytest.raises(AuthError, match="refused"):
        validate_id_token(token, other, issuer=idp, client_id=CLIENT_ID, nonce="n-3", now=int(time.time()))


def test_role_map_parsing() -> None:
    roles = RoleMap.parse(ROLES)
    assert roles.grant_for(["studio", "trust"]) == RoleGrant("reviewer")
    assert roles.grant_for(["vfx-team"]) == RoleGrant("publisher", "vfx")
    assert roles.grant_for(["nobody"]) is None
    for bad in ("studio", "x=emperor", "x=publisher", "x=viewer:vfx"):
        with pytest.raises(InputError, match="LORAREG_OIDC_ROLES"):
            RoleMap.parse(bad)


def test_sign_in_with_chromium(sso_server: LiveServer, idp: str, tmp_path: Path) -> None:
    """The browser part for real: Chromium follows the redirects, the IdP's form, and lands signed in."""
    from playwright.sync_api import sync_playwright

    from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS

    _user(idp, "dana", ["studio"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(sso_server.url + "/adapters/vfx/nothing")
            page.wait_for_url("**/sign-in?next=*")
            page.click("text=Sign in with your organisation")
            page.fill("input[name=sub]", "dana")
            page.click("button:text('Authorize')")
            page.wait_for_url(sso_server.url + "/adapters/vfx/nothing")
            page.goto(sso_server.url + "/")
            assert page.url == sso_server.url + "/"
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["lorareg_session"]["httpOnly"] and cookies["lorareg_session"]["sameSite"] == "Lax"
        finally:
            browser.close()
